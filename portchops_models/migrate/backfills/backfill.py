"""`Backfill`: a data migration over every row of a table, spread over any number of workers.

A step declares its backfill at module level and runs it from ``up``::

    BACKFILL = Backfill(name="ttl", model=UserProgress, per_item=set_ttl, page_size=50)

    def up(ctx: MigrationContext) -> None:
        BACKFILL.run(ctx)

`run` makes (or resumes) a **plan**: the table's parallel scan cut into
``segments`` (given, or a power of two chosen from the table's size, see
`plan_segments`), recorded in the history table (`portchops_models.migrate.backfills.lease`)
and named on the step's history item. Then this process works on it with
``threads`` segments at once, while any number of ``portchops migrate work``
processes join it: each claims a free (or expired) segment, scans it page by page,
hands each page to the step's function, and stores the position reached after each
page, fenced by the lease. A worker that dies leaves its lease to run out; another
takes the segment over from its last checkpoint. The worker that completes the
last segment marks the plan done; the step is recorded as applied when its ``up``
returns (a step may run several backfills, and code after them), so a step is never
half-recorded: run again after a failure or a kill, each backfill resumes its plan
where it stopped (one already done returns at once). An operator can pause, resume
or cancel a plan (``portchops migrate pause|resume|cancel STEP``); every worker
honours it within a second.

Delivery is at least once: after a crash, the page that was in flight when the
worker died is handed out again, once. Make the function's writes conditional on
the row's state (as 0005 does: ``SET ttl`` only where there is none), so a page
done again changes nothing.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.condition import Condition
from rich.console import Console

from ...admin import tables
from ...errors import ConditionFailed, InvalidRequest
from ...models.base import BaseModel
from ...models.projections import Projection
from ...models.shape import RawItem, shape_of
from ..errors import MigrationError
from .lease import LeaseTable, Observed
from .rate import Rate
from .worker import (
    CANCELLED,
    DONE,
    PAUSED,
    RUNNING,
    BackfillCancelled,
    BackfillResult,
    Batch,
    Plan,
    Worker,
)

if TYPE_CHECKING:
    from ..context import MigrationContext

__all__ = [
    "Backfill",
    "BackfillCancelled",
    "BackfillResult",
    "Batch",
    "ItemFunction",
    "PageFunction",
    "Rate",
    "plan_segments",
]

#: ``fn(batch, item)``: migrate one row; return 1 (or True) when it wrote, to be counted.
ItemFunction = Callable[[Batch, RawItem], int | bool | None]
#: ``fn(batch, items)``: migrate one page; return how many rows it wrote, to be counted.
PageFunction = Callable[[Batch, list[RawItem]], int | None]

#: `plan_segments`: about this much data, or this many rows, per segment.
BYTES_PER_SEGMENT = 256 * 1024 * 1024
ROWS_PER_SEGMENT = 100_000
MAX_AUTO_SEGMENTS = 4096
_RUN_ATTRIBUTE = "backfill:"


def plan_segments(item_count: int, size_bytes: int, *, minimum: int = 1) -> int:
    """The segment count for a table of this size: the smallest power of two with at
    most `BYTES_PER_SEGMENT` and `ROWS_PER_SEGMENT` a segment, and at least `minimum`
    segments, capped at `MAX_AUTO_SEGMENTS`.

    Example:
        >>> plan_segments(20_000, 2_000_000, minimum=4)
        4
        >>> plan_segments(300_000_000, 90 * 1024**3)
        4096
    """
    wanted = max(
        minimum,
        math.ceil(max(size_bytes, 0) / BYTES_PER_SEGMENT),
        math.ceil(max(item_count, 0) / ROWS_PER_SEGMENT),
        1,
    )
    return min(MAX_AUTO_SEGMENTS, 1 << (wanted - 1).bit_length())


@dataclass(frozen=True, kw_only=True, eq=False)
class Backfill:
    """A backfill over every row of `model`'s table; see the module docstring.

    Attributes:
        name: names the backfill within its step (a step may run several in turn).
        model: the model whose table is scanned.
        per_item: called with each row (raw DynamoDB item) of each page, or
        per_page: called once with each page's rows; give exactly one of the two.
        projection: read only these attributes (plus the keys and the TTL); default all.
        filter_condition: hand over only the rows that match (a PynamoDB condition).
        segments: how many scan segments; None picks a power of two from the table's
            size (`plan_segments`, at least `threads`).
        page_size: rows scanned per page (each page is one checkpoint).
        rate: the combined rate limit of all the workers (`Rate`), or None.
        threads: how many segments one process works on at once.
        lease_seconds: how long a lease lasts unrenewed (renewed every third of it).
    """

    name: str
    model: type[BaseModel]
    per_item: ItemFunction | None = None
    per_page: PageFunction | None = None
    projection: type[Projection[Any]] | None = None
    filter_condition: Condition | None = None
    segments: int | None = None
    page_size: int = 100
    rate: Rate | None = None
    threads: int = 4
    lease_seconds: float = 30.0

    def __post_init__(self) -> None:
        if (self.per_item is None) == (self.per_page is None):
            raise InvalidRequest(f"backfill {self.name!r}: give one of per_item or per_page")
        if not self.name or "/" in self.name or "@" in self.name:
            raise InvalidRequest(f"backfill name must be non-empty, without / or @: {self.name!r}")
        checks: Sequence[tuple[str, object, int]] = (
            ("page_size", self.page_size, 1),
            ("threads", self.threads, 1),
            ("segments", 1 if self.segments is None else self.segments, 1),
        )
        for label, value, low in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidRequest(f"backfill {self.name!r}: {label} must be an int >= {low}")
        if not self.lease_seconds > 0:
            raise InvalidRequest(f"backfill {self.name!r}: lease_seconds must be above 0")
        shape_of(self.model)  # a model without a usable key fails here, not in a worker

    def plan_id(self, step_id: str) -> str:
        """The plan's id in the history table: ``"0005/ttl"``."""
        return f"{step_id}/{self.name}"

    def run(
        self,
        ctx: MigrationContext,
        *,
        threads: int | None = None,
        lease_seconds: float | None = None,
    ) -> BackfillResult:
        """Make or resume this step's plan and work on it until every segment is done.

        Other processes join with ``portchops migrate work`` meanwhile. When one
        segment's function raises, the others finish their page, store it and hand
        their segments back, and the error goes up (the step is recorded as failed;
        running it again resumes from the checkpoints). A plan that is done already (the
        step was interrupted after it, or other workers finished it) returns at once:
        the step is recorded as applied only when its ``up`` returns.

        Returns:
            What this process did (`BackfillResult`).

        Raises:
            BackfillCancelled: an operator cancelled it (``portchops migrate cancel``).
        """
        leases = LeaseTable(ctx.conn)
        leases.ensure()
        plan = self._plan(ctx, leases)
        if plan is None:
            ctx.console.print(f"  backfill {self.name}: done already (resumed after it)")
            return BackfillResult(completed=True)
        return self._work(ctx, leases, plan, threads=threads, lease_seconds=lease_seconds)

    def dry_run(self, ctx: MigrationContext) -> BackfillResult | None:
        """Scan the table and run the function on every page, sending no write: the
        result counts the rows and the writes held back (`BackfillResult.would_write`).
        The plan is a throwaway one (dropped at the end; no ``migrate work`` joins it).
        None when the table does not exist yet (a step before this one creates it)."""
        table = ctx.table_name(self.model)
        if tables.describe_table(table, conn=ctx.conn) is None:
            ctx.console.print(f"  backfill {self.name}: {table} does not exist yet")
            return None
        leases = LeaseTable(ctx.conn)
        leases.ensure()
        plan = self._new_plan(ctx, leases, self.plan_id(ctx.id) + "@dry")
        try:
            return self._work(ctx, leases, plan, dry_run=True)
        finally:
            leases.drop(plan.plan_id, plan.run, plan.total)

    def _work(
        self,
        ctx: MigrationContext,
        leases: LeaseTable,
        plan: Plan,
        *,
        threads: int | None = None,
        lease_seconds: float | None = None,
        dry_run: bool = False,
    ) -> BackfillResult:
        hook = ctx._hook
        worker = Worker(
            leases=leases,
            plan=plan,
            backfill=self,
            owner=owner_name(),
            threads=threads or self.threads,
            lease_seconds=lease_seconds or self.lease_seconds,
            send=ctx.call,
            on_checkpoint=None if hook is None else (lambda k, v: hook(ctx.number, k, v)),
            on_complete=lambda: _finished(ctx, leases, plan),
            console=ctx.console,
            dry_run=dry_run,
        )
        with ctx.progress() as bar:
            task = bar.add_task(f"backfill {self.name}", total=plan.estimate or None)
            result = worker.run(lambda n: bar.advance(task, n))
        writes = f"{result.written} written"
        if dry_run:
            writes = f"{result.would_write} write(s) held back"
        ctx.console.print(
            f"  backfill {self.name}: {result.segments} segment(s) here, "
            f"{result.scanned} row(s) scanned, {writes}"
        )
        return result

    def _plan(self, ctx: MigrationContext, leases: LeaseTable) -> Plan | None:
        """This run's plan: the one named on the step's history item (None when it is
        done), else a new one (also after a cancelled one)."""
        plan_id = self.plan_id(ctx.id)
        attribute = _RUN_ATTRIBUTE + self.name
        record = ctx._history.get(ctx.id) or {}
        run = record.get(attribute, {}).get("S")
        header = leases.header(plan_id) if isinstance(run, str) else None
        if header is not None and header.get("run", {}).get("S") == run:
            state = header.get("status", {}).get("S")
            if state == DONE:
                return None
            old = Plan.from_header(plan_id, header)
            if state != CANCELLED:
                _mark_running(ctx, attribute, old.run)
                return old
            leases.drop(plan_id, old.run, old.total)  # cancelled: start over
        plan = self._new_plan(ctx, leases, plan_id)
        _mark_running(ctx, attribute, plan.run)
        return plan

    def _new_plan(self, ctx: MigrationContext, leases: LeaseTable, plan_id: str) -> Plan:
        table = ctx.table_name(self.model)
        described = ctx.call("DescribeTable", {"TableName": table})["Table"]
        count = int(described.get("ItemCount", 0))
        size = int(described.get("TableSizeBytes", 0))
        total = self.segments or plan_segments(count, size, minimum=self.threads)
        plan = Plan(
            plan_id=plan_id,
            run=f"{plan_id}@{uuid.uuid4().hex[:12]}",
            table=table,
            total=total,
            estimate=count,
            started_at=datetime.now(UTC),
            checksum=ctx._migration.checksum if ctx._migration else "",
        )
        leases.create(plan_id, plan.run, total, plan.header_fields())
        ctx.console.print(
            f"  backfill {self.name}: {total} segment(s) over {table} (~{count} rows); "
            "more workers: portchops migrate work"
        )
        return plan


def _mark_running(ctx: MigrationContext, attribute: str, run: str) -> None:
    """Name the run on the step's history item, status ``running``: what workers join."""
    ctx._history.call(
        "UpdateItem",
        {
            "Key": {"id": {"S": ctx.id}},
            "UpdateExpression": "SET #r = :r, #s = :running",
            "ConditionExpression": "attribute_not_exists(#s) OR #s <> :applied",
            "ExpressionAttributeNames": {"#r": attribute, "#s": "status"},
            "ExpressionAttributeValues": {
                ":r": {"S": run},
                ":running": {"S": "running"},
                ":applied": {"S": "applied"},
            },
        },
    )


def finish_plan(leases: LeaseTable, plan: Plan) -> bool:
    """Every segment is done: mark the plan done (the step's ``up`` goes on; the step is
    recorded as applied when it returns, by the runner, not by whoever was last).
    Returns whether this call marked it (once, whoever gets there first)."""
    try:
        leases.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": plan.plan_id}},
                "UpdateExpression": "SET #s = :done",
                "ConditionExpression": "#r = :run AND #s <> :done",
                "ExpressionAttributeNames": {"#s": "status", "#r": "run"},
                "ExpressionAttributeValues": {":done": {"S": DONE}, ":run": {"S": plan.run}},
            },
        )
    except ConditionFailed:
        return False  # done already, or gone (the step was recorded meanwhile)
    return True


def _finished(ctx: MigrationContext, leases: LeaseTable, plan: Plan) -> None:
    if finish_plan(leases, plan):
        ctx.console.print(f"  backfill {plan.plan_id}: done (the last segment was here)")


def plans_of(record: RawItem | None) -> list[tuple[str, str]]:
    """(plan id, run) of every backfill named on a step's history item."""
    if not record:
        return []
    step_id = record.get("id", {}).get("S", "")
    return [
        (f"{step_id}/{name[len(_RUN_ATTRIBUTE) :]}", value["S"])
        for name, value in sorted(record.items())
        if name.startswith(_RUN_ATTRIBUTE) and isinstance(value.get("S"), str)
    ]


def _named_plans(leases: LeaseTable, record: RawItem | None) -> list[tuple[Plan, str | None]]:
    """Each plan named on a step's history item whose header is still that run's, with
    the header's status."""
    found: list[tuple[Plan, str | None]] = []
    for plan_id, run in plans_of(record):
        header = leases.header(plan_id)
        if header is not None and header.get("run", {}).get("S") == run:
            found.append((Plan.from_header(plan_id, header), header.get("status", {}).get("S")))
    return found


def drop_plans(leases: LeaseTable, record: RawItem | None) -> None:
    """Delete the plans named on a step's history item (the step is recorded applied)."""
    for plan, _ in _named_plans(leases, record):
        leases.drop(plan.plan_id, plan.run, plan.total)


def live_plans(leases: LeaseTable, record: RawItem | None) -> list[Plan]:
    """The plans named on a step's history item that are running or paused."""
    return [plan for plan, state in _named_plans(leases, record) if state in (RUNNING, PAUSED)]


def set_plans(leases: LeaseTable, record: RawItem | None, state: str) -> list[Plan]:
    """Set every live plan of a step to `state` (`PAUSED` or `RUNNING`); returns them."""
    plans = live_plans(leases, record)
    for plan in plans:
        leases.set_header(plan.plan_id, "status", {"S": state})
    return plans


def cancel_plans(
    leases: LeaseTable, record: RawItem | None, console: Console, *, poll: float = 0.2
) -> list[Plan]:
    """Cancel every live plan of a step and wait until no worker can write for it any
    more: each segment handed back, or its lease seen standing still for a whole lease
    by this clock (its holder stops on its own before that, see `Lease.check`).
    Returns the plans cancelled."""
    plans = live_plans(leases, record)
    observed = Observed()
    for plan in plans:
        leases.set_header(plan.plan_id, "status", {"S": CANCELLED})
        leases.cancel(plan.run, plan.total)
        console.print(f"  cancelled backfill {plan.plan_id}")
        while True:
            held = [s for s in leases.segments(plan.run, plan.total) if s.owner is not None]
            waiting = [s for s in held if not observed.expired(s, s.lease_seconds)]
            if not waiting:
                break
            time.sleep(poll)  # polling the segments' owners and heartbeats, nothing else
    return plans


def owner_name() -> str:
    """This process's name in the leases: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backfills_of(step: Callable[..., object]) -> list[Backfill]:
    """The `Backfill` objects declared at module level in the module of `step` (its
    ``up``), in the order declared."""
    namespace: dict[str, object] = getattr(step, "__globals__", {})
    return [value for value in namespace.values() if isinstance(value, Backfill)]


def find_backfill(step: Callable[..., object], name: str) -> Backfill:
    """The `Backfill` called `name` declared in the module that defines `step` (its ``up``).

    Raises:
        MigrationError: the module declares no backfill of that name.
    """
    owner = getattr(step, "__self__", None)
    if isinstance(owner, Backfill) and owner.name == name:
        return owner
    for value in backfills_of(step):
        if value.name == name:
            return value
    raise MigrationError(f"the migration declares no Backfill named {name!r} at module level")

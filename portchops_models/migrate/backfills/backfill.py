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
last segment records the step as applied, once (a conditional write), whoever it is.

Delivery is at least once: after a crash, the page that was in flight when the
worker died is handed out again, once. Make the function's writes conditional on
the row's state (as 0005 does: ``SET ttl`` only where there is none), so a page
done again changes nothing.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.condition import Condition

from ...errors import InvalidRequest
from ...models.base import BaseModel
from ...models.projections import Projection
from ...models.shape import RawItem, shape_of
from ..discovery import Migration
from ..errors import MigrationError
from ..history import _History
from .lease import LeaseTable
from .rate import Rate
from .worker import BackfillResult, Batch, Plan, Worker

if TYPE_CHECKING:
    from ..context import MigrationContext

__all__ = [
    "Backfill",
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
        running it again resumes from the checkpoints).

        Returns:
            What this process did (`BackfillResult`).
        """
        leases = LeaseTable(ctx.conn)
        leases.ensure()
        plan = self._plan(ctx, leases)
        migration = ctx._migration
        history = ctx._history
        hook = ctx._hook

        def complete() -> None:
            if migration is not None and complete_plan(leases, history, migration, plan):
                ctx.console.print(f"  recorded {ctx.id} as applied (the last segment was here)")

        worker = Worker(
            leases=leases,
            plan=plan,
            backfill=self,
            owner=owner_name(),
            threads=threads or self.threads,
            lease_seconds=lease_seconds or self.lease_seconds,
            send=ctx.call,
            on_checkpoint=None if hook is None else (lambda k, v: hook(ctx.number, k, v)),
            on_complete=complete,
            console=ctx.console,
        )
        with ctx.progress() as bar:
            task = bar.add_task(f"backfill {self.name}", total=plan.estimate or None)
            result = worker.run(lambda n: bar.advance(task, n))
        ctx.console.print(
            f"  backfill {self.name}: {result.segments} segment(s) here, "
            f"{result.scanned} row(s) scanned, {result.written} written"
        )
        return result

    def _plan(self, ctx: MigrationContext, leases: LeaseTable) -> Plan:
        """This run's plan: the one named on the step's history item, else a new one."""
        plan_id = self.plan_id(ctx.id)
        attribute = _RUN_ATTRIBUTE + self.name
        record = ctx._history.get(ctx.id) or {}
        run = record.get(attribute, {}).get("S")
        header = leases.header(plan_id) if isinstance(run, str) else None
        if header is not None and header.get("run", {}).get("S") == run:
            plan = Plan.from_header(plan_id, header)
            _mark_running(ctx, attribute, plan.run)
            return plan
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
        _mark_running(ctx, attribute, plan.run)
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


def complete_plan(leases: LeaseTable, history: _History, migration: Migration, plan: Plan) -> bool:
    """Every segment is done: record the step as applied (once, whoever gets here first),
    then drop the plan's items. Returns whether this call recorded it."""
    ms = (datetime.now(UTC) - plan.started_at).total_seconds() * 1000
    recorded = history.applied(migration, at=plan.started_at, duration_ms=ms)
    leases.drop(plan.plan_id, plan.run, plan.total)
    return recorded


def owner_name() -> str:
    """This process's name in the leases: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def find_backfill(step: Callable[..., object], name: str) -> Backfill:
    """The `Backfill` called `name` declared in the module that defines `step` (its ``up``).

    Raises:
        MigrationError: the module declares no backfill of that name.
    """
    owner = getattr(step, "__self__", None)
    if isinstance(owner, Backfill) and owner.name == name:
        return owner
    namespace: dict[str, object] = getattr(step, "__globals__", {})
    for value in namespace.values():
        if isinstance(value, Backfill) and value.name == name:
            return value
    raise MigrationError(f"the migration declares no Backfill named {name!r} at module level")

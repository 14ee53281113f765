"""The backfill worker: claims segments, scans them page by page, checkpoints, renews.

One `Worker` per process, with ``threads`` segment loops and one heartbeat thread
that renews every lease it holds. It runs until every segment of the plan is done
(by it or by others), taking over segments whose lease ran out.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pynamodb.expressions.condition import Condition
from rich.console import Console
from rich.markup import escape

from ...errors import ConditionFailed, ThrottledError, TransactionCanceled
from ...models.base import BaseModel
from ...models.projections import Projection
from ...models.shape import RawItem, shape_of
from ...ops import requests
from ..errors import MigrationError
from .lease import Lease, LeaseLost, LeaseTable, Observed, Renewer
from .rate import Rate, SharedRate

__all__ = ["BackfillCancelled", "BackfillResult", "Batch", "Job", "Plan", "Worker"]

Send = Callable[[str, dict[str, Any]], dict[str, Any]]


class Job(Protocol):
    """What a `Worker` reads of the backfill it runs (`portchops_models.migrate.Backfill`)."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> type[BaseModel]: ...
    @property
    def per_item(self) -> Callable[[Batch, RawItem], int | bool | None] | None: ...
    @property
    def per_page(self) -> Callable[[Batch, list[RawItem]], int | None] | None: ...
    @property
    def projection(self) -> type[Projection[Any]] | None: ...
    @property
    def filter_condition(self) -> Condition | None: ...
    @property
    def page_size(self) -> int: ...
    @property
    def rate(self) -> Rate | None: ...


_CAPACITY_OPS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query",
     "Scan", "TransactGetItems", "TransactWriteItems"}
)  # fmt: skip
_WRITE_OPS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
#: A plan's operator states, as its header's ``status`` holds them.
RUNNING, PAUSED, CANCELLED, DONE = "running", "paused", "cancelled", "done"
#: Backing off a throttled page: the first wait, the longest, and how many in a row.
BACKOFF_BASE, BACKOFF_MAX, BACKOFF_TRIES = 0.5, 30.0, 8


class BackfillCancelled(MigrationError):
    """An operator cancelled the backfill (``portchops migrate cancel`` or ``down``)."""


def _failed(reasons: list[object], index: int) -> bool:
    reason = reasons[index] if index < len(reasons) else None
    return getattr(reason, "code", None) == "ConditionalCheckFailed"


@dataclass(frozen=True)
class Plan:
    """A backfill's plan as its header records it."""

    plan_id: str
    run: str
    table: str
    total: int
    estimate: int
    started_at: datetime
    checksum: str = ""

    def header_fields(self) -> RawItem:
        """The header item's attributes (besides its key)."""
        return {
            "run": {"S": self.run},
            "data_table": {"S": self.table},
            "total_segments": {"N": str(self.total)},
            "estimate": {"N": str(self.estimate)},
            "started_at": {"S": self.started_at.isoformat()},
            "status": {"S": "running"},
            "checksum": {"S": self.checksum or "-"},
        }

    @classmethod
    def from_header(cls, plan_id: str, item: RawItem) -> Plan:
        """The plan a header item describes."""
        return cls(
            plan_id=plan_id,
            run=item["run"]["S"],
            table=item["data_table"]["S"],
            total=int(item["total_segments"]["N"]),
            estimate=int(item.get("estimate", {}).get("N", "0")),
            started_at=datetime.fromisoformat(item["started_at"]["S"]),
            checksum=item.get("checksum", {}).get("S", ""),
        )


@dataclass
class Batch:
    """What a backfill's function gets with each page.

    Every request goes out only while the segment's lease is still this worker's by
    its own clock (`Lease.check`): a worker paused past its lease sends nothing more.
    A write that must not land once the lease is gone (a paused worker resumed in the
    middle of a request) goes through `fenced`.

    Attributes:
        table: the full name of the table being backfilled.
        segment: the scan segment the page comes from.
        items: the page's rows (raw DynamoDB items).
        capacity: capacity units consumed so far for this page (the scan and `call`).
        lease: the segment's lease (None outside a worker, e.g. in a unit test).
        dry_run: writes are counted in `would_write`, not sent.
        would_write: in a dry run, how many writes were held back.
    """

    table: str
    segment: int
    items: list[RawItem]
    _send: Send = field(repr=False)
    capacity: float = 0.0
    lease: Lease | None = field(default=None, repr=False)
    dry_run: bool = False
    would_write: int = 0

    @property
    def fence(self) -> int:
        """The lease's fencing counter (0 outside a worker): higher for every new holder."""
        return 0 if self.lease is None else self.lease.fence

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One DynamoDB call (e.g. ``"UpdateItem"``) with the run's retries and metrics;
        its consumed capacity counts towards a capacity `Rate`.

        Raises:
            LeaseLost: the lease is lost or may have run out: nothing was sent.
        """
        if self.lease is not None:
            self.lease.check()
        if self.dry_run and operation in _WRITE_OPS:
            self.would_write += 1
            return {}
        request = dict(params)
        if operation in _CAPACITY_OPS:
            request.setdefault("ReturnConsumedCapacity", "TOTAL")
        answer = self._send(operation, request)
        consumed = answer.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            if isinstance(entry, dict):
                self.capacity += float(entry.get("CapacityUnits", 0.0))
        return answer

    def fenced(self, action: Literal["Put", "Update", "Delete"], params: dict[str, Any]) -> None:
        """One write on `table` that applies only if the segment's lease is still this
        worker's when DynamoDB applies it: a transaction of the write and a check of
        the lease item's fence and owner. It costs 2 write units per unit of the write
        plus 2 for the check (transactional writes count double), against 1: use it
        where a write after a takeover would do harm (a row function that is not
        idempotent, or whose condition a late write could still meet).

        Example (migration 0005)::

            batch.fenced("Update", {"Key": key, "UpdateExpression": "SET #t = :t", ...})

        Raises:
            ConditionFailed: the write's own condition failed (nothing applied).
            LeaseLost: the lease was taken over or cancelled (nothing applied).
        """
        if self.lease is None:
            raise MigrationError("Batch.fenced needs a segment lease (a worker's page)")
        request = {
            "TransactItems": [
                {action: {"TableName": self.table, **params}},
                self.lease.condition_check(),
            ],
            "ClientRequestToken": uuid.uuid4().hex,  # a retried send applies once
        }
        try:
            self.call("TransactWriteItems", request)
        except TransactionCanceled as err:
            if _failed(list(err.reasons), 1):
                self.lease.lost = True
                raise LeaseLost(f"lost the lease on {self.lease.label}: write held back") from None
            if _failed(list(err.reasons), 0):
                raise ConditionFailed(
                    f"condition failed on {self.table}", table=self.table, code=err.code
                ) from None
            raise


@dataclass
class BackfillResult:
    """What one process did for a backfill (others may have done the rest)."""

    segments: int = 0
    scanned: int = 0
    processed: int = 0
    written: int = 0
    lost: int = 0
    throttled: int = 0
    would_write: int = 0
    seconds: float = 0.0
    completed: bool = False


class Worker:
    """Works on one plan until every segment is done; see the module docstring.

    Args:
        dry_run: scan and hand every page to the function but send no write (counted
            in `BackfillResult.would_write`); the plan is a throwaway one.
    """

    def __init__(
        self,
        *,
        leases: LeaseTable,
        plan: Plan,
        backfill: Job,
        owner: str,
        threads: int,
        lease_seconds: float,
        send: Send,
        on_complete: Callable[[], None],
        on_checkpoint: Callable[[str, str], None] | None = None,
        console: Console | None = None,
        dry_run: bool = False,
    ) -> None:
        self.leases, self.plan, self.backfill = leases, plan, backfill
        self.owner, self.threads, self.lease_seconds = owner, threads, lease_seconds
        self.send, self.on_complete, self.on_checkpoint = send, on_complete, on_checkpoint
        self.console = console or Console(quiet=True)
        self.dry_run = dry_run
        self.shape = shape_of(backfill.model)
        self.rate = (
            None if backfill.rate is None else SharedRate(leases, plan.plan_id, backfill.rate)
        )
        self.stop = threading.Event()
        self.done = threading.Event()
        self.result = BackfillResult()
        self.renewer = Renewer(lease_seconds, self.stop)
        self.control = Control(leases, plan.plan_id, every=min(1.0, lease_seconds / 6))
        self._observed = Observed()
        self._last_capacity = 1.0
        self._lock = threading.Lock()

    def run(self, advance: Callable[[int], None] = lambda n: None) -> BackfillResult:
        """Work until the plan is complete; re-raise the first error of a segment loop.

        On KeyboardInterrupt (Ctrl-C, or SIGTERM where `work` maps it) every loop
        finishes its page, stores it and hands its segment back before it goes up.

        Raises:
            BackfillCancelled: an operator cancelled the plan (every loop stopped first).
        """
        started = time.perf_counter()
        self.renewer.start()
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="portchops-backfill")
        futures = [pool.submit(self._loop, i, advance) for i in range(self.threads)]
        interrupted: KeyboardInterrupt | None = None
        try:
            while not all(f.done() for f in futures):
                try:
                    wait(futures, timeout=0.5)
                except KeyboardInterrupt as err:
                    interrupted = err
                    self.stop.set()
        finally:
            self.stop.set()
            pool.shutdown(wait=True)
            self.renewer.join()
            self.result.seconds = time.perf_counter() - started
        if interrupted is not None:
            raise interrupted
        for future in futures:
            future.result()
        return self.result

    # ------------------------------------------------------------------ claiming

    def _loop(self, index: int, advance: Callable[[int], None]) -> None:
        owner = f"{self.owner}/{index}"
        rng = random.Random(owner)
        poll = min(1.0, self.lease_seconds / 4)
        try:
            while not (self.stop.is_set() or self.done.is_set()):
                state = self.control.state()
                if state == CANCELLED:
                    raise BackfillCancelled(f"backfill {self.plan.plan_id} was cancelled")
                lease = None if state == PAUSED else self._claim(owner, rng)
                if lease is None:
                    self.stop.wait(poll)  # paused, or every segment is leased: wait
                    continue
                try:
                    self._segment(lease, advance)
                except LeaseLost as lost:
                    self._count(lost=1)
                    self.console.print(f"  [yellow]{escape(lost.message)}[/]")
        except BaseException:
            self.stop.set()  # the others finish the page they are on, then stop
            raise

    def _claim(self, owner: str, rng: random.Random) -> Lease | None:
        """A segment to work on: one whose lease stood still for a whole lease (by this
        process's clock) first, else a free one; None when there is none now."""
        states = self.leases.segments(self.plan.run, self.plan.total)
        if all(s.phase == "done" for s in states):
            self._complete()
            return None
        with self._lock:
            expired = [
                s for s in states
                if s.phase in ("free", "leased") and s.owner is not None
                and self._observed.expired(s, self.lease_seconds)
            ]  # fmt: skip
        free = [s for s in states if s.phase in ("free", "leased") and s.owner is None]
        rng.shuffle(expired)
        rng.shuffle(free)
        for state in [*expired, *free]:
            lease = self.leases.claim(
                self.plan.run, state, owner=owner, lease_seconds=self.lease_seconds
            )
            if lease is not None:
                return lease
        return None

    def _complete(self) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self.on_complete()
            self.result.completed = True
            self.done.set()

    # ------------------------------------------------------------------ one segment

    def _segment(self, lease: Lease, advance: Callable[[int], None]) -> None:
        self.renewer.hold(lease)
        finished = False
        try:
            finished = self._pages(lease, advance)
        finally:
            self.renewer.drop(lease)
            if not finished:
                lease.release()
        if finished:
            self._count(segments=1)
            if all(s.phase == "done" for s in self.leases.segments(self.plan.run, self.plan.total)):
                self._complete()

    def _pages(self, lease: Lease, advance: Callable[[int], None]) -> bool:
        """Work through the segment page by page; True once it is done, False when
        stopped or paused (the segment is handed back with its checkpoint)."""
        b = self.backfill
        built = requests.scan(
            self.shape,
            self.plan.table,
            segment=lease.segment,
            total_segments=self.plan.total,
            limit=b.page_size,
            filter_condition=b.filter_condition,
            projection=b.projection,
        )
        key = f"{b.name}/segment-{lease.segment}-of-{self.plan.total}"
        throttled = 0
        while not self.stop.is_set():
            lease.check()
            state = self.control.state()
            if state == CANCELLED:
                raise BackfillCancelled(f"backfill {self.plan.plan_id} was cancelled")
            if state == PAUSED:
                return False
            if self.rate is not None:
                # paid before it is read: a row rate at the page's row limit, a capacity
                # rate at what this process's last page cost
                items = self.rate.rate.unit == "items"
                self.rate.pay(b.page_size if items else self._last_capacity, stop=self.stop)
                if self.stop.is_set():
                    return False
            params = dict(built.params)
            if lease.position:
                params["ExclusiveStartKey"] = lease.position
            batch = Batch(
                self.plan.table, lease.segment, [], self.send, lease=lease, dry_run=self.dry_run
            )
            try:
                page = batch.call("Scan", params)
                batch.items = page.get("Items", [])
                written = self._apply(batch)
            except ThrottledError as err:
                throttled += 1
                if throttled > BACKOFF_TRIES:
                    raise
                pause = min(BACKOFF_MAX, BACKOFF_BASE * 2**throttled) * random.uniform(0.5, 1)
                self._count(throttled=1)
                self.console.print(
                    f"  [yellow]{escape(lease.label)}: throttled ({escape(err.message)}); "
                    f"backing off {pause:.1f} s, then the page again[/]"
                )
                self.stop.wait(pause)
                continue
            throttled = 0
            scanned = int(page.get("ScannedCount", len(batch.items)))
            last: RawItem | None = page.get("LastEvaluatedKey")
            if self.on_checkpoint is not None:
                self.on_checkpoint(key, json.dumps(last, sort_keys=True) if last else "done")
            if last:
                lease.checkpoint(last, scanned)
            else:
                lease.finish(scanned)
            self._count(
                scanned=scanned,
                processed=len(batch.items),
                written=0 if self.dry_run else written,
                would_write=batch.would_write,
            )
            advance(scanned)
            self._last_capacity = max(batch.capacity, 0.5)
            if not last:
                return True
        return False

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self.result, name, getattr(self.result, name) + amount)

    def _apply(self, batch: Batch) -> int:
        b = self.backfill
        if b.per_page is not None:
            return int(b.per_page(batch, batch.items) or 0)
        assert b.per_item is not None
        return sum(int(b.per_item(batch, item) or 0) for item in batch.items)


class Control:
    """A plan's operator state (`RUNNING`, `PAUSED`, `CANCELLED`, `DONE`) from its
    header, read at most every `every` seconds by one process (a consistent read).

    A header that is gone reads as `DONE` (the step was recorded and the plan dropped).
    """

    def __init__(self, leases: LeaseTable, plan_id: str, *, every: float) -> None:
        self.leases, self.plan_id, self.every = leases, plan_id, every
        self._read_at = -math.inf
        self._state = RUNNING
        self._lock = threading.Lock()

    def state(self) -> str:
        """The state, at most `every` seconds old."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.every:
                header = self.leases.header(self.plan_id)
                status = None if header is None else header.get("status", {}).get("S")
                self._state = status if isinstance(status, str) else DONE
                self._read_at = now
            return self._state

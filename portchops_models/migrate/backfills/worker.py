"""The backfill worker: claims segments, scans them page by page, checkpoints, renews.

One `Worker` per process, with ``threads`` segment loops and one heartbeat thread
that renews every lease it holds. It runs until every segment of the plan is done
(by it or by others), taking over segments whose lease ran out.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pynamodb.expressions.condition import Condition
from rich.console import Console
from rich.markup import escape

from ...models.base import BaseModel
from ...models.projections import Projection
from ...models.shape import RawItem, shape_of
from ...ops import requests
from .lease import Lease, LeaseLost, LeaseTable, Renewer
from .rate import Rate, SharedRate

__all__ = ["BackfillResult", "Batch", "Job", "Plan", "Worker"]

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

    Attributes:
        table: the full name of the table being backfilled.
        segment: the scan segment the page comes from.
        items: the page's rows (raw DynamoDB items).
        capacity: capacity units consumed so far for this page (the scan and `call`).
    """

    table: str
    segment: int
    items: list[RawItem]
    _send: Send = field(repr=False)
    capacity: float = 0.0

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One DynamoDB call (e.g. ``"UpdateItem"``) with the run's retries and metrics;
        its consumed capacity counts towards a capacity `Rate`."""
        request = dict(params)
        if operation in _CAPACITY_OPS:
            request.setdefault("ReturnConsumedCapacity", "TOTAL")
        answer = self._send(operation, request)
        consumed = answer.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            if isinstance(entry, dict):
                self.capacity += float(entry.get("CapacityUnits", 0.0))
        return answer


@dataclass
class BackfillResult:
    """What one process did for a backfill (others may have done the rest)."""

    segments: int = 0
    scanned: int = 0
    processed: int = 0
    written: int = 0
    lost: int = 0
    seconds: float = 0.0
    completed: bool = False


class Worker:
    """Works on one plan until every segment is done; see the module docstring."""

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
    ) -> None:
        self.leases, self.plan, self.backfill = leases, plan, backfill
        self.owner, self.threads, self.lease_seconds = owner, threads, lease_seconds
        self.send, self.on_complete, self.on_checkpoint = send, on_complete, on_checkpoint
        self.console = console or Console(quiet=True)
        self.shape = shape_of(backfill.model)
        self.rate = (
            None if backfill.rate is None else SharedRate(leases, plan.plan_id, backfill.rate)
        )
        self.stop = threading.Event()
        self.done = threading.Event()
        self.result = BackfillResult()
        self.renewer = Renewer(lease_seconds, self.stop)
        self._lock = threading.Lock()

    def run(self, advance: Callable[[int], None] = lambda n: None) -> BackfillResult:
        """Work until the plan is complete; re-raise the first error of a segment loop.

        On KeyboardInterrupt (Ctrl-C, or SIGTERM where `work` maps it) every loop
        finishes its page, stores it and hands its segment back before it goes up.
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
                lease = self._claim(owner, rng)
                if lease is None:
                    self.stop.wait(poll)  # every free segment is leased: wait for one to end
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
        states = self.leases.segments(self.plan.run, self.plan.total)
        if all(s.phase == "done" for s in states):
            self._complete()
            return None
        free = [s.segment for s in states if s.phase == "free"]
        rng.shuffle(free)
        for segment in free:
            lease = self.leases.claim(
                self.plan.run, segment, owner=owner, lease_seconds=self.lease_seconds
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
        while not self.stop.is_set():
            if lease.lost:
                raise LeaseLost(f"lost the lease on {lease.label}")
            started = self.leases.clock()
            params = dict(built.params)
            if lease.position:
                params["ExclusiveStartKey"] = lease.position
            batch = Batch(self.plan.table, lease.segment, [], self.send)
            page = batch.call("Scan", params)
            batch.items = page.get("Items", [])
            scanned = int(page.get("ScannedCount", len(batch.items)))
            written = self._apply(batch)
            last: RawItem | None = page.get("LastEvaluatedKey")
            if self.on_checkpoint is not None:
                self.on_checkpoint(key, json.dumps(last, sort_keys=True) if last else "done")
            if last:
                lease.checkpoint(last, scanned)
            else:
                lease.finish(scanned)
            self._count(scanned=scanned, processed=len(batch.items), written=written)
            advance(scanned)
            if self.rate is not None:
                cost = scanned if self.rate.rate.unit == "items" else batch.capacity
                self.rate.pay(cost, started=started, stop=self.stop)
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

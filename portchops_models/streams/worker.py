"""`StreamWorker`: a model's change stream handed to a function, resumably, by a fleet.

A worker reads every shard of the model's table stream (`ShardReader`), parents
before children (`readable`), and hands each batch of a shard to the handler as a
``list[Change[M]]``, in the shard's order, so in order per key. It holds one
**lease per shard** in the ``{prefix}stream-leases`` table (created if missing),
with a fencing counter: the backfills' leases (`LeaseTable.claim_item`), renewed on
a thread of their own. After the handler returns, the shard's checkpoint (the last
sequence number handled) is written under the lease, so:

* a crash (even SIGKILL) redelivers at most the batch in flight and never skips a
  record: the next holder starts after the checkpoint;
* any number of processes with the same ``name`` share the shards, each taking its
  fair share of the free ones; a lease that is not renewed expires and another
  process takes the shard over from its checkpoint;
* a worker paused past its lease finds its fence stale at its next checkpoint: it
  drops the shard (the successor redelivers the batch) instead of writing over it.

A handler's exception stops `StreamWorker.run` and propagates (leases handed back,
nothing checkpointed past the last batch the handler finished). With
``retry_handler=True`` (the ``portchops streams run`` worker) a failing batch is
delivered again with backoff instead; after three failures it is delivered one
record at a time, so the record that keeps failing is named (its sequence number,
in the console, the ``portchops_models.streams`` log and the metrics) while the
records before it are handled and checkpointed.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.console import Console
from rich.markup import escape

from ..admin.tables import stream_arn
from ..errors import InvalidRequest, PortChopsError
from ..migrate.backfills.backfill import owner_name
from ..migrate.backfills.lease import Lease, LeaseLost, LeaseTable, Renewer
from ..models.base import BaseModel
from ..observe import logs, tracing
from ..observe.metrics import Metrics
from ..transport.connection import Connection, current_connection
from .changes import Change, decoder_for
from .shards import Shard, ShardReader, ShardSource, readable

__all__ = ["STREAM_LEASES", "StreamResult", "StreamWorker"]

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Base name of the table the shard leases live in (the prefix is added; the IAM
#: policy names it too).
STREAM_LEASES = "stream-leases"
_DONE = "done"
#: The kind of a worker's presence item (``<name>#<arn>#~<owner>``) in the lease table.
_WORKER = "stream-worker"
#: Failures of one batch before it is delivered a record at a time.
_BISECT_AFTER = 3
_MAX_BACKOFF = 30.0
_GET_RECORDS_LIMIT = 1000


@dataclass
class StreamResult:
    """What one `StreamWorker.run` did.

    Attributes:
        records: records handed to the handler (and checkpointed).
        batches: handler calls that returned.
        shards_finished: closed shards read to their end.
        handler_errors: handler calls that raised (each retried, or the last one raised).
        leases_lost: shards given up because another worker took them over.
        lag_seconds: the age of the newest record handled when the run ended (0 if the
            worker had caught up).
        poison: ``(shard id, sequence number)`` of a record the handler kept failing on.
    """

    records: int = 0
    batches: int = 0
    shards_finished: int = 0
    handler_errors: int = 0
    leases_lost: int = 0
    lag_seconds: float = 0.0
    poison: tuple[str, str] | None = None
    seconds: float = 0.0


@dataclass(eq=False)
class _Held:
    """One shard this worker holds: its lease and where its reading stands."""

    shard: Shard
    lease: Lease
    iterator: str | None = None
    failures: int = 0
    lag: float = 0.0


@dataclass
class _Failing:
    record: str
    attempts: int = 0


class StreamWorker(Generic[ModelT]):
    """Hands every change of `model`'s table to `handler`, shard by shard, resumably.

    Example::

        def project(changes: list[Change[Note]]) -> None:
            for change in changes:
                read_model.apply(change)

        StreamWorker(Note, project, name="read-model").run(until_idle=True)

    Args:
        model: the model whose table's stream is read (`enable_stream` turns it on).
        handler: called with each batch of one shard's changes, in order; the batch is
            checkpointed once it returns.
        name: the fleet's name: processes with the same name share the shards and the
            checkpoints; another name reads the stream again from its start.
        batch_size: records per ``GetRecords`` call (1-1000).
        lease_seconds: how long a shard's lease lasts without renewal (renewed every
            third of it); a dead worker's shards are taken over after this.
        poll_seconds: the wait between rounds that found nothing new.
        retry_handler: deliver a failing batch again with backoff (from `poll_seconds`,
            doubling up to 30 s) and report the record that keeps failing, instead of
            raising.
        metrics: where records, lag, handler errors and requests are counted.
        console: where progress and reports are printed (default: nowhere).
        conn: the connection (default: the configured one).
        source: where shards are read (default: the table's stream, through the Streams
            API); leases and checkpoints are kept as for the table's stream.
    """

    def __init__(
        self,
        model: type[ModelT],
        handler: Callable[[list[Change[ModelT]]], object],
        *,
        name: str,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        retry_handler: bool = False,
        metrics: Metrics | None = None,
        console: Console | None = None,
        conn: Connection | None = None,
        source: ShardSource | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "#" in name:
            raise InvalidRequest(
                f"a stream worker's name is a non-empty string without '#', got {name!r}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= _GET_RECORDS_LIMIT
        ):
            raise InvalidRequest(
                f"batch_size must be an int from 1 to {_GET_RECORDS_LIMIT}, got {batch_size!r}"
            )
        for label, value in (("lease_seconds", lease_seconds), ("poll_seconds", poll_seconds)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < math.inf
            ):
                raise InvalidRequest(f"{label} must be a positive number of seconds, got {value!r}")
        if not callable(handler):
            raise InvalidRequest(f"handler must be callable, got {handler!r}")
        self.decoder = decoder_for(model)
        self.model = model
        self.handler = handler
        self.name = name
        self.batch_size = batch_size
        self.lease_seconds = float(lease_seconds)
        self.poll_seconds = float(poll_seconds)
        self.retry_handler = retry_handler
        self.metrics = metrics
        self.console = console or Console(quiet=True)
        self.conn = conn
        self.source = source
        self.owner = owner_name()
        self.result = StreamResult()
        self._stop = threading.Event()
        self._held: dict[str, _Held] = {}
        self._failing: _Failing | None = None

    def stop(self) -> None:
        """Ask `run` to end after the batch in flight (safe from a signal handler or
        another thread): its leases are handed back."""
        self._stop.set()

    def run(self, *, until_idle: bool = False) -> StreamResult:
        """Read and hand on changes until `stop`, or with ``until_idle`` until this worker
        has nothing left to do: its shards read to the stream's head, no free shard, no
        shard of a worker that is gone (shards of live workers are theirs).

        Raises:
            ConfigurationError: the table's stream is off.
            Exception: whatever the handler raised (without ``retry_handler``).
        """
        conn = self.conn or current_connection()
        table = self.model.table_name()
        arn, _view = stream_arn(self.model, conn=conn, table_name=table)
        self._table, self._arn = table, arn
        self._prefix = f"{self.name}#{arn}#"
        self._reader = self.source or ShardReader(conn, arn, table=table, metrics=self.metrics)
        self._leases = LeaseTable(conn, table=STREAM_LEASES)
        self._leases.ensure()
        self._stop.clear()
        renewer = self._renewer = Renewer(self.lease_seconds, self._stop)
        started = time.perf_counter()
        renewer.start()
        try:
            self._announced = -math.inf
            while not self._stop.is_set():
                progressed, pending = self._round()
                if progressed:
                    continue
                if until_idle and not pending:
                    break
                self._stop.wait(self.poll_seconds)
        finally:
            self._stop.set()
            renewer.join()
            for held in list(self._held.values()):
                self._let_go(held)
            self._withdraw()
            self.result.seconds = time.perf_counter() - started
        return self.result

    # ------------------------------------------------------------------ one round

    def _round(self) -> tuple[bool, bool]:
        """Claim this worker's share of the free shards, then read one batch of every
        shard held. Returns (whether any record was handed on, whether work is left that
        this worker could do: a readable shard it does not hold, or a failing batch)."""
        shards = self._reader.shards()
        self._announce()
        finished, taken, owners = self._lease_states()
        ready = readable(shards, finished)
        share = fair_share(len(ready), len(owners))
        for held in list(self._held.values())[share:]:  # workers joined: hand the surplus on
            self._let_go(held)
            self.console.print(f"  handed {escape(held.lease.label)} on to a worker that joined")
        for shard in ready:
            if len(self._held) >= share:
                break
            if shard.shard_id not in taken and shard.shard_id not in self._held:
                self._claim(shard)
        progressed = False
        for held in list(self._held.values()):
            if self._stop.is_set():
                break
            progressed |= self._read(held)
        failing = any(held.failures for held in self._held.values())
        left = [s.shard_id for s in ready if s.shard_id not in self._held]
        # a shard nobody live holds is work for this worker: free, or a gone worker's
        # (its lease expires, then this worker takes it over from the checkpoint)
        orphaned = [s for s in left if taken.get(s) not in owners]
        # a worker over its share hands shards on at its next round: wait for them
        counts = Counter(holder for holder in taken.values() if holder != self.owner)
        owed = len(self._held) < share and any(n > share for n in counts.values())
        return progressed, failing or bool(orphaned) or owed

    def _announce(self) -> None:
        """Say this worker is here (each third of a lease: one small write), so workers
        that hold every shard hand some on to it."""
        now = self._leases.clock()
        if now - self._announced < self.lease_seconds / 3:
            return
        self._leases.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": self._presence()}},
                "UpdateExpression": "SET #k = :k, #x = :x",
                "ExpressionAttributeNames": {"#k": "kind", "#x": "expires_at"},
                "ExpressionAttributeValues": {
                    ":k": {"S": _WORKER},
                    ":x": {"N": f"{now + self.lease_seconds:.3f}"},
                },
            },
        )
        self._announced = now

    def _withdraw(self) -> None:
        """Remove this worker's presence (best effort: it expires anyway)."""
        with contextlib.suppress(PortChopsError):
            self._leases.call("DeleteItem", {"Key": {"id": {"S": self._presence()}}})

    def _presence(self) -> str:
        return f"{self._prefix}~{self.owner}"

    def _lease_states(self) -> tuple[set[str], dict[str, str], set[str]]:
        """(finished shard ids, the worker holding each shard under a live lease, live
        workers) of this fleet on this stream."""
        now = self._leases.clock()
        finished: set[str] = set()
        taken: dict[str, str] = {}
        owners: set[str] = {self.owner}
        for item in self._leases.items(self._prefix):
            shard = item["id"]["S"][len(self._prefix) :]
            if item.get("kind", {}).get("S") == _WORKER:
                if float(item.get("expires_at", {}).get("N", "0")) > now:
                    owners.add(shard[1:])
                continue
            if item.get("state", {}).get("S") == _DONE:
                finished.add(shard)
                continue
            owner = item.get("owner", {}).get("S")
            expires = float(item.get("expires_at", {}).get("N", "0"))
            if owner and expires > now:
                taken[shard] = owner.rsplit("/", 1)[0]
        return finished, taken, owners

    def _claim(self, shard: Shard) -> None:
        lease = self._leases.claim_item(
            self._prefix + shard.shard_id,
            f"shard {shard.shard_id} of {self._table} ({self.name})",
            owner=f"{self.owner}/0",
            lease_seconds=self.lease_seconds,
            create={"kind": {"S": "stream-shard"}, "table": {"S": self._table}},
        )
        if lease is None:
            return
        self._held[shard.shard_id] = _Held(shard, lease)  # read from its checkpoint
        self._renewer.hold(lease)
        self.console.print(f"  claimed {escape(lease.label)} (fence {lease.fence})")

    def _read(self, held: _Held) -> bool:
        """One GetRecords on a held shard, its changes handed on and checkpointed."""
        if held.lease.lost:
            self._lost(held)
            return False
        if held.iterator is None:
            held.iterator = self._reader.iterator(held.shard.shard_id, _after(held.lease))
        try:
            records, following = self._reader.records(held.iterator, self.batch_size)
        except PortChopsError as err:
            if err.code == "ExpiredIteratorException":  # iterators last 15 minutes
                held.iterator = None
                return False
            raise
        if records:
            changes = self.decoder.decode_all(records)
            if not changes:  # an entity table's records of other entities only
                if not self._checkpoint(held, records[-1]["dynamodb"]["SequenceNumber"], 0):
                    return False
            elif not self._deliver(held, changes):
                return False  # delivered again next round, from the same checkpoint
            held.lag = _lag(changes[-1].created_at) if changes else 0.0
        else:
            held.lag = 0.0
        if self.metrics is not None:
            self.metrics.record_stream_batch(len(records), lag_seconds=held.lag)
        self.result.lag_seconds = max((h.lag for h in self._held.values()), default=0.0)
        if following is None:
            self._finish(held)
        else:
            held.iterator = following
        return bool(records)

    # ------------------------------------------------------------------ handing on

    def _deliver(self, held: _Held, changes: list[Change[ModelT]]) -> bool:
        """Hand `changes` to the handler and checkpoint; False if they are to be delivered
        again (a retried handler failure, or a lost lease)."""
        bisect = self.retry_handler and held.failures >= _BISECT_AFTER
        batches = [[change] for change in changes] if bisect else [changes]
        for batch in batches:
            try:
                with tracing.Call("StreamWorker", "handle", 0.0, lambda: self._table):
                    self.handler(batch)
            except Exception as err:
                self._handler_failed(held, batch, err)
                return False
            if not bisect:  # one by one until the whole batch went through
                held.failures = 0
            failing = self._failing
            if failing is not None and failing.record == batch[-1].sequence_number:
                self._failing = None  # the record that kept failing went through at last
            if not self._checkpoint(held, batch[-1].sequence_number, len(batch)):
                return False
            self.result.records += len(batch)
            self.result.batches += 1
        held.failures = 0
        return True

    def _checkpoint(self, held: _Held, sequence: str, count: int) -> bool:
        """Record that the shard was handled up to `sequence`; False if the lease is lost."""
        try:
            held.lease.checkpoint({"after": {"S": sequence}}, count)
        except LeaseLost:
            self._lost(held)
            return False
        return True

    def _handler_failed(self, held: _Held, batch: list[Change[ModelT]], err: Exception) -> None:
        self.result.handler_errors += 1
        if self.metrics is not None:
            self.metrics.record_handler_error()
        held.iterator = None  # read again from the checkpoint
        if not self.retry_handler:
            raise err
        held.failures += 1
        if len(batch) == 1:
            record = batch[0].sequence_number
            failing = self._failing
            if failing is None or failing.record != record:
                failing = self._failing = _Failing(record)
            failing.attempts += 1
            self.result.poison = (held.shard.shard_id, record)
            logs.handler_failing(
                self.name, self._table, held.shard.shard_id, record, failing.attempts, err
            )
            self.console.print(
                f"  [red]the handler keeps failing on record {record} of shard "
                f"{escape(held.shard.shard_id)} ({failing.attempts} times): {escape(repr(err))}[/]"
            )
        self._stop.wait(min(_MAX_BACKOFF, self.poll_seconds * 2 ** min(held.failures - 1, 10)))

    # ------------------------------------------------------------------ giving up shards

    def _finish(self, held: _Held) -> None:
        """A closed shard read to its end: marked done, so its children may be read."""
        try:
            held.lease.finish(0)
        except LeaseLost:
            self._lost(held)
            return
        self._forget(held)
        self.result.shards_finished += 1

    def _lost(self, held: _Held) -> None:
        self._forget(held)
        self.result.leases_lost += 1
        self.console.print(f"  [yellow]lost the lease on {escape(held.lease.label)}[/]")

    def _let_go(self, held: _Held) -> None:
        self._forget(held)
        held.lease.release()

    def _forget(self, held: _Held) -> None:
        self._held.pop(held.shard.shard_id, None)
        self._renewer.drop(held.lease)


def fair_share(readable_shards: int, workers: int) -> int:
    """How many shards one of `workers` live workers takes (the others take the rest).

    >>> fair_share(5, 2), fair_share(1, 3), fair_share(0, 1)
    (3, 1, 0)
    """
    return math.ceil(readable_shards / max(1, workers))


def _after(lease: Lease) -> str | None:
    """The sequence number a lease's checkpoint says was handled last (None: none yet)."""
    position = lease.position or {}
    after = position.get("after", {}).get("S")
    return after if isinstance(after, str) else None


def _lag(created: float | None) -> float:
    return 0.0 if created is None else max(0.0, time.time() - created)

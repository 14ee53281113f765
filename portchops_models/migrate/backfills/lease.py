"""Segment leases for backfills, kept in the history table and claimed with fencing.

A plan has a header item (``id = "0005/ttl"``: the run, the segment count, the
shared rate's schedule) and one item per segment (``id = "<run>#000003"``),
written before the header, so a worker that sees the plan sees all its segments;
they are deleted once the step is recorded as applied. Their ids are not step
ids, so the runner's history ignores them. Every write is a conditional UpdateItem:

* **claim**: only a segment that is neither done nor cancelled and has no owner, or
  whose lease has expired; it sets the owner and adds 1 to the segment's **fencing
  counter** ``fence``, returning the new value and the checkpoint to resume from;
* **renew**, **checkpoint**: only while ``fence`` and ``owner`` are still the caller's
  and the segment is not cancelled; each adds 1 to the lease's **heartbeat** ``beat``;
* **finish**, **release**: only while ``fence`` and ``owner`` are still the caller's.
  A worker that was paused past its lease and taken over finds its fence stale: its
  write fails (`LeaseLost`) and the successor's progress stands.

Expiry does not trust the clocks of other machines (as Kinesis's KCL does it): a
backfill worker that sees a leased segment remembers its owner and heartbeat and when
it first saw them *by its own monotonic clock* (`Observed`); once they have not
changed for a whole lease it claims the segment, on the condition that they still
have not. The holder stops on its own: before every request it checks that less
than a lease, less `SAFETY`, has passed by *its* clock since it sent the last
renewal that succeeded (`Lease.alive`). The renewal was applied after it was sent
and observed after it was applied, so the holder's deadline comes before the
observer's, whatever the clocks say; only their rates must agree (to far better
than the `SAFETY` fraction). ``expires_at`` is still written, for people reading
the table. Stream shard leases (`claim_item`) compare ``expires_at`` with the
claimer's clock and so assume clocks in sync to well within a lease.
Why DynamoDB: conditional writes are atomic and the table is already there, so no
lock service has to run beside the app.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ConditionFailed, PortChopsError
from ...models.shape import RawItem
from ...transport.connection import Connection
from ..errors import MigrationError
from ..history import HISTORY_TABLE, _History

__all__ = ["SAFETY", "Lease", "LeaseLost", "LeaseTable", "Observed", "Renewer", "SegmentState"]

_DONE, _CANCELLED = "done", "cancelled"
_PLAN, _SEGMENT = "backfill-plan", "backfill-segment"
_OWNED = "#f = :fence AND #o = :me"
_LIVE = f"{_OWNED} AND attribute_not_exists(#st)"
#: The part of a lease its holder keeps back: it stops once ``1 - SAFETY`` of a lease
#: has passed since it sent its last renewal, before any observer can take over.
SAFETY = 0.2


class LeaseLost(MigrationError):
    """The segment's lease is no longer ours: it expired and another worker took it over."""


SegmentPhase = Literal["free", "leased", "done", "cancelled"]


@dataclass(frozen=True)
class SegmentState:
    """One segment as the history table has it (what `status` and the workers read).

    ``phase`` reads ``expires_at`` with the reader's clock (for display); workers
    decide expiry with `Observed` instead.
    """

    segment: int
    phase: SegmentPhase
    owner: str | None
    expires_at: float
    fence: int
    scanned: int
    beat: int = 0
    lease_seconds: float = 0.0


class Observed:
    """When this process first saw each lease's (owner, heartbeat), by its own
    monotonic clock: a lease is expired once they have not changed for its length.

    Args:
        clock: monotonic seconds (injectable).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[int, tuple[str | None, int, float]] = {}

    def expired(self, state: SegmentState, lease_seconds: float) -> bool:
        """Record `state`; whether its lease has stood still for `lease_seconds`."""
        now = self.clock()
        owner, beat, since = self._seen.get(state.segment, (None, -1, now))
        if (owner, beat) != (state.owner, state.beat):
            self._seen[state.segment] = (state.owner, state.beat, now)
            return False
        return state.owner is not None and now - since >= lease_seconds


def _text(item: RawItem, name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return value if isinstance(value, str) else None


def _number(item: RawItem, name: str) -> float:
    value = item.get(name, {}).get("N")
    return float(value) if isinstance(value, str) else 0.0


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


class LeaseTable:
    """Plan headers and segment leases in the history table, over the shared connection.

    Args:
        conn: the connection (`current_connection()`).
        clock: epoch seconds (injectable, so tests move time without waiting).
        table: the base name of the table the leases live in (the prefix is added):
            the migration history by default; stream workers keep theirs apart.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        clock: Callable[[], float] = time.time,
        table: str = HISTORY_TABLE,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.history = _History(conn, table)
        self.table = self.history.table

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request on the history table (not counted in a step's metrics)."""
        return self.history.call(operation, params)

    def exists(self) -> bool:
        """Whether the history table is there."""
        return self.history.exists()

    def ensure(self) -> None:
        """Create the history table unless it exists."""
        self.history.ensure()

    def _scan(self, condition: str, names: dict[str, str], values: RawItem) -> list[RawItem]:
        found: list[RawItem] = []
        params: dict[str, Any] = {
            "ConsistentRead": True,
            "FilterExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self.call("Scan", params)
            found.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ headers

    def header(self, plan: str) -> RawItem | None:
        """A plan's header item (consistent read), or None."""
        item = self.history.get(plan)
        return item if item is not None and _text(item, "kind") == _PLAN else None

    def headers(self) -> list[RawItem]:
        """Every plan header in the history table."""
        return self._scan("#k = :k", {"#k": "kind"}, {":k": {"S": _PLAN}})

    def create(self, plan: str, run: str, total: int, fields: RawItem) -> None:
        """Write a run's segments (all free), then its header: whoever sees the header
        sees every segment. A new run of the plan replaces the old header."""
        puts = [
            {"PutRequest": {"Item": {
                "id": {"S": _segment_id(run, n)}, "kind": {"S": _SEGMENT},
                "run": {"S": run}, "segment": {"N": str(n)}, "fence": {"N": "0"},
            }}}
            for n in range(total)
        ]  # fmt: skip

        def send_round(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
            left: list[dict[str, Any]] = []
            for start in range(0, len(pending), 25):
                chunk = pending[start : start + 25]
                answer = self.conn.send(
                    "BatchWriteItem", {"RequestItems": {self.table: chunk}}, table=self.table
                )
                left.extend(answer.get("UnprocessedItems", {}).get(self.table, []))
            return left

        self.conn.retry.resubmit(puts, send_round, table=self.table, operation="BatchWriteItem")
        item = {"id": {"S": plan}, "kind": {"S": _PLAN}, "run": {"S": run}, **fields}
        self.call("PutItem", {"Item": item})

    def set_header(self, plan: str, name: str, value: dict[str, Any]) -> None:
        """Set one attribute of a plan's header."""
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": plan}},
                "UpdateExpression": "SET #a = :v",
                "ConditionExpression": "attribute_exists(#id)",
                "ExpressionAttributeNames": {"#a": name, "#id": "id"},
                "ExpressionAttributeValues": {":v": value},
            },
        )

    def drop(self, plan: str, run: str, total: int) -> None:
        """Delete a finished run's header and segments (the step is recorded as applied)."""
        with contextlib.suppress(ConditionFailed):
            self.call(
                "DeleteItem",
                {
                    "Key": {"id": {"S": plan}},
                    "ConditionExpression": "#r = :r",
                    "ExpressionAttributeNames": {"#r": "run"},
                    "ExpressionAttributeValues": {":r": {"S": run}},
                },
            )
        deletes = [
            {"DeleteRequest": {"Key": {"id": {"S": _segment_id(run, n)}}}} for n in range(total)
        ]
        for start in range(0, len(deletes), 25):
            chunk = deletes[start : start + 25]
            self.conn.send(
                "BatchWriteItem", {"RequestItems": {self.table: chunk}}, table=self.table
            )

    # ------------------------------------------------------------------ segments

    def segments(self, run: str, total: int) -> list[SegmentState]:
        """The state of every segment of a run (a consistent Scan), by number. A segment
        that is gone counts as done: its run finished and was dropped."""
        now = self.clock()
        seen: dict[int, SegmentState] = {}
        prefix = {":k": {"S": _SEGMENT}, ":p": {"S": f"{run}#"}}
        names = {"#k": "kind", "#id": "id"}
        for item in self._scan("#k = :k AND begins_with(#id, :p)", names, prefix):
            number = int(_number(item, "segment"))
            owner, expires = _text(item, "owner"), _number(item, "expires_at")
            phase: SegmentPhase = "free"
            state = _text(item, "state")
            if state in (_DONE, _CANCELLED):
                phase = "done" if state == _DONE else "cancelled"
            elif owner is not None and expires > now:
                phase = "leased"
            seen[number] = SegmentState(
                number, phase, owner, expires, int(_number(item, "fence")),
                int(_number(item, "scanned")), int(_number(item, "beat")),
                _number(item, "lease_seconds"),
            )  # fmt: skip
        return [seen.get(n, SegmentState(n, "done", None, 0.0, 0, 0)) for n in range(total)]

    def claim(
        self, run: str, state: SegmentState, *, owner: str, lease_seconds: float
    ) -> Lease | None:
        """Take a segment as `state` saw it: free (no owner), or held by a lease that
        `Observed` found expired, on the condition that its owner and heartbeat are
        still those seen. None if it changed meanwhile (or is done, cancelled, gone).
        The fencing counter goes up by one on every claim."""
        seen: tuple[str, dict[str, str], RawItem]
        if state.owner is None:
            seen = ("attribute_not_exists(#o)", {}, {})
        else:
            seen = (
                "#o = :seen AND " + ("#b = :beat" if state.beat else "attribute_not_exists(#b)"),
                {"#b": "beat"},
                {":seen": {"S": state.owner}} | ({":beat": _n(state.beat)} if state.beat else {}),
            )
        return self.claim_item(
            _segment_id(run, state.segment),
            f"segment {state.segment} of {run}",
            owner=owner,
            lease_seconds=lease_seconds,
            segment=state.segment,
            seen=seen,
        )

    def cancel(self, run: str, total: int) -> int:
        """Mark every segment of a run that is not done cancelled: no one claims, renews
        or checkpoints it again (a holder's next renewal finds its lease lost). Returns
        how many segments were still open."""
        cancelled = 0
        for n in range(total):
            try:
                self.call(
                    "UpdateItem",
                    {
                        "Key": {"id": {"S": _segment_id(run, n)}},
                        "UpdateExpression": "SET #st = :c",
                        "ConditionExpression": (
                            "attribute_exists(#id) AND attribute_not_exists(#st)"
                        ),
                        "ExpressionAttributeNames": {"#st": "state", "#id": "id"},
                        "ExpressionAttributeValues": {":c": {"S": _CANCELLED}},
                    },
                )
                cancelled += 1
            except ConditionFailed:
                continue  # done already, or gone
        return cancelled

    def claim_item(
        self,
        item_id: str,
        label: str,
        *,
        owner: str,
        lease_seconds: float,
        create: RawItem | None = None,
        segment: int = 0,
        seen: tuple[str, dict[str, str], RawItem] | None = None,
    ) -> Lease | None:
        """Take the lease item `item_id` if it is free or its lease expired (and it is not
        done); None if another holder has it. The fencing counter goes up by one.

        Args:
            label: names the lease in messages (e.g. ``"shard shardId-0001"``).
            create: make the item with these attributes if it does not exist yet (stream
                shards appear as the stream splits); without it a missing item is not
                claimed (a backfill's segments are all written up front).
            seen: (condition, names, values) on the holder instead of comparing
                ``expires_at`` with this clock (`claim` passes what `Observed` saw).
        """
        sent = time.monotonic()
        now = self.clock()
        names = {
            "#o": "owner", "#x": "expires_at", "#c": "claimed_at",
            "#f": "fence", "#st": "state", "#id": "id", "#l": "lease_seconds",
        }  # fmt: skip
        values: dict[str, Any] = {
            ":me": {"S": owner}, ":x": _n(now + lease_seconds), ":now": _n(now),
            ":one": {"N": "1"}, ":l": _n(float(lease_seconds)),
        }  # fmt: skip
        update = "SET #o = :me, #x = :x, #c = :now, #l = :l"
        for n, (name, value) in enumerate(sorted((create or {}).items())):
            names[f"#a{n}"], values[f":a{n}"] = name, value
            update += f", #a{n} = :a{n}"
        condition = "attribute_not_exists(#st) AND (attribute_not_exists(#o) OR #x <= :now)"
        if seen is not None:
            condition = f"attribute_not_exists(#st) AND {seen[0]}"
            names |= seen[1]
            values |= seen[2]
        if create is None:
            condition = f"attribute_exists(#id) AND {condition}"
        else:
            del names["#id"]
        try:
            answer = self.call(
                "UpdateItem",
                {
                    "Key": {"id": {"S": item_id}},
                    "UpdateExpression": f"{update} ADD #f :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValues": "ALL_NEW",
                },
            )
        except ConditionFailed:
            return None
        item: RawItem = answer["Attributes"]
        saved = _text(item, "position")
        return Lease(
            table=self,
            item_id=item_id,
            label=label,
            owner=owner,
            fence=int(_number(item, "fence")),
            lease_seconds=lease_seconds,
            position=json.loads(saved) if saved else None,
            segment=segment,
            renewed_at=sent,
        )

    def items(self, prefix: str) -> list[RawItem]:
        """Every lease item whose id starts with `prefix` (a consistent Scan)."""
        return self._scan("begins_with(#id, :p)", {"#id": "id"}, {":p": {"S": prefix}})


def _segment_id(run: str, segment: int) -> str:
    return f"{run}#{segment:06d}"


@dataclass(eq=False)
class Lease:
    """A lease item held by one worker: every write is conditional on its fence and owner.

    Attributes:
        item_id: the lease item's id (a backfill segment's, a stream shard's).
        label: how messages name it (``"segment 3 of 0005/ttl@..."``).
        position: the position to resume from (None: the start).
        segment: a backfill segment's number (0 for other leases).
        lost: set once a write found the lease gone (renewals run on another thread).
        renewed_at: when (this process's monotonic clock) the last claim or renewal
            that succeeded was sent.
    """

    table: LeaseTable
    item_id: str
    label: str
    owner: str
    fence: int
    lease_seconds: float
    position: RawItem | None = None
    segment: int = 0
    lost: bool = field(default=False)
    renewed_at: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """When (monotonic) this holder must stop: ``1 - SAFETY`` of a lease after the
        last renewal that succeeded was sent."""
        return self.renewed_at + self.lease_seconds * (1 - SAFETY)

    def alive(self) -> bool:
        """Whether the lease is still ours by this process's own clock (and not lost)."""
        return not self.lost and time.monotonic() < self.deadline

    def check(self) -> None:
        """Raise `LeaseLost` unless `alive`: called before every request made under it.

        Raises:
            LeaseLost: lost, or past its deadline by this process's clock.
        """
        if self.lost:
            raise self._lost()
        if time.monotonic() >= self.deadline:
            raise LeaseLost(
                f"the lease on {self.label} (fence {self.fence}) may have run out "
                "by this process's clock: stopped before sending anything more"
            )

    def condition_check(self) -> dict[str, Any]:
        """A ``TransactWriteItems`` entry that holds only while this lease is ours and
        live (fence, owner, not cancelled): put it beside a write to fence the write."""
        return {
            "ConditionCheck": {
                "TableName": self.table.table,
                "Key": {"id": {"S": self.item_id}},
                "ConditionExpression": _LIVE,
                "ExpressionAttributeNames": {"#f": "fence", "#o": "owner", "#st": "state"},
                "ExpressionAttributeValues": {
                    ":fence": {"N": str(self.fence)},
                    ":me": {"S": self.owner},
                },
            }
        }

    def _write(
        self, update: str, names: dict[str, str], values: dict[str, Any], *, live: bool = True
    ) -> None:
        if self.lost:
            raise self._lost()
        sent = time.monotonic()
        if live:
            update += " ADD #b :one" if " ADD " not in update else ", #b :one"
            names = {**names, "#b": "beat", "#st": "state"}
            values = {**values, ":one": {"N": "1"}}
        try:
            self.table.call(
                "UpdateItem",
                {
                    "Key": {"id": {"S": self.item_id}},
                    "UpdateExpression": update,
                    "ConditionExpression": _LIVE if live else _OWNED,
                    "ExpressionAttributeNames": {"#f": "fence", "#o": "owner", **names},
                    "ExpressionAttributeValues": {
                        ":fence": {"N": str(self.fence)},
                        ":me": {"S": self.owner},
                        **values,
                    },
                },
            )
        except ConditionFailed:
            self.lost = True
            raise self._lost() from None
        if live:
            self.renewed_at = sent

    def _lost(self) -> LeaseLost:
        return LeaseLost(
            f"lost the lease on {self.label} (fence {self.fence}): "
            "another worker took it over; its progress stands"
        )

    def _expiry(self) -> dict[str, str]:
        return _n(self.table.clock() + self.lease_seconds)

    def renew(self) -> None:
        """Extend the lease by its length from now.

        Raises:
            LeaseLost: another worker holds the segment now.
        """
        self._write("SET #x = :x", {"#x": "expires_at"}, {":x": self._expiry()})

    def checkpoint(self, position: RawItem, scanned: int) -> None:
        """Store the scan position reached (and renew the lease), fenced.

        Raises:
            LeaseLost: another worker holds the segment now; nothing was written.
        """
        text = json.dumps(position, sort_keys=True)
        self._write(
            "SET #p = :p, #x = :x ADD #n :n",
            {"#p": "position", "#x": "expires_at", "#n": "scanned"},
            {":p": {"S": text}, ":x": self._expiry(), ":n": {"N": str(scanned)}},
        )
        self.position = position

    def finish(self, scanned: int) -> None:
        """Mark the segment done and give it up, fenced.

        Raises:
            LeaseLost: another worker holds the segment now; nothing was written.
        """
        self._write(
            "SET #st = :done REMOVE #p, #x ADD #n :n",
            {"#st": "state", "#p": "position", "#x": "expires_at", "#n": "scanned"},
            {":done": {"S": _DONE}, ":n": {"N": str(scanned)}},
        )

    def release(self) -> None:
        """Hand the segment back (its checkpoint stays) so another worker can claim it at
        once; nothing to do if it is no longer ours."""
        if self.lost:
            return
        with contextlib.suppress(LeaseLost, PortChopsError):
            self._write("REMOVE #o, #x", {"#x": "expires_at"}, {}, live=False)


class Renewer:
    """Renews every lease it holds, each third of a lease, on a thread of its own, until
    `stop` is set. A renewal that finds the lease taken marks it `Lease.lost` (its holder
    stops before its next write); a transient failure is tried again at the next beat.

    Args:
        lease_seconds: the leases' length.
        stop: set to end the thread.
    """

    def __init__(self, lease_seconds: float, stop: threading.Event) -> None:
        self.lease_seconds = lease_seconds
        self.stop = stop
        self._held: set[Lease] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="portchops-lease")

    def hold(self, lease: Lease) -> None:
        """Renew `lease` from now on."""
        with self._lock:
            self._held.add(lease)

    def drop(self, lease: Lease) -> None:
        """Stop renewing `lease` (it was finished or handed back)."""
        with self._lock:
            self._held.discard(lease)

    def held(self) -> list[Lease]:
        """The leases renewed now."""
        with self._lock:
            return list(self._held)

    def start(self) -> None:
        """Start the renewing thread."""
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end (after `stop` was set)."""
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(self.lease_seconds / 3):
            for lease in self.held():
                try:
                    lease.renew()
                except LeaseLost:
                    continue  # marked lost: its holder stops before its next write
                except PortChopsError:
                    continue  # transient: the next beat tries again while the lease lasts

"""Exactly-once writes when answers are lost: request markers and reconciliation.

A write whose answer is lost (the connection reset, or the read timed out,
after DynamoDB applied it) is retried; without care the retry applies it a
second time (a counter counts twice) or fails its own condition (a versioned
save reports a conflict with itself). DynamoDB's own remedy, the
``ClientRequestToken`` of a transaction, is ignored by moto and dynalite, so
the layer uses the practice that holds on every engine:

* Each non-idempotent write call holds a *marker* for as long as it runs: an
  attribute ``_pcw_<process>_<slot>`` whose value is unique to the call (the
  epoch second it was first sent and a random id). An UpdateItem carries
  ``attribute_not_exists(<marker>) OR <marker> <> <value>`` in its condition, so
  a retry of an update that already landed cannot apply again: it fails its
  condition instead.
* A conditional PutItem (a version check or the caller's condition) carries the
  marker in the item.
* When such a write reports ``ConditionalCheckFailed``, the layer reads the item
  back (strongly consistent) and `reconcile` decides: the marker holds this call's
  value, so the write landed (success, no error); or the stored item has expired
  (still stored until DynamoDB sweeps it), so it is deleted and the write starts
  again from a fresh row; or the condition really failed (`ConditionFailed`).

Markers stay bounded. A slot is the lowest number not held by another call of
this process on the same item, so the calls of one process that follow each
other reuse one attribute (each overwrites the last value, whose call has
ended), and concurrent calls on one item take one slot each. An item therefore
carries one marker per process that wrote it recently, plus one per call that
was in flight at once; 300 updates in a row leave one marker, not 300. A marker
older than the longest a call can last (``call_timeout``, plus a margin for clock
skew between machines) can never be retried again: the next update through the
layer that sees it in the item removes it (`stale_markers`); a PutItem replaces
the whole item and drops them all.
"""

from __future__ import annotations

import enum
import os
import secrets
import threading
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "MARKER_PREFIX",
    "Marker",
    "Outcome",
    "StaleMarkers",
    "is_marker",
    "marker",
    "reconcile",
    "stale_markers",
]

#: The prefix of marker attribute names.
MARKER_PREFIX = "_pcw_"
#: How far apart two machines' clocks may be, for pruning markers another machine wrote.
CLOCK_SKEW_SECONDS = 60.0


class Outcome(enum.Enum):
    """What a write that reported ``ConditionalCheckFailed`` actually did."""

    #: the marker is in the stored item: an earlier attempt of this call landed.
    APPLIED = "applied"
    #: the stored item has expired: delete it and write again on a fresh row.
    EXPIRED = "expired"
    #: the condition (or the version check) really is false.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Marker:
    """One call's marker: the attribute it writes and the value only this call writes.

    Attributes:
        name: ``_pcw_<process>_<slot>``.
        value: ``"<epoch second first sent>:<random id>"`` (a String).
    """

    name: str
    value: str

    def raw(self) -> dict[str, str]:
        """The marker's value as DynamoDB stores it."""
        return {"S": self.value}

    def landed(self, stored: Mapping[str, Mapping[str, Any]] | None) -> bool:
        """Whether `stored` (an item read back) holds this call's value."""
        if stored is None:
            return False
        held = stored.get(self.name)
        return held is not None and held.get("S") == self.value


class _Slots:
    """The marker slots held by this process's calls in flight, per item."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[Hashable, set[int]] = {}
        self.process = secrets.token_urlsafe(6)

    def take(self, item: Hashable) -> int:
        with self.lock:
            held = self.held.setdefault(item, set())
            slot = 0
            while slot in held:
                slot += 1
            held.add(slot)
            return slot

    def give_back(self, item: Hashable, slot: int) -> None:
        with self.lock:
            held = self.held.get(item)
            if held is not None:
                held.discard(slot)
                if not held:
                    del self.held[item]


_slots = _Slots()


def _after_fork() -> None:  # a child is another process: markers of its own
    global _slots
    _slots = _Slots()


os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def marker(table: str, key: Hashable, *, now: float | None = None) -> Iterator[Marker]:
    """Hold a marker for one write call on item `key` of `table` while the block runs.

    Every attempt of the call uses the marker it yields; the slot is free for the
    next call on the item once the block ends.
    """
    item = (table, key)
    slots = _slots
    slot = slots.take(item)
    try:
        second = int(time.time() if now is None else now)
        yield Marker(
            f"{MARKER_PREFIX}{slots.process}_{slot}", f"{second}:{secrets.token_urlsafe(9)}"
        )
    finally:
        slots.give_back(item, slot)


def is_marker(name: str) -> bool:
    """Whether an attribute name is a write marker."""
    return name.startswith(MARKER_PREFIX)


def reconcile(
    stored: Mapping[str, Mapping[str, Any]] | None, marker: Marker, *, expired: bool
) -> Outcome:
    """Decide what a write that failed its condition did, from the item read back.

    Args:
        stored: the item as stored now (a strongly consistent read), or None.
        marker: the marker this call wrote.
        expired: whether `stored` has expired (its TTL has passed).
    """
    if marker.landed(stored):
        return Outcome.APPLIED
    if stored is not None and expired:
        return Outcome.EXPIRED
    return Outcome.FAILED


def _written_at(value: Mapping[str, Any]) -> float:
    """The epoch second a marker was first sent (``inf`` when it cannot be read)."""
    text = value.get("S")
    if isinstance(text, str):
        return float(text.partition(":")[0])
    return float(value.get("N", "inf"))  # markers of earlier versions: the second alone


def stale_markers(
    item: Mapping[str, Mapping[str, Any]],
    *,
    horizon: float,
    now: float | None = None,
    keep: str | None = None,
) -> list[str]:
    """The markers of `item` older than `horizon` seconds (their calls have all ended),
    other than `keep` (the caller's own, rewritten by its next call)."""
    cutoff = (time.time() if now is None else now) - horizon
    stale = []
    for name, value in item.items():
        if is_marker(name) and name != keep:
            try:
                if _written_at(value) < cutoff:
                    stale.append(name)
            except (TypeError, ValueError, AttributeError):
                stale.append(name)  # not ours to keep
    return stale


class StaleMarkers:
    """Per key, the stale markers an update's answer showed: the next update removes them.

    One per repository (bounded: the least recently updated keys are forgotten, and
    their markers are then pruned by a later update that sees them again).
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        self._found: LRUCache[Hashable, list[str]] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> list[str]:
        """The markers to prune in the next update of `key` (forgotten here)."""
        with self._lock:
            return self._found.pop(key, [])

    def found(self, key: Hashable, names: list[str]) -> None:
        """Remember `names` for the next update of `key`."""
        if names:
            with self._lock:
                self._found[key] = names


def without_markers(names: Iterable[str]) -> list[str]:
    """`names` less the marker attributes (for callers listing an item's attributes)."""
    return [n for n in names if not is_marker(n)]

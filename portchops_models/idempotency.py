"""Exactly-once writes when answers are lost: request markers and reconciliation.

A write whose answer is lost (the connection reset, or the read timed out,
after DynamoDB applied it) is retried; without care the retry applies it a
second time (a counter counts twice) or fails its own condition (a versioned
save reports a conflict with itself). DynamoDB's own remedy, the
``ClientRequestToken`` of a transaction, is ignored by moto and dynalite, so
the layer uses the practice that holds on every engine:

* Each non-idempotent write call draws a request id and writes it into the item
  as a *marker* attribute (``_pcw_<id>``: the epoch second it was first sent).
  An UpdateItem carries ``attribute_not_exists(<marker>)`` in its condition, so
  a retry of an update that already landed cannot apply again: it fails its
  condition instead.
* A conditional PutItem (a version check or the caller's condition) carries the
  marker in the item.
* When such a write reports ``ConditionalCheckFailed``, the layer reads the item
  back (strongly consistent) and `reconcile` decides: the marker is there, so
  the write landed (success, no error); or the stored item has expired (still
  stored until DynamoDB sweeps it), so it is deleted and the write starts again
  from a fresh row; or the condition really failed (`ConditionFailed`).

Every attempt of one call reuses the same marker. Markers are pruned: a marker
older than the longest a call can last (``call_timeout``, plus a margin for
clock skew between machines) can never be retried again, so the next update
through the layer that sees it in the item removes it; a PutItem replaces the
whole item and drops them all.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "MARKER_PREFIX",
    "Outcome",
    "is_marker",
    "new_marker",
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


def new_marker() -> str:
    """A fresh marker attribute name (``_pcw_`` and 16 random URL-safe characters)."""
    return MARKER_PREFIX + secrets.token_urlsafe(12)


def is_marker(name: str) -> bool:
    """Whether an attribute name is a write marker."""
    return name.startswith(MARKER_PREFIX)


def marker_value(now: float | None = None) -> dict[str, str]:
    """The stored value of a marker: the epoch second it was first sent."""
    return {"N": str(int(time.time() if now is None else now))}


def reconcile(
    stored: Mapping[str, Mapping[str, Any]] | None, marker: str, *, expired: bool
) -> Outcome:
    """Decide what a write that failed its condition did, from the item read back.

    Args:
        stored: the item as stored now (a strongly consistent read), or None.
        marker: the marker this call wrote.
        expired: whether `stored` has expired (its TTL has passed).
    """
    if stored is not None and marker in stored:
        return Outcome.APPLIED
    if stored is not None and expired:
        return Outcome.EXPIRED
    return Outcome.FAILED


def stale_markers(
    item: Mapping[str, Mapping[str, Any]], *, horizon: float, now: float | None = None
) -> list[str]:
    """The markers of `item` older than `horizon` seconds: their calls have all ended."""
    cutoff = (time.time() if now is None else now) - horizon
    stale = []
    for name, value in item.items():
        if is_marker(name):
            try:
                if float(value.get("N", "inf")) < cutoff:
                    stale.append(name)
            except (TypeError, ValueError):
                stale.append(name)  # not ours to keep
    return stale


def without_markers(names: Iterable[str]) -> list[str]:
    """`names` less the marker attributes (for callers listing an item's attributes)."""
    return [n for n in names if not is_marker(n)]

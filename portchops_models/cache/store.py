"""The storage of an `ItemCache`: a TTL + LRU map keyed by ``(item_key, variant)`` that
knows which variants of each item it holds, keeps beside each entry what a hit prepared
from it (`Store.prepared`), and the marker of a cached "not found".

`Store.recency` holds every stored key, least recently used first, with the time its
entry expires: the order eviction follows, and what lets a hit on a prepared form check
and renew its entry with two C-level dict operations (`ItemCache.ready`) rather than
through `TTLCache.__getitem__`'s Python frames.
"""

from __future__ import annotations

import contextlib
import enum
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

from cachetools import Cache, TTLCache

from .policy import CachePolicy

__all__ = ["FAILED", "MISSING", "Missing", "NotFound", "Store"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Final = Missing.MISSING
#: the result an async load publishes when its loader raised (waiters then look again).
FAILED: Final = object()


class NotFound:
    """A cached "not found" result with its own expiry (negative_ttl <= ttl)."""

    __slots__ = ("expires",)

    def __init__(self, expires: float) -> None:
        self.expires = expires


class Store(TTLCache[tuple[_K, Hashable], "_V | NotFound"], Generic[_K, _V]):
    """A TTLCache that also knows which variants of each item key it holds.

    Every removal (explicit, LRU eviction, expiry) goes through `__delitem__` or `expire`,
    so the index always matches the keys physically stored.

    ``prepared`` maps a key to ``(value, form, until)``: what `ItemCache.serve` made of the
    value stored there (a decoded model) and the wall-clock time (``time.time()``) after
    which the value itself must no longer be served (its item's own TTL; ``inf`` for
    none). Storing, replacing or removing the entry drops it, so a prepared form never
    outlives its value, and it never counts against ``maxsize``.

    ``recency`` maps every stored key to the time (on the policy's timer) its entry
    expires, least recently used first: every lookup moves its key to the end, and
    eviction (`popitem`) takes the first. Its expiry is read before the entry is stored,
    so it is never later than the one `TTLCache` keeps.
    """

    def __init__(self, policy: CachePolicy) -> None:
        self.variants: dict[_K, set[Hashable]] = {}
        self.prepared: dict[tuple[_K, Hashable], tuple[_V, object, float]] = {}
        self.recency: OrderedDict[tuple[_K, Hashable], float] = OrderedDict()
        self.clock = policy.timer  # the raw timer: `TTLCache.timer` wraps it
        super().__init__(policy.maxsize, policy.ttl, policy.timer)

    def __getitem__(self, key: tuple[_K, Hashable]) -> _V | NotFound:
        value = super().__getitem__(key)
        self.recency.move_to_end(key)
        return value

    def __setitem__(self, key: tuple[_K, Hashable], value: _V | NotFound) -> None:
        expires = self.clock() + self.ttl
        self.prepared.pop(key, None)
        super().__setitem__(key, value)
        self.recency[key] = expires
        self.recency.move_to_end(key)
        self.variants.setdefault(key[0], set()).add(key[1])

    def popitem(self) -> tuple[tuple[_K, Hashable], _V | NotFound]:
        """Evict the least recently used entry (after dropping the expired ones)."""
        with self.timer as now:
            self.expire(now)
            try:
                key = next(iter(self.recency))
            except StopIteration:
                raise KeyError(f"{type(self).__name__} is empty") from None
            value = Cache.__getitem__(self, key)
            del self[key]
            return (key, value)

    def __delitem__(self, key: tuple[_K, Hashable]) -> None:
        try:
            super().__delitem__(key)  # raises KeyError after removing an expired entry
        finally:
            self._forget(key)

    def expire(self, time: float | None = None) -> list[tuple[tuple[_K, Hashable], _V | NotFound]]:
        expired = super().expire(time)
        for key, _ in expired:
            self._forget(key)
        return expired

    def clear(self) -> None:
        super().clear()
        self.variants.clear()
        self.prepared.clear()
        self.recency.clear()

    def discard(self, key: tuple[_K, Hashable]) -> None:
        """Remove ``key`` whether or not it is live."""
        with contextlib.suppress(KeyError):
            del self[key]

    def discard_item(self, item_key: _K) -> None:
        """Remove every variant of ``item_key``."""
        for variant in list(self.variants.get(item_key, ())):
            self.discard((item_key, variant))

    def _forget(self, key: tuple[_K, Hashable]) -> None:
        self.prepared.pop(key, None)
        self.recency.pop(key, None)
        variants = self.variants.get(key[0])
        if variants is not None:
            variants.discard(key[1])
            if not variants:
                del self.variants[key[0]]

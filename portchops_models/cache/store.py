"""The storage of an `ItemCache`: a TTL + LRU map keyed by ``(item_key, variant)`` that
knows which variants of each item it holds, keeps beside each entry what a hit prepared
from it (`Store.prepared`), and the marker of a cached "not found"."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

from cachetools import TTLCache

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

    ``prepared`` maps a key to ``(value, form)``: what `ItemCache.serve` made of the value
    stored there (a decoded model). Storing, replacing or removing the entry drops it, so a
    prepared form never outlives its value, and it never counts against ``maxsize``.
    """

    def __init__(self, policy: CachePolicy) -> None:
        self.variants: dict[_K, set[Hashable]] = {}
        self.prepared: dict[tuple[_K, Hashable], tuple[_V, object]] = {}
        super().__init__(policy.maxsize, policy.ttl, policy.timer)

    def __setitem__(self, key: tuple[_K, Hashable], value: _V | NotFound) -> None:
        self.prepared.pop(key, None)
        super().__setitem__(key, value)
        self.variants.setdefault(key[0], set()).add(key[1])

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
        variants = self.variants.get(key[0])
        if variants is not None:
            variants.discard(key[1])
            if not variants:
                del self.variants[key[0]]

"""`CachePolicy` (how many entries, for how long, which clock) and `CacheInfo` (counters)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["CacheInfo", "CachePolicy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CachePolicy:
    """How many entries a cache keeps and for how long.

    Args:
        maxsize: most entries kept (all variants and "not found" markers count); the least
            recently used entry is evicted first. At least 1.
        ttl: seconds an entry lives after it is stored. Greater than 0.
        negative_ttl: seconds a "not found" result is cached; ``None`` (the default) does
            not cache it. When set, ``0 < negative_ttl <= ttl``.
        timer: the clock, in seconds; inject a fake one so tests never sleep.
    """

    maxsize: int = 500
    ttl: float = 300.0
    negative_ttl: float | None = None
    timer: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        """Reject sizes and durations that cannot work."""
        if isinstance(self.maxsize, bool) or self.maxsize < 1:
            raise ValueError(f"maxsize must be an integer >= 1, got {self.maxsize!r}")
        if not self.ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {self.ttl!r}")
        if self.negative_ttl is not None and not 0 < self.negative_ttl <= self.ttl:
            raise ValueError(
                f"negative_ttl must be None or in (0, ttl={self.ttl!r}], got {self.negative_ttl!r}"
            )


class CacheInfo(NamedTuple):
    """Counters and size of a cache, like `functools.lru_cache`'s ``cache_info()``."""

    hits: int
    misses: int
    maxsize: int
    currsize: int

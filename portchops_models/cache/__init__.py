"""The item cache and its coherence: one layer, three concepts.

- `items`: `ItemCache` (thread-safe TTL + LRU storage, single-flight loads, stale-write
  protection), `CachePolicy` and the `cached` decorator;
- `coherence`: one invalidation registry per process, so every cache of a table sees every
  write made in the process;
- `bus`: the Redis invalidation bus between processes (``PORTCHOPS_CACHE_BUS_URL``).

``from portchops_models.cache import CachePolicy, cached`` is the documented path.
"""

from .items import (
    CacheDecorator,
    CachedFunction,
    CacheInfo,
    CachePolicy,
    ItemCache,
    LoadToken,
    cached,
)

__all__ = [
    "CacheDecorator",
    "CacheInfo",
    "CachePolicy",
    "CachedFunction",
    "ItemCache",
    "LoadToken",
    "cached",
]

"""The item cache and its coherence: one layer, three concepts.

- `items`: `ItemCache`, the engine (lookups, single-flight loads, invalidation, counts),
  over its storage (`store`), its load claims (`loads`) and its `policy`; `decorator`:
  `cached` over it;
- `coherence`: one invalidation registry per process, so every cache of a table sees every
  write made in the process;
- `bus`: the Redis invalidation bus between processes (``PORTCHOPS_CACHE_BUS_URL``).

``from portchops_models.cache import CachePolicy, cached`` is the documented path.
"""

from .decorator import CacheDecorator, CachedFunction, cached
from .items import ItemCache
from .loads import LoadToken
from .policy import CacheInfo, CachePolicy

__all__ = [
    "CacheDecorator",
    "CacheInfo",
    "CachePolicy",
    "CachedFunction",
    "ItemCache",
    "LoadToken",
    "cached",
]

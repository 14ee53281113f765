"""The cache-hit path of point reads: `Hits`, a dictionary lookup and a safe copy.

A repository's ``get``, ``find`` and ``exists`` ask `Hits` first. A hit returns at once,
without the public call's deadline, trace span or connection (nothing waits, nothing
goes on the wire); anything else returns `MISS` and the call takes its whole path
(`portchops_models.ops.reads.find`), which counts, loads, single-flights and caches as
it always has. So a hit changes nothing but its cost (and that it makes no trace span):

- only a stored item whose own TTL has not passed is served (`TableShape.expired`); a
  cached "not found", an expired item, a closed gate (the bus is down: nothing is served),
  an invalid key or projection all take the whole path, which answers or raises as before;
- the cache keeps the item as stored and, beside it, the model (or projection) decoded
  from it on its first hit (`ItemCache.serve`); every hit hands out a copy of that
  template (a frozen projection of immutable values is shared as it is), so a caller that
  changes what it got changes nothing that the next hit returns;
- an encrypted model keeps no decoded template: its cache holds ciphertext only, opened
  on each hit (`portchops_models.models.encryption`);
- counted as any hit: ``cache_hits`` in the metrics and the cache's ``hits`` (as a hit
  makes no span, a model served by `ItemCache.ready` counts on none);
- a model kept from an earlier hit is served by `ItemCache.ready` (a dictionary lookup,
  the entry's two expiry checks and the copy); the rest by `ItemCache.serve`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Final

from ..cache.items import ItemCache
from ..cache.store import MISSING
from ..errors import PortChopsError
from ..models.copies import Template
from ..models.projections import Projection
from ..models.shape import RawItem, TableShape
from . import requests

__all__ = ["MISS", "Hits"]


class _Miss:
    """What `Hits` returns when the call must take its whole path."""

    def __repr__(self) -> str:
        return "MISS"


MISS: Final[Any] = _Miss()


class Hits:
    """The hit path of one repository's cache.

    Args:
        shape: the model's table shape.
        cache: the repository's cache.
        decode: the model's decoder of whole items.
    """

    def __init__(
        self, shape: TableShape, cache: ItemCache[Any, RawItem], decode: Callable[[RawItem], Any]
    ) -> None:
        self._shape = shape
        self._cache = cache
        self._decode = decode
        self._sealed = shape.encryption is not None
        #: whether anything can close the cache's gate under the settings in force: set by
        #: the repository whenever the settings change (`coherence.gated`).
        self.gated = True
        self._until = shape.until if shape.ttl_name is not None else None
        self._templates: dict[type[Projection[Any]] | None, Callable[[RawItem], Template[Any]]] = {}
        # Keys of str parts are their own canonical form: a str that is no valid key is
        # never cached, so looking it up as given misses and the whole path raises.
        plain = shape.entity is None and shape.hash_key.kind == "S"
        self._str_key = plain and shape.range_key is None
        self._str_pair = plain and shape.range_key is not None and shape.range_key.kind == "S"
        self._str_ready = self._str_key and not self._sealed

    def find(self, key: Hashable, projection: object) -> Any:
        """The copy of the cached model (or `projection`) with this key to hand out, or `MISS`."""
        if projection is None and type(key) is str and self._str_ready:
            kept = self._cache.ready(key, None, self.gated)  # the usual hit: a kept
            if kept is not MISSING:  # model, copied
                return kept.copy()  # type: ignore[attr-defined]
        found = self._lookup(key, projection)
        if found is MISS or self._sealed:  # a sealed item was just opened: the caller's own
            return found
        return found.copy()

    def exists(self, key: Hashable) -> Any:
        """``True`` when an unexpired item with this key is cached, else `MISS`."""
        return MISS if self._lookup(key, None) is MISS else True

    def _lookup(self, key: Hashable, projection: object) -> Any:
        """The `Template` of a hit (a sealed model's item freshly opened), or `MISS`."""
        try:
            proj = (
                None if projection is None else requests.check_projection(self._shape, projection)
            )
            canonical = key if type(key) is str and self._str_key else self._canonical(key)
            if self._sealed:  # ciphertext only in the cache, opened on every hit: no template
                found = self._cache.serve(
                    canonical, proj, self._until, self._decoder(proj), keep=False
                )
            else:
                prepare = self._templates.get(proj)
                if prepare is None:
                    prepare = self._templates[proj] = self._templating(proj)
                found = self._cache.serve(canonical, proj, self._until, prepare)
        except PortChopsError:
            return MISS  # the whole path raises it again, under the call's span
        return MISS if found is MISSING else found

    def _decoder(self, projection: type[Projection[Any]] | None) -> Callable[[RawItem], Any]:
        return self._decode if projection is None else projection.from_raw

    def _templating(
        self, projection: type[Projection[Any]] | None
    ) -> Callable[[RawItem], Template[Any]]:
        decode = self._decoder(projection)

        def prepare(item: RawItem) -> Template[Any]:
            return Template(decode(item))

        return prepare

    def _canonical(self, key: Hashable) -> Hashable:
        if (
            self._str_pair
            and type(key) is tuple
            and len(key) == 2
            and type(key[0]) is str
            and type(key[1]) is str
        ):
            return key
        return self._shape.canonical(key)

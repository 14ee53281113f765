"""`cached`: a thin decorator over an `ItemCache` for single-item reads (cachetools' shape)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import ParamSpec, Protocol, TypeVar, cast

from .items import ItemCache
from .policy import CacheInfo

__all__ = ["CacheDecorator", "CachedFunction", "cached"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_P = ParamSpec("_P")


class CachedFunction(Protocol[_P, _K, _V]):
    """What `cached` returns: the function, plus cachetools-style cache accessors."""

    __wrapped__: Callable[_P, _V | None]
    __name__: str

    @property
    def cache(self) -> ItemCache[_K, _V]:
        """The `ItemCache` the function reads through."""
        ...

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _V | None:
        """Call the function through the cache."""
        ...

    def cache_clear(self) -> None:
        """Clear the whole cache (it may be shared with other functions)."""
        ...

    def cache_info(self) -> CacheInfo:
        """Return the cache's `CacheInfo`."""
        ...


class CacheDecorator(Protocol[_K, _V]):
    """What ``cached(cache, key=...)`` returns: turns a function into a `CachedFunction`."""

    def __call__(self, func: Callable[_P, _V | None], /) -> CachedFunction[_P, _K, _V]:
        """Wrap ``func``, keeping its signature."""
        ...


def cached(
    cache: ItemCache[_K, _V],
    *,
    key: Callable[..., tuple[_K, Hashable] | None],
) -> CacheDecorator[_K, _V]:
    """Decorate a single-item read so that it goes through ``cache``.

    ``key`` is called with the function's arguments and returns ``(item_key, variant)``, or
    ``None`` to bypass the cache (e.g. for consistent reads), which calls the function
    directly and counts nothing. The wrapper keeps the function's signature; mypy checks the
    return type of ``key`` but not that its parameters match the function's (a lambda's would
    be ``Any`` anyway).

    The function returns the item, or ``None`` for "not found". The wrapper returns
    ``V | None`` even when the function never returns ``None``, because the cache may hold a
    "not found" marker stored by another reader (`ItemCache.put_many`); so cache the "find"
    that returns ``None`` and raise `ItemNotFound` outside it. `cache_clear` clears the whole
    cache, which other functions may share.

    For example:

        cache: ItemCache[str, User] = ItemCache()

        @cached(cache, key=lambda user_id, *, consistent=False: (
            None if consistent else (user_id, None)))
        def find_user(user_id: str, *, consistent: bool = False) -> User | None: ...

        find_user("u1"); find_user("u1")
        assert find_user.cache_info().hits == 1
    """

    def decorator(func: Callable[_P, _V | None]) -> CachedFunction[_P, _K, _V]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _V | None:
            cache_key = key(*args, **kwargs)
            if cache_key is None:
                return func(*args, **kwargs)
            item_key, variant = cache_key
            return cache.get_or_load(item_key, variant, lambda: func(*args, **kwargs))

        wrapper.__dict__.update(cache=cache, cache_clear=cache.clear, cache_info=cache.info)
        return cast("CachedFunction[_P, _K, _V]", wrapper)

    return decorator

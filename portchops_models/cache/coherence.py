"""One invalidation registry per process: every cache of a table hears every write to it.

A write made through any repository (sync or async), transaction or model method of a
process calls `invalidate` with the table's real name (the prefixed one, as `configure()`
makes it) and the canonical keys it touched (`TableShape.canonical`, the keys every
`ItemCache` is keyed by). Every cache registered for that table drops those keys, so no two
repositories of one process disagree once a write has returned::

    from portchops_models import coherence

    coherence.register(cache, "port-chops-users")  # anything with .invalidate(keys)
    coherence.invalidate("port-chops-users", ["u1"])  # every cache of the table drops "u1"

Registration is weak: a cache that is no longer referenced leaves the registry by itself.
A cache is registered under one table at a time; registering it again (after `configure()`
changed the prefix) moves it.

Across processes, a transport (the Redis bus of `portchops_models.cache.bus`) plugs in with
`set_transport`: `invalidate` hands it the keys after the local caches dropped them, and
`may_serve` asks it whether cached items may be served now (not while its subscription is
down, when invalidations from other processes could be missed). Without a transport every
cache may serve and nothing leaves the process.

This module is a leaf: it imports nothing of the package.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "Clearable",
    "Invalidatable",
    "Transport",
    "caches",
    "drop_all",
    "invalidate",
    "invalidate_local",
    "may_serve",
    "register",
    "set_transport",
    "unregister",
]


class Invalidatable(Protocol):
    """What can register: any object with ``invalidate(keys)`` (hashable, weakly referable)."""

    def invalidate(self, item_keys: Iterable[Hashable], /) -> None:
        """Drop every cached shape of these item keys."""
        ...


@runtime_checkable
class Clearable(Protocol):
    """A registered cache that can also drop everything (`drop_all` calls ``drop()``)."""

    def drop(self) -> None:
        """Drop every entry (counters may stay); loads in flight must not store theirs."""
        ...


class Transport(Protocol):
    """Carries invalidations to other processes (see `portchops_models.cache.bus`)."""

    def publish(self, table: str, item_keys: Sequence[Hashable]) -> None:
        """Send the keys a write touched; never raises, never blocks on the network."""
        ...

    def may_serve(self) -> bool:
        """Whether caches may serve now (False while invalidations could be missed)."""
        ...


_lock = threading.Lock()
_by_table: dict[str, weakref.WeakSet[Invalidatable]] = {}
_table_of: weakref.WeakKeyDictionary[Invalidatable, str] = weakref.WeakKeyDictionary()
_transport: Callable[[], Transport | None] | None = None


def register(cache: Invalidatable, table: str) -> None:
    """Make ``cache`` hear every invalidation of ``table`` (the full, prefixed table name).

    Weak: the registry does not keep ``cache`` alive. Registering a cache already registered
    under another table moves it there; under the same table it is a no-op.
    """
    with _lock:
        old = _table_of.get(cache)
        if old == table:
            return
        if old is not None:
            _discard(cache, old)
        _by_table.setdefault(table, weakref.WeakSet()).add(cache)
        _table_of[cache] = table


def unregister(cache: Invalidatable) -> None:
    """Stop ``cache`` hearing invalidations (a no-op if it was not registered)."""
    with _lock:
        old = _table_of.pop(cache, None)
        if old is not None:
            _discard(cache, old)


def caches(table: str) -> list[Invalidatable]:
    """The caches registered for ``table`` now (a snapshot)."""
    with _lock:
        return list(_by_table.get(table, ()))


def invalidate(table: str, keys: Iterable[Hashable]) -> None:
    """Drop ``keys`` from every cache of ``table`` in this process, then tell other processes.

    Call it after every write, and also when the write's outcome is unknown (it raised): a
    write that timed out may still have landed. ``keys`` are canonical item keys
    (`TableShape.canonical`). Returns once every local cache has dropped them; the transport,
    if any, sends them on without waiting for the network.
    """
    listed = list(keys)
    if not listed:
        return
    invalidate_local(table, listed)
    transport = _current_transport()
    if transport is not None:
        transport.publish(table, listed)


def invalidate_local(table: str, keys: Iterable[Hashable]) -> None:
    """Drop ``keys`` from every cache of ``table`` in this process only (the bus uses it)."""
    listed = list(keys)
    for cache in caches(table):
        cache.invalidate(listed)


def drop_all() -> None:
    """Clear every registered cache that can be cleared (`Clearable`), of every table."""
    with _lock:
        everything = [cache for group in _by_table.values() for cache in group]
    for cache in everything:
        if isinstance(cache, Clearable):
            cache.drop()


def may_serve() -> bool:
    """Whether caches may serve cached items now: always, unless a transport says no.

    Caches call it on every lookup (`ItemCache(gate=coherence.may_serve)`); while it is
    False they read through without storing anything.
    """
    transport = _current_transport()
    return transport is None or transport.may_serve()


def gated() -> bool:
    """Whether `may_serve` can say no while the settings in force stay: only when a
    transport is in force (ask again after `configure()` or `set_transport`)."""
    return _current_transport() is not None


def set_transport(provider: Callable[[], Transport | None] | None) -> None:
    """Install the function that returns the transport in force (or ``None`` for none).

    It is called on every `invalidate` and `may_serve`, so it should be cheap; it may follow
    the settings in force (the bus does). ``None`` removes it.
    """
    global _transport
    _transport = provider


def _current_transport() -> Transport | None:
    provider = _transport
    return None if provider is None else provider()


def _discard(cache: Invalidatable, table: str) -> None:
    """Remove ``cache`` from ``table``'s set; runs with the lock held."""
    group = _by_table.get(table)
    if group is not None:
        group.discard(cache)
        if not group:
            del _by_table[table]

"""Thread-safe TTL + LRU caching of items at the repository boundary.

A repository owns one `ItemCache`; `cached` is a thin decorator over it for single-item
reads, and `batch_get` uses `get_many` / `begin` / `put_many` directly::

    cache: ItemCache[Key, User] = ItemCache(CachePolicy(maxsize=500, ttl=300.0))

    @cached(cache, key=lambda key, *, consistent=False: None if consistent else (key, None))
    def find(key: Key, *, consistent: bool = False) -> User | None: ...

Design, after cachetools' `cached(cache, key=, lock=, condition=)`:

- Storage is a `cachetools.TTLCache(maxsize, ttl, timer)` (LRU eviction, per-entry expiry)
  keyed by ``(item_key, variant)``. The variant tells apart several cached shapes of one item
  (``None`` for the full item, a projection class for a projection); `invalidate` drops all
  of them. Variants should come from a small fixed set.
- One `threading.Lock` guards everything and is never held while a loader runs.
- No stampede: the first caller to miss ``(item_key, variant)`` runs the loader; later callers
  for the same pair wait on a `threading.Condition` (sharing that lock) and receive its result.
- "Not found" (a loader returning ``None``) is cached as a marker for
  `CachePolicy.negative_ttl` seconds when that is set, and not cached otherwise.
- No stale writes: each load records, per item key, a generation taken when it started.
  `invalidate` (and `clear`) bump the generations, so a load that began before an
  invalidation does not insert its possibly stale result after it. Generations are only kept
  for keys with loads in flight, so the bookkeeping stays bounded.
- Counting: `misses` is the number of cache lookups that found nothing, so for `get_or_load`
  it is exactly the number of loader calls; a caller that waits for another thread's load and
  receives its result counts as a hit. `on_event(hit, count)` mirrors every count for metrics.
- The clock is injectable (`CachePolicy.timer`) so tests expire entries without sleeping.
- A ``gate`` (e.g. `portchops_models.cache.coherence.may_serve`) is asked on every lookup and
  store: while it says no (the invalidation bus is down), the cache serves and stores
  nothing; reads go to the loader and count as misses.
- The hit path (`serve`): a lookup that never loads nor waits, for the repositories' point
  reads. It hands out the form a ``prepare`` function makes of the stored value (a decoded
  model), made on the first hit of each entry and kept beside it until the entry is
  replaced, invalidated, evicted or expires, so a hit does not decode again. Callers must
  not give that form away (copy it: `portchops_models.models.copies`). Once kept, a form
  is served by `ready`: a dictionary lookup and the entry's two expiry checks.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Coroutine, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, cast, overload

from .loads import KeyState, Load, LoadToken
from .policy import CacheInfo, CachePolicy
from .store import FAILED, MISSING, Missing, NotFound, Store

__all__ = ["CacheInfo", "CachePolicy", "ItemCache", "LoadToken"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_T = TypeVar("_T")

_ALWAYS: float = math.inf


class ItemCache(Generic[_K, _V]):
    """The thread-safe cache engine a repository uses; see the module docstring.

    Args:
        policy: size and lifetimes; `CachePolicy()` (500 entries, 300 s) when omitted.
        on_event: called as ``on_event(hit, count)`` after hits (``hit=True``) and misses,
            outside the lock, e.g. to feed a metrics object.
        on_hit: called as ``on_hit()`` instead of ``on_event(True, 1)`` after a hit that
            `ready` served (a cheaper call for the cheapest hit); ``None``: `on_event`.
            Kept as the attribute `on_hit`, which may be replaced.
        gate: asked before every lookup and store; while it returns False nothing is
            served from or stored in the cache (a coherence layer closes it when it could
            miss invalidations, and `clear`s the cache before opening it again).

    For example:

        cache: ItemCache[str, User] = ItemCache(CachePolicy(ttl=60.0))
        user = cache.get_or_load("u1", None, lambda: load_user("u1"))
    """

    def __init__(
        self,
        policy: CachePolicy | None = None,
        *,
        on_event: Callable[[bool, int], None] | None = None,
        on_hit: Callable[[], None] | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self._policy = policy if policy is not None else CachePolicy()
        self._on_event = on_event
        self.on_hit = on_hit
        self._gate = gate
        self._lock = threading.Lock()
        self._store: Store[_K, _V] = Store(self._policy)
        self._loads: dict[_K, dict[Hashable, Load[_K, _V]]] = {}
        self._inflight: dict[_K, KeyState] = {}
        self._epoch = 0  # bumped by clear(): invalidates every load in flight
        self._hits = 0
        self._misses = 0
        # async single-flight: per event loop, (key, variant) -> (result future, token)
        self._flights: dict[
            Any, dict[tuple[_K, Hashable], tuple[asyncio.Future[Any], LoadToken[_K]]]
        ] = {}

    @property
    def policy(self) -> CachePolicy:
        """The policy this cache was built with."""
        return self._policy

    @property
    def hits(self) -> int:
        """Lookups served from the cache (or from another thread's load) since `clear`."""
        with self._lock:
            return self._hits

    @property
    def misses(self) -> int:
        """Lookups that found nothing since `clear` (for `get_or_load`: loader calls)."""
        with self._lock:
            return self._misses

    def get_or_load(
        self, item_key: _K, variant: Hashable, loader: Callable[[], _V | None]
    ) -> _V | None:
        """Return the cached value of ``(item_key, variant)``, loading it on a miss.

        Only one loader runs per ``(item_key, variant)`` at a time: other callers wait for it
        and get its result (counted as hits). After `invalidate`, new callers no longer join a
        load that started before it; they start their own.

        ``None`` from the loader means "not found"; it is returned, and cached only if the
        policy has a ``negative_ttl``. A result is not stored if the key was invalidated while
        the loader ran. If the loader raises, nothing is cached, the exception propagates to
        its caller, and the waiting callers retry: the first of them runs the loader again.

        Args:
            item_key: the item's key.
            variant: which shape of the item (``None`` for the full item, a projection class).
            loader: reads the item from the table; called without the lock held.

        Returns:
            The item, or ``None`` if it does not exist.
        """
        if not self._open():
            with self._lock:
                self._misses += 1
            self._emit(False, 1)
            return loader()
        load: Load[_K, _V] | None = None
        result: _V | None = None
        with self._lock:
            while True:
                cached_value = self._lookup(item_key, variant)
                if cached_value is not MISSING:
                    result = cached_value
                    break
                pending = self._loads.get(item_key, {}).get(variant)
                if pending is None:
                    load = self._claim(item_key, variant)
                    break
                while not pending.finished:
                    pending.done.wait()
                if not pending.failed:
                    result = pending.value
                    break
                # The loader we waited for raised: look again, and maybe become the loader.
            if load is None:
                self._hits += 1
            else:
                self._misses += 1
        if load is None:
            self._emit(True, 1)
            return result
        return self._run(load, item_key, variant, loader)

    @overload
    def serve(
        self,
        item_key: _K,
        variant: Hashable,
        until: Callable[[_V], float] | None,
        prepare: None = None,
        *,
        keep: bool = True,
    ) -> _V | Literal[Missing.MISSING]: ...
    @overload
    def serve(
        self,
        item_key: _K,
        variant: Hashable,
        until: Callable[[_V], float] | None,
        prepare: Callable[[_V], _T],
        *,
        keep: bool = True,
    ) -> _T | Literal[Missing.MISSING]: ...
    def serve(
        self,
        item_key: _K,
        variant: Hashable,
        until: Callable[[_V], float] | None,
        prepare: Callable[[_V], _T] | None = None,
        *,
        keep: bool = True,
    ) -> _T | _V | Literal[Missing.MISSING]:
        """A hit, or `MISSING` when the caller must take the whole path (`get_or_load`).

        Serves only a stored value (never a cached "not found") that has not ``expired``,
        and only while the gate is open; it counts a hit then, and counts nothing
        when it returns `MISSING` (the caller's `get_or_load` counts that lookup). It never
        runs a loader and never waits for one.

        Args:
            item_key: the item's key.
            variant: which shape of the item.
            until: the wall-clock time (``time.time()``) from which the stored value must
                not be served (e.g. its own TTL), or ``inf``; called with the lock held, so
                it must be quick. ``None``: any stored value may be served.
            prepare: makes the form to serve of a stored value (e.g. decodes it); called
                without the lock, once per stored value: its result is kept beside the entry
                and returned by later hits until the entry changes or leaves. ``None``
                serves the stored value itself. If it raises, nothing is counted.
            keep: ``False`` keeps nothing beside the entry: ``prepare`` runs on every hit
                (for values that must not stay in memory in their prepared form).

        Returns:
            The prepared form (or the value), or `MISSING`.
        """
        # Every call saved counts here: `_open` and `_emit` are inlined.
        gate, on_event = self._gate, self._on_event
        if gate is not None and not gate():
            return MISSING
        key = (item_key, variant)
        store = self._store
        with self._lock:
            try:
                value = store[key]  # one TTL check (``get`` makes two)
            except KeyError:
                return MISSING
            if isinstance(value, NotFound):
                return MISSING
            deadline = _ALWAYS if until is None else until(value)
            if deadline <= time.time():
                return MISSING
            kept = store.prepared.get(key) if prepare is not None and keep else None
            ready = prepare is None or (kept is not None and kept[0] is value)
            if ready:
                self._hits += 1
        if prepare is None:
            if on_event is not None:
                on_event(True, 1)
            return value
        if ready and kept is not None:
            if on_event is not None:
                on_event(True, 1)
            return cast("_T", kept[1])
        form = prepare(value)
        with self._lock:
            if keep and store.get(key, MISSING) is value:  # not replaced meanwhile
                store.prepared[key] = (value, form, deadline)
            self._hits += 1
        if on_event is not None:
            on_event(True, 1)
        return form

    def ready(self, item_key: _K, variant: Hashable, gated: bool = True) -> object:
        """The kept form of a live entry, or `MISSING`: `serve`'s hit at its cheapest.

        Only a form that an earlier `serve` prepared and kept is served, while the gate is
        open, its entry has not expired and its ``until`` has not passed; the entry
        becomes the most recently used and a hit is counted, as `serve` counts it.
        Anything else (no form kept yet, a replaced or expired entry) returns `MISSING`
        and counts nothing: the caller then asks `serve`, which decides as it always has.

        Args:
            item_key: the item's key.
            variant: which shape of the item.
            gated: ``False`` skips asking the gate, for a caller that knows nothing can
                close it now (`portchops_models.cache.coherence.gated` said so).
        """
        gate = self._gate
        if gated and gate is not None and not gate():
            return MISSING
        key = (item_key, variant)
        store = self._store
        lock = self._lock
        lock.acquire()  # half the cost of ``with lock:`` on CPython 3.11, on the hottest path
        try:
            kept = store.prepared.get(key)
            # A kept form's key is stored (removing an entry drops what was kept of it).
            if kept is None or kept[2] <= time.time() or store.recency[key] <= store.clock():
                return MISSING
            store.recency.move_to_end(key)
            self._hits += 1
        finally:
            lock.release()
        on_hit = self.on_hit
        if on_hit is not None:
            on_hit()
        elif self._on_event is not None:
            self._on_event(True, 1)
        return kept[1]

    def get_many(
        self, item_keys: Sequence[_K], variant: Hashable
    ) -> tuple[dict[_K, _V | None], list[_K]]:
        """Split ``item_keys`` into cached entries and keys to fetch.

        Each distinct key counts once, as a hit or a miss. Does not wait for loads in flight.

        Returns:
            ``(found, missing)``: ``found`` maps each cached key to its value (``None`` for a
            cached "not found"); ``missing`` lists the other keys. Both keep the order of
            ``item_keys``.
        """
        found: dict[_K, _V | None] = {}
        missing: list[_K] = []
        serving = self._open()
        with self._lock:
            for item_key in dict.fromkeys(item_keys):
                value = self._lookup(item_key, variant) if serving else MISSING
                if value is MISSING:
                    missing.append(item_key)
                else:
                    found[item_key] = value
            self._hits += len(found)
            self._misses += len(missing)
        self._emit(True, len(found))
        self._emit(False, len(missing))
        return found, missing

    def begin(self, item_keys: Iterable[_K]) -> LoadToken[_K]:
        """Claim ``item_keys`` before a batch load, for `put_many` to skip stale results.

        Returns:
            A `LoadToken`; pass it to `put_many`, or `close` it (``with`` does) if the load
            fails. Keys invalidated between `begin` and `put_many` are not stored.
        """
        with self._lock:
            return self._begin(item_keys)

    def put_many(
        self,
        values: Mapping[_K, _V],
        variant: Hashable,
        *,
        missing: Iterable[_K] = (),
        token: LoadToken[_K] | None = None,
    ) -> None:
        """Store the results of a batch load.

        Args:
            values: the items found, by key.
            variant: which shape they are (``None`` for full items, a projection class).
            missing: keys the load did not find; cached as "not found" only if the policy
                has a ``negative_ttl``.
            token: from `begin`, taken before the load started: keys invalidated since are
                skipped, and the token is released. Without a token the values are taken as
                fresh (e.g. just written): they are stored, and loads of those keys already
                in flight will not overwrite them.

        Raises:
            ValueError: a key is both in ``values`` and ``missing``, or the token is closed,
                belongs to another cache, or does not cover every key.
        """
        missing_keys = list(dict.fromkeys(missing))
        both = [key for key in missing_keys if key in values]
        if both:
            raise ValueError(f"keys both found and missing: {both!r}")
        serving = self._open()
        with self._lock:
            if token is not None:
                self._check_token(token, [*values, *missing_keys])
            entries: list[tuple[_K, _V | None]] = [*values.items()] if serving else []
            entries += [(key, None) for key in missing_keys] if serving else []
            for item_key, value in entries:
                if token is None:
                    state = self._inflight.get(item_key)
                    if state is not None:
                        state.generation += 1
                    self._put(item_key, variant, value)
                elif self._is_fresh(token, item_key):
                    self._put(item_key, variant, value)
            if token is not None:
                self._release_locked(token)

    def invalidate(self, item_keys: Iterable[Hashable]) -> None:
        """Drop every variant of ``item_keys``; loads already in flight will not store theirs.

        Call it after each write. Callers already waiting for such a load still receive its
        result (their read overlapped the write); later callers start a fresh load. Keys of
        any type are accepted (the coherence layer passes what a write touched); keys this
        cache does not hold are ignored.
        """
        with self._lock:
            for item_key in cast("Iterable[_K]", item_keys):
                self._store.discard_item(item_key)
                state = self._inflight.get(item_key)
                if state is not None:
                    state.generation += 1
                self._loads.pop(item_key, None)

    def clear(self) -> None:
        """Drop every entry and reset the counters; loads in flight will not store theirs."""
        with self._lock:
            self._drop()
            self._hits = 0
            self._misses = 0

    def drop(self) -> None:
        """Drop every entry, keeping the counters; loads in flight will not store theirs.

        The coherence layer calls it when invalidations may have been missed.
        """
        with self._lock:
            self._drop()

    def info(self) -> CacheInfo:
        """Return hits, misses, maxsize and the current number of entries."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, self._policy.maxsize, len(self._store))

    def __len__(self) -> int:
        """Return the number of live entries (variants and "not found" markers included)."""
        with self._lock:
            return len(self._store)

    async def aget_or_load(
        self,
        item_key: _K,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, _V | None]],
    ) -> _V | None:
        """`get_or_load` for coroutines: one loader per key and event loop, never blocking it.

        Callers on the same loop that miss while a load runs await its result (counted as
        hits); a load that started before an `invalidate` or `clear` is not joined. If the
        loader raises, nothing is cached and the waiting callers look again.
        """
        if not self._open():
            with self._lock:
                self._misses += 1
            self._emit(False, 1)
            return await loader()
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                value = self._lookup(item_key, variant)
                if value is not MISSING:
                    self._hits += 1
                    flight = None
                else:
                    flights = self._flights.setdefault(loop, {})
                    flight = flights.get((item_key, variant))
                    if flight is not None and not self._is_fresh(flight[1], item_key):
                        flight = None  # invalidated since it started: do not join it
                    if flight is None:
                        token = self._begin([item_key])
                        mine: tuple[asyncio.Future[Any], LoadToken[_K]] = (
                            loop.create_future(),
                            token,
                        )
                        flights[(item_key, variant)] = mine
                        self._misses += 1
            if value is not MISSING:
                self._emit(True, 1)
                return value
            if flight is not None:
                result = await asyncio.shield(flight[0])
                if result is FAILED:
                    continue  # its loader raised: look again, maybe load ourselves
                with self._lock:
                    self._hits += 1
                self._emit(True, 1)
                return cast("_V | None", result)
            return await self._afly(mine, loop, item_key, variant, loader)

    async def _afly(
        self,
        flight: tuple[asyncio.Future[Any], LoadToken[_K]],
        loop: asyncio.AbstractEventLoop,
        item_key: _K,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, _V | None]],
    ) -> _V | None:
        """Run the loader of a claimed async load, then publish its result to the waiters."""
        future, token = flight
        self._emit(False, 1)
        outcome: Any = FAILED
        try:
            outcome = await loader()
            return cast("_V | None", outcome)
        finally:
            with self._lock:
                if outcome is not FAILED and self._is_fresh(token, item_key):
                    self._put(item_key, variant, outcome)
                flights = self._flights.get(loop, {})
                if flights.get((item_key, variant)) is flight:
                    del flights[(item_key, variant)]
                    if not flights:
                        del self._flights[loop]
                self._release_locked(token)
            future.set_result(outcome)

    # -- internals; every method below runs with self._lock held unless it says otherwise --

    def _drop(self) -> None:
        self._store.clear()
        self._epoch += 1
        self._loads.clear()

    def _open(self) -> bool:
        """Whether the gate lets the cache serve and store now; called without the lock."""
        return self._gate is None or self._gate()

    def _lookup(self, item_key: _K, variant: Hashable) -> _V | Literal[Missing.MISSING] | None:
        key = (item_key, variant)
        entry = self._store.get(key, MISSING)
        if isinstance(entry, NotFound):
            if self._policy.timer() < entry.expires:
                return None
            self._store.discard(key)
            return MISSING
        return entry

    def _put(self, item_key: _K, variant: Hashable, value: _V | None) -> None:
        key = (item_key, variant)
        if value is not None:
            self._store[key] = value
        elif self._policy.negative_ttl is not None:
            self._store[key] = NotFound(self._policy.timer() + self._policy.negative_ttl)
        else:
            self._store.discard(key)  # whatever was cached there is no longer true

    def _begin(self, item_keys: Iterable[_K]) -> LoadToken[_K]:
        generations: dict[_K, int] = {}
        for item_key in dict.fromkeys(item_keys):
            state = self._inflight.get(item_key)
            if state is None:
                state = self._inflight[item_key] = KeyState()
            state.refs += 1
            generations[item_key] = state.generation
        return LoadToken(
            owner=self, epoch=self._epoch, generations=generations, release=self._release
        )

    def _release(self, token: LoadToken[_K]) -> None:
        with self._lock:
            self._release_locked(token)

    def _release_locked(self, token: LoadToken[_K]) -> None:
        if token._released:
            return
        token._released = True
        for item_key in token._generations:
            state = self._inflight[item_key]
            state.refs -= 1
            if state.refs == 0:
                del self._inflight[item_key]

    def _check_token(self, token: LoadToken[_K], item_keys: Iterable[_K]) -> None:
        if token._owner is not self:
            raise ValueError("the token was issued by another cache")
        if token._released:
            raise ValueError("the token was already used or closed")
        uncovered = [key for key in item_keys if key not in token._generations]
        if uncovered:
            raise ValueError(f"keys not covered by the token: {uncovered!r}")

    def _is_fresh(self, token: LoadToken[_K], item_key: _K) -> bool:
        state = self._inflight[item_key]  # present while the token holds it
        return token._epoch == self._epoch and state.generation == token._generations[item_key]

    def _claim(self, item_key: _K, variant: Hashable) -> Load[_K, _V]:
        load: Load[_K, _V] = Load(self._lock, self._begin([item_key]))
        self._loads.setdefault(item_key, {})[variant] = load
        return load

    def _run(
        self,
        load: Load[_K, _V],
        item_key: _K,
        variant: Hashable,
        loader: Callable[[], _V | None],
    ) -> _V | None:
        """Run ``loader`` for a claimed load (without the lock), then publish the result."""
        value: _V | None = None
        failed = True
        try:
            self._emit(False, 1)
            value = loader()
            failed = False
        finally:
            with self._lock:
                if not failed and self._is_fresh(load.token, item_key):
                    self._put(item_key, variant, value)
                variants = self._loads.get(item_key)
                if variants is not None and variants.get(variant) is load:
                    del variants[variant]
                    if not variants:
                        del self._loads[item_key]
                self._release_locked(load.token)
                load.value, load.failed, load.finished = value, failed, True
                load.done.notify_all()
        return value

    def _emit(self, hit: bool, count: int) -> None:
        """Report counts to ``on_event``; called without the lock."""
        if self._on_event is not None and count:
            self._on_event(hit, count)

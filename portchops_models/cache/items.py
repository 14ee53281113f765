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
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Generic, Literal, NamedTuple, ParamSpec, Protocol, TypeVar, cast

from cachetools import TTLCache

__all__ = [
    "CacheDecorator",
    "CacheInfo",
    "CachePolicy",
    "CachedFunction",
    "ItemCache",
    "LoadToken",
    "cached",
]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_P = ParamSpec("_P")


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


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING
#: the result an async load publishes when its loader raised (waiters then look again).
_FAILED: Final = object()


class _NotFound:
    """A cached "not found" result with its own expiry (negative_ttl <= ttl)."""

    __slots__ = ("expires",)

    def __init__(self, expires: float) -> None:
        self.expires = expires


class _Store(TTLCache[tuple[_K, Hashable], "_V | _NotFound"], Generic[_K, _V]):
    """A TTLCache that also knows which variants of each item key it holds.

    Every removal (explicit, LRU eviction, expiry) goes through `__delitem__` or `expire`,
    so the index always matches the keys physically stored.
    """

    def __init__(self, policy: CachePolicy) -> None:
        self.variants: dict[_K, set[Hashable]] = {}
        super().__init__(policy.maxsize, policy.ttl, policy.timer)

    def __setitem__(self, key: tuple[_K, Hashable], value: _V | _NotFound) -> None:
        super().__setitem__(key, value)
        self.variants.setdefault(key[0], set()).add(key[1])

    def __delitem__(self, key: tuple[_K, Hashable]) -> None:
        try:
            super().__delitem__(key)  # raises KeyError after removing an expired entry
        finally:
            self._forget(key)

    def expire(self, time: float | None = None) -> list[tuple[tuple[_K, Hashable], _V | _NotFound]]:
        expired = super().expire(time)
        for key, _ in expired:
            self._forget(key)
        return expired

    def clear(self) -> None:
        super().clear()
        self.variants.clear()

    def discard(self, key: tuple[_K, Hashable]) -> None:
        """Remove ``key`` whether or not it is live."""
        with contextlib.suppress(KeyError):
            del self[key]

    def discard_item(self, item_key: _K) -> None:
        """Remove every variant of ``item_key``."""
        for variant in list(self.variants.get(item_key, ())):
            self.discard((item_key, variant))

    def _forget(self, key: tuple[_K, Hashable]) -> None:
        variants = self.variants.get(key[0])
        if variants is not None:
            variants.discard(key[1])
            if not variants:
                del self.variants[key[0]]


class _KeyState:
    """Generation of one item key with loads in flight, and how many loads hold it."""

    __slots__ = ("generation", "refs")

    def __init__(self) -> None:
        self.generation = 0
        self.refs = 0


class LoadToken(Generic[_K]):
    """A claim taken by `ItemCache.begin` before a batch load starts.

    It records the generation of each key, so that `ItemCache.put_many` can skip the keys
    invalidated while the load ran. A token is used once: `put_many` releases it. Use it as a
    context manager so it is released even if the load fails::

        found, missing = cache.get_many(keys, variant)
        with cache.begin(missing) as token:
            fetched = fetch(missing)  # {key: item} for the keys that exist
            not_found = [key for key in missing if key not in fetched]
            cache.put_many(fetched, variant, missing=not_found, token=token)
    """

    __slots__ = ("_epoch", "_generations", "_owner", "_release", "_released")

    def __init__(
        self,
        *,
        owner: object,
        epoch: int,
        generations: dict[_K, int],
        release: Callable[[LoadToken[_K]], None],
    ) -> None:
        self._owner = owner
        self._epoch = epoch
        self._generations = generations
        self._release = release
        self._released = False

    @property
    def keys(self) -> frozenset[_K]:
        """The item keys this token covers."""
        return frozenset(self._generations)

    @property
    def closed(self) -> bool:
        """Whether the token was released (by `put_many` or `close`)."""
        return self._released

    def close(self) -> None:
        """Release the token without storing anything; closing twice is a no-op."""
        self._release(self)

    def __enter__(self) -> LoadToken[_K]:
        """Return the token itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the token (a no-op if `put_many` already did)."""
        self.close()


class _Load(Generic[_K, _V]):
    """One loader call in flight; waiters sleep on ``done`` until it finishes."""

    __slots__ = ("done", "failed", "finished", "token", "value")

    def __init__(self, lock: threading.Lock, token: LoadToken[_K]) -> None:
        self.done = threading.Condition(lock)
        self.token = token
        self.finished = False
        self.failed = False
        self.value: _V | None = None


class ItemCache(Generic[_K, _V]):
    """The thread-safe cache engine a repository uses; see the module docstring.

    Args:
        policy: size and lifetimes; `CachePolicy()` (500 entries, 300 s) when omitted.
        on_event: called as ``on_event(hit, count)`` after hits (``hit=True``) and misses,
            outside the lock, e.g. to feed a metrics object.
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
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self._policy = policy if policy is not None else CachePolicy()
        self._on_event = on_event
        self._gate = gate
        self._lock = threading.Lock()
        self._store: _Store[_K, _V] = _Store(self._policy)
        self._loads: dict[_K, dict[Hashable, _Load[_K, _V]]] = {}
        self._inflight: dict[_K, _KeyState] = {}
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
        load: _Load[_K, _V] | None = None
        result: _V | None = None
        with self._lock:
            while True:
                cached_value = self._lookup(item_key, variant)
                if cached_value is not _MISSING:
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
                value = self._lookup(item_key, variant) if serving else _MISSING
                if value is _MISSING:
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
                if value is not _MISSING:
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
            if value is not _MISSING:
                self._emit(True, 1)
                return value
            if flight is not None:
                result = await asyncio.shield(flight[0])
                if result is _FAILED:
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
        outcome: Any = _FAILED
        try:
            outcome = await loader()
            return cast("_V | None", outcome)
        finally:
            with self._lock:
                if outcome is not _FAILED and self._is_fresh(token, item_key):
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

    def _lookup(self, item_key: _K, variant: Hashable) -> _V | Literal[_Missing.MISSING] | None:
        key = (item_key, variant)
        entry = self._store.get(key, _MISSING)
        if isinstance(entry, _NotFound):
            if self._policy.timer() < entry.expires:
                return None
            self._store.discard(key)
            return _MISSING
        return entry

    def _put(self, item_key: _K, variant: Hashable, value: _V | None) -> None:
        key = (item_key, variant)
        if value is not None:
            self._store[key] = value
        elif self._policy.negative_ttl is not None:
            self._store[key] = _NotFound(self._policy.timer() + self._policy.negative_ttl)
        else:
            self._store.discard(key)  # whatever was cached there is no longer true

    def _begin(self, item_keys: Iterable[_K]) -> LoadToken[_K]:
        generations: dict[_K, int] = {}
        for item_key in dict.fromkeys(item_keys):
            state = self._inflight.get(item_key)
            if state is None:
                state = self._inflight[item_key] = _KeyState()
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

    def _claim(self, item_key: _K, variant: Hashable) -> _Load[_K, _V]:
        load: _Load[_K, _V] = _Load(self._lock, self._begin([item_key]))
        self._loads.setdefault(item_key, {})[variant] = load
        return load

    def _run(
        self,
        load: _Load[_K, _V],
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

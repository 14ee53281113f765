"""What a load in flight holds: the generation of each key it reads (so an
invalidation meanwhile keeps its result out), and the single-flight of one loader call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["KeyState", "Load", "LoadToken"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class KeyState:
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


class Load(Generic[_K, _V]):
    """One loader call in flight; waiters sleep on ``done`` until it finishes."""

    __slots__ = ("done", "failed", "finished", "token", "value")

    def __init__(self, lock: threading.Lock, token: LoadToken[_K]) -> None:
        self.done = threading.Condition(lock)
        self.token = token
        self.finished = False
        self.failed = False
        self.value: _V | None = None

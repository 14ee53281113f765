"""Running the layer's coroutines without an event loop: one code path, sync and async.

The repositories' operations, the retry loop and the send path are written once,
as coroutines (`portchops_models.ops`, `RetryPolicy.run`, `Connection.send_async`).
The async API awaits them on the caller's event loop. The sync API drives them
with `run_sync`: under a sync runtime every awaited step finishes at once (a
blocking request, `time.sleep`), so the coroutine never suspends and one
``send(None)`` runs it to the end - no event loop, no thread, a few hundred
nanoseconds of overhead.

Example:
    >>> async def double(x: int) -> int:
    ...     return 2 * x
    >>> run_sync(double(21))
    42
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["awaitable", "run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends and return its result.

    Raises:
        RuntimeError: the coroutine awaited something that suspends (an asyncio
            future or sleep): it was given an async step under the sync runtime.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a coroutine run by run_sync suspended: an async step in sync code")


def awaitable(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """Wrap a blocking call as an awaitable factory that completes without suspending."""

    async def call() -> T:
        return fn()

    return call

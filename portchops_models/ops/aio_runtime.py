"""The async API's runtime: steps awaited on the running event loop, never a thread.

The twin of `portchops_models.ops.sync_runtime`, with the same names (`RUNTIME`,
`drive`, `run`, `merge_segments`, `Fetch`, `SegmentFetch`): the async faces import them
from here, and the sync faces generated from them (``tools/unasync.py``) from there.
Works under any event loop: nothing here is bound to one (the transport keeps a
session per loop), so each ``asyncio.run`` and each test's loop get their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar

from ..cache.items import ItemCache
from ..observe.metrics import Metrics
from ..settings import current_settings
from ..transport import deadline
from ..transport.connection import Connection
from ..transport.retry import RetryPolicy
from .base import Operation
from .coalesce import Batches, TickBatches
from .page import Page, Pending, check_segments
from .runtime import Runtime

__all__ = [
    "ASYNC",
    "RUNTIME",
    "AsyncRuntime",
    "Fetch",
    "SegmentFetch",
    "drive",
    "merge_segments",
    "run",
]

T = TypeVar("T")
V = TypeVar("V")
K = TypeVar("K", bound=Hashable)

#: A page fetcher: the cursor and that page's ``Limit`` (``None``: the one built) -> a page,
#: its items still to decode.
Fetch = Callable[[str | None, int | None], Awaitable[Pending]]
#: A scan segment's page fetcher: the segment and the cursor -> a page.
SegmentFetch = Callable[[int, str | None], Awaitable[Page[Any]]]


class AsyncRuntime:
    """Requests awaited on the running loop (`Connection.send_async`), never a thread."""

    def wait(self, policy: RetryPolicy) -> Callable[[float], Awaitable[None]]:
        """Wait on the event loop, never blocking it: `asyncio.sleep` for the default
        ``sleep``, and a custom one (a test's fake clock, say) in a worker thread."""
        if policy.sleep is time.sleep:
            return asyncio.sleep

        async def wait(seconds: float) -> None:
            await asyncio.to_thread(policy.sleep, seconds)

        return wait

    async def send(
        self,
        conn: Connection,
        operation: str,
        params: dict[str, Any],
        *,
        table: str | None,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> dict[str, Any]:
        """`Connection.send_async`: the shared send path, awaited."""
        return await conn.send_async(
            operation, params, wait=self.wait(retry), table=table, retry=retry, metrics=metrics
        )

    async def fan_out(
        self,
        conn: Connection,
        send: Callable[[list[Any]], Coroutine[Any, Any, dict[str, Any]]],
        chunks: list[list[Any]],
    ) -> list[dict[str, Any] | BaseException]:
        """Every chunk as its own task; waits for all, so none outlives the call."""
        if len(chunks) == 1:
            try:
                return [await send(chunks[0])]
            except Exception as err:
                return [err]
        outcomes = await asyncio.gather(*(send(c) for c in chunks), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a chunk's failure
        return list(outcomes)

    async def get_or_load(
        self,
        cache: ItemCache[K, V],
        key: K,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, V | None]],
    ) -> V | None:
        """`ItemCache.aget_or_load`: one loader per key, the others await its result."""
        return await cache.aget_or_load(key, variant, loader)

    def batches(self) -> Batches:
        """`TickBatches`: the point reads issued in one event-loop tick leave together."""
        return TickBatches()


#: The runtime of the async API.
RUNTIME: Runtime = AsyncRuntime()
ASYNC = RUNTIME


async def drive(operation: Operation[T]) -> T:
    """Await one operation: a face writes ``await drive(op)`` inside its call scope
    (`RepositoryBase._calling`), which the sync API runs to completion in the thread."""
    return await operation


async def run(operation: Operation[T]) -> T:
    """Await an operation that is no repository's call (a transaction) under the
    ``call_timeout`` deadline."""
    with deadline.bounded(current_settings().call_timeout):
        return await operation


_DONE = object()


async def merge_segments(segments: int, page: SegmentFetch) -> AsyncIterator[Any]:
    """One task per scan segment; items as pages arrive (a few pages in memory)."""
    check_segments(segments)
    pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=segments * 2)

    async def worker(segment: int) -> None:
        cursor: str | None = None
        try:
            while True:
                result = await page(segment, cursor)
                await pages.put(result.items)
                if result.cursor is None:
                    break
                cursor = result.cursor
        except Exception as err:
            await pages.put(err)
        finally:
            await pages.put(_DONE)

    tasks = [asyncio.create_task(worker(s)) for s in range(segments)]
    finished = 0
    try:
        while finished < segments:
            got = await pages.get()
            if got is _DONE:
                finished += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                for item in got:
                    yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

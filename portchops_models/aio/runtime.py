"""The async API's steps: awaited requests, chunks gathered, single-flight under asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from ..cache import ItemCache
from ..connection import Connection
from ..metrics import Metrics
from ..ops.runtime import Runtime
from ..retry import RetryPolicy

__all__ = ["ASYNC", "AsyncRuntime"]

V = TypeVar("V")
K = TypeVar("K", bound=Hashable)


class AsyncRuntime:
    """Requests awaited on the running loop (`Connection.send_async`), never a thread.

    Works under any event loop: nothing here is bound to one (the transport keeps a
    session per loop), so each ``asyncio.run`` and each test's loop get their own.
    """

    blocking = False

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
        return await conn.send_async(operation, params, table=table, retry=retry, metrics=metrics)

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


#: The runtime of the async API.
ASYNC: Runtime = AsyncRuntime()

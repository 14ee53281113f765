"""The sync API's runtime: steps that block the calling thread and never suspend.

Everything that differs between the sync and the async API lives in a runtime
module; this one and `portchops_models.ops.aio_runtime` define the same names:

- `RUNTIME`, the `Runtime` the operations are given (send, fan-out, single-flight);
- `drive`, which runs one public call's operation to completion (a face calls it
  inside the call's scope, `portchops_models.ops.base.RepositoryBase._calling`);
- `run`, the same for a transaction, under the ``call_timeout`` deadline;
- `merge_segments`, the parallel scan (threads here, tasks there);
- the types of the page fetchers the faces build (`Fetch`, `SegmentFetch`).

The sync faces (`portchops_models.repository`, ``repositories``, ``transactions``)
are generated from the async ones (``tools/unasync.py``), which import these names
from ``aio_runtime``; the generated files import them from here. The operations
are coroutines; under this runtime every awaited step finishes at once, so
`portchops_models.transport.drive.run_sync` runs a whole operation without an event loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

from ..cache.items import ItemCache
from ..observe.metrics import Metrics
from ..settings import current_settings
from ..transport import deadline
from ..transport.connection import Connection
from ..transport.drive import run_sync
from ..transport.retry import RetryPolicy
from .base import Operation
from .coalesce import Batches, WindowBatches
from .page import Page, Pending, check_segments
from .runtime import Runtime

__all__ = [
    "RUNTIME",
    "SYNC",
    "Fetch",
    "SegmentFetch",
    "SyncRuntime",
    "fan_out",
    "drive",
    "merge_segments",
    "run",
]

T = TypeVar("T")
V = TypeVar("V")
K = TypeVar("K", bound=Hashable)

#: A page fetcher: the cursor and that page's ``Limit`` (``None``: the one built) -> a page,
#: its items still to decode.
Fetch = Callable[[str | None, int | None], Pending]
#: A scan segment's page fetcher: the segment and the cursor -> a page.
SegmentFetch = Callable[[int, str | None], Page[Any]]


class SyncRuntime:
    """The sync API's steps: blocking requests, batch chunks on the connection's threads."""

    def wait(self, policy: RetryPolicy) -> Callable[[float], Awaitable[None]]:
        """The policy's own ``sleep``, in the calling thread."""
        return policy.blocking_wait

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
        """`Connection.send` (blocking)."""
        return conn.send(operation, params, table=table, retry=retry, metrics=metrics)

    async def fan_out(
        self,
        conn: Connection,
        send: Callable[[list[Any]], Coroutine[Any, Any, dict[str, Any]]],
        chunks: list[list[Any]],
    ) -> list[dict[str, Any] | BaseException]:
        """Chunks in parallel on the connection's batch threads (`fan_out`)."""
        return fan_out(conn.executor, lambda chunk: run_sync(send(chunk)), chunks)

    async def get_or_load(
        self,
        cache: ItemCache[K, V],
        key: K,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, V | None]],
    ) -> V | None:
        """`ItemCache.get_or_load`, the loader run to completion in this thread."""
        return cache.get_or_load(key, variant, lambda: run_sync(loader()))

    def batches(self) -> Batches:
        """`WindowBatches`: the point reads of threads within 1 ms leave together."""
        return WindowBatches()


#: The runtime of the sync API.
RUNTIME: Runtime = SyncRuntime()
SYNC = RUNTIME


#: Run one operation to completion in this thread: what a face's ``await drive(op)``
#: becomes in the sync API (`run_sync` itself: the operation never suspends here).
drive = run_sync


def run(operation: Operation[T]) -> T:
    """Run an operation that is no repository's call (a transaction) to completion under
    the ``call_timeout`` deadline."""
    with deadline.bounded(current_settings().call_timeout):
        return run_sync(operation)


def fan_out(
    executor: Executor, send: Callable[[list[Any]], dict[str, Any]], chunks: list[list[Any]]
) -> list[dict[str, Any] | BaseException]:
    """Send chunks in parallel on `executor` (inline when there is only one).

    Waits for every chunk, so no request outlives the call, and returns each chunk's
    answer or the exception it raised, in the order of `chunks`: the caller knows
    exactly which chunks were done when one failed.
    """
    if len(chunks) == 1:
        try:
            return [send(chunks[0])]
        except Exception as err:
            return [err]
    futures = [executor.submit(deadline.propagate(send), chunk) for chunk in chunks]
    outcomes: list[dict[str, Any] | BaseException] = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as err:
            outcomes.append(err)
    return outcomes


_DONE = object()


def merge_segments(segments: int, page: SegmentFetch) -> Iterator[Any]:
    """Run one thread per scan segment; yield their items as pages arrive."""
    check_segments(segments)
    pages: queue.Queue[Any] = queue.Queue(maxsize=segments * 2)
    stop = threading.Event()

    def worker(segment: int) -> None:
        cursor: str | None = None
        try:
            while not stop.is_set():
                result = page(segment, cursor)
                pages.put(result.items)
                if result.cursor is None:
                    break
                cursor = result.cursor
        except BaseException as err:
            pages.put(err)
        finally:
            pages.put(_DONE)

    threads = [
        threading.Thread(
            target=deadline.propagate(worker), args=(s,), daemon=True, name=f"portchops-scan-{s}"
        )
        for s in range(segments)
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < segments:
            got = pages.get()
            if got is _DONE:
                finished += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                yield from got
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock workers waiting on a full queue
            try:
                pages.get_nowait()
            except queue.Empty:
                for t in threads:
                    t.join(timeout=0.05)

"""What an operation needs from its API flavour: send, fan out, single-flight loads.

The operations in `portchops_models.ops` are coroutines written once. A `Runtime`
supplies the few steps that differ between the sync and the async API: the sync one
(`portchops_models.ops.sync_runtime`) blocks and never suspends, so
`portchops_models.transport.drive.run_sync` runs a whole operation without an event loop; the
async one (`portchops_models.ops.aio_runtime`) awaits the running loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Protocol, TypeVar

from ..cache.items import ItemCache
from ..observe.metrics import Metrics
from ..transport.connection import Connection
from ..transport.retry import RetryPolicy
from .coalesce import Batches

__all__ = ["Runtime"]

V = TypeVar("V")
K = TypeVar("K", bound=Hashable)


class Runtime(Protocol):
    """The steps of an operation that differ between the sync and the async API."""

    def wait(self, policy: RetryPolicy) -> Callable[[float], Awaitable[None]]:
        """How this runtime waits out a backoff of `policy` (blocking the thread, or
        awaiting the event loop)."""
        ...  # pragma: no cover

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
        """One request through the connection's send path (retry, metrics, errors)."""
        ...  # pragma: no cover

    async def fan_out(
        self,
        conn: Connection,
        send: Callable[[list[Any]], Coroutine[Any, Any, dict[str, Any]]],
        chunks: list[list[Any]],
    ) -> list[dict[str, Any] | BaseException]:
        """Send every chunk concurrently; each chunk's answer or exception, in order."""
        ...  # pragma: no cover

    def batches(self) -> Batches:
        """A new `Batches` of this runtime's kind, for a repository that coalesces its
        point reads (`portchops_models.ops.coalesce`)."""
        ...  # pragma: no cover

    async def get_or_load(
        self,
        cache: ItemCache[K, V],
        key: K,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, V | None]],
    ) -> V | None:
        """The cached value, or ``loader()``'s, one loader per key at a time."""
        ...  # pragma: no cover

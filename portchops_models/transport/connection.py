"""The one pooled connection shared by every model and repository.

A `Connection` is what one configuration of the layer talks through: the botocore
client (`botocore_client`), the lean request path beside it (`Transport`), one slot
per pooled connection, the batch threads and the default retry policy. Its `send`
and `send_async` hand each request to the one send path (`send`).

Why one client: a botocore client owns an HTTP connection pool. PynamoDB builds
one per model class by default, so an app with N models holds N pools and N
sets of TLS handshakes. Here every model and repository borrows the same client,
rebuilt only when `configure()` changes the settings.

The pool is *blocking*: a thread that finds every connection busy waits for one
instead of opening an extra connection that urllib3 would discard afterwards, so
the number of open connections never exceeds ``max_pool_connections``.

SDK retries are off (one attempt): our retry policy (`portchops_models.retry`)
owns retries, so the two layers cannot multiply. The connection carries the
default policy, built from the ``retry_*`` settings, with one retry budget for
the whole client (as the AWS SDKs keep one retry quota per client); repositories
and the models' own methods both use it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

from ..observe.metrics import Metrics
from ..settings import Settings, current_settings, settings_generation
from . import Transport, deadline
from .botocore_client import build_client
from .drive import run_sync
from .retry import RetryPolicy
from .send import Scope, send_path
from .wire import PARSED_OPERATIONS, call_parsed

__all__ = ["Connection", "current_connection"]


@dataclass(frozen=True)
class Connection:
    """A configured botocore client and the settings it was built from."""

    settings: Settings
    client: BaseClient
    generation: int
    #: fans batch chunks out over the pool; threads start lazily, at most one per connection.
    executor: ThreadPoolExecutor = field(init=False, repr=False, compare=False)
    #: the default retry policy (``retry_*`` settings), one budget for the whole client.
    retry: RetryPolicy = field(init=False, repr=False, compare=False)
    #: one slot per pooled connection: a call waits here, under its deadline, for a
    #: free connection (urllib3's own wait has no bound).
    slots: threading.BoundedSemaphore = field(init=False, repr=False, compare=False)
    #: the lean request path every `call` takes (`portchops_models.transport`).
    transport: Transport = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = self.settings
        pool = ThreadPoolExecutor(
            max_workers=s.max_pool_connections, thread_name_prefix="portchops-batch"
        )
        object.__setattr__(self, "executor", pool)
        policy = RetryPolicy(
            max_attempts=s.retry_max_attempts,
            base_delay=s.retry_base_delay,
            max_delay=max(s.retry_max_delay, s.retry_base_delay),
        )
        object.__setattr__(self, "retry", policy)
        object.__setattr__(self, "slots", threading.BoundedSemaphore(s.max_pool_connections))
        lean = Transport.for_client(self.client, max_connections=s.max_pool_connections)
        object.__setattr__(self, "transport", lean)

    def send(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        table: str | None = None,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        """One API call the way the layer makes them: the retry policy (this
        connection's unless given), every attempt and retry counted in `metrics`,
        reads parsed by `read`, and errors translated into `portchops_models.errors`.
        """
        # `read` only matters on botocore's own path (`fallback`), whose parser it short-cuts.
        parsed = operation in PARSED_OPERATIONS and self.transport.fallback is not None
        call = self.read if parsed else self.call
        return self._send_blocking(call, operation, params, table, retry, metrics)

    async def send_async(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        wait: Callable[[float], Awaitable[None]],
        table: str | None = None,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        """`send` for the async API: the same loop, awaiting the async transport; `wait`
        is the async runtime's backoff (`portchops_models.ops.aio_runtime`)."""
        policy = retry or self.retry
        scope = self._scope(table, policy, metrics)
        return await send_path(self.call_async, operation, params, scope, wait)

    def send_streams(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        table: str | None = None,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        """`send` for the DynamoDB Streams API (``DescribeStream``, ``GetShardIterator``,
        ``GetRecords``): the same send path, retry policy and pool slots, on the lean
        transport of `streams` (``GetRecords`` answers parsed with one ``json.loads``)."""
        streams = self.streams

        def call(op: str, body: dict[str, Any]) -> dict[str, Any]:
            return self._bounded(streams, op, body, table)

        return self._send_blocking(call, operation, params, table, retry, metrics)

    def _send_blocking(
        self,
        call: Callable[[str, dict[str, Any]], dict[str, Any]],
        operation: str,
        params: dict[str, Any],
        table: str | None,
        retry: RetryPolicy | None,
        metrics: Metrics | None,
    ) -> dict[str, Any]:
        """The send path with blocking attempts (`call`), run to completion without a loop."""

        async def once(op: str, body: dict[str, Any]) -> dict[str, Any]:
            return call(op, body)

        policy = retry or self.retry
        scope = self._scope(table, policy, metrics)
        return run_sync(send_path(once, operation, params, scope, policy.blocking_wait))

    @functools.cached_property
    def streams(self) -> Transport:
        """The lean transport for the DynamoDB Streams API (built on first use, beside a
        botocore ``dynamodbstreams`` client for its endpoint, credentials and errors)."""
        client = build_client(self.settings, "dynamodbstreams")
        return Transport.for_client(client, max_connections=self.settings.max_pool_connections)

    def _scope(self, table: str | None, policy: RetryPolicy, metrics: Metrics | None) -> Scope:
        return Scope(
            table, policy, metrics, self.settings.slow_call_seconds, self.client.meta.endpoint_url
        )

    async def call_async(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`call` for the async API: `Transport.call_async` on the running loop's connections.

        Under the deadline in force, waiting for a connection, connecting and reading
        the answer (as a whole) all end by it.
        """
        return await self.transport.call_async(operation, params)

    def read(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`call` for the repository's reads: a successful answer is parsed with one
        ``json.loads`` instead of botocore's shape walk (see `portchops_models.transport.wire`)."""
        return call_parsed(self.call, operation, params)

    def close(self) -> None:
        """Release the pool's connections and the batch threads."""
        self.executor.shutdown(wait=False)
        self.transport.close()
        self.client.close()
        streams = self.__dict__.get("streams")
        if streams is not None:
            streams.close()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one DynamoDB API call (e.g. ``"GetItem"``) and return the parsed response.

        The request goes through `transport` (signed here, sent on a kept-alive
        connection, parsed with one ``json.loads``), answered and failing exactly as
        botocore's client would. Under a deadline (`portchops_models.transport.deadline`) the
        wait for a pooled connection, connecting and reading the answer (headers and
        body, as a whole, not per socket read) all come out of the time left.

        Raises:
            CallTimeout: the deadline passed before a connection came free.
        """
        return self._bounded(self.transport, operation, params, params.get("TableName"))

    def _bounded(
        self, transport: Transport, operation: str, params: dict[str, Any], table: str | None
    ) -> dict[str, Any]:
        """``transport.call`` once a pool slot is free, waiting no longer than the deadline."""
        left = deadline.remaining()
        if left is None:
            self.slots.acquire()
        elif left <= 0 or not self.slots.acquire(timeout=left):
            raise deadline.timeout_error(
                "connection" if left > 0 else "answer", table=table, operation=operation
            )
        try:
            return transport.call(operation, params)
        finally:
            self.slots.release()


_lock = threading.Lock()
_connection: Connection | None = None


def current_connection() -> Connection:
    """The shared connection for the settings in force (rebuilt after `configure()`)."""
    global _connection
    generation = settings_generation()
    conn = _connection
    if conn is not None and conn.generation == generation:
        return conn
    with _lock:
        conn = _connection
        if conn is None or conn.generation != generation:
            old = conn
            settings = current_settings()
            conn = Connection(settings, build_client(settings), generation)
            _connection = conn
            if old is not None:
                old.close()
    return conn

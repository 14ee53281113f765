"""The one pooled botocore client shared by every model and repository.

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

import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials

from ..errors import PortChopsError, error_code, http_status, translate
from ..observe import tracing
from ..observe.metrics import Metrics
from ..settings import Settings, current_settings, settings_generation
from . import Transport, deadline, fallback
from .drive import run_sync
from .retry import RetryPolicy
from .wire import PARSED_OPERATIONS, call_parsed
from .wire import install as install_parser

__all__ = ["Connection", "current_connection"]

# Credentials used only against a local engine (endpoint_url set) when none are found.
_LOCAL_CREDENTIALS = Credentials("local", "local")
_USER_ERROR = range(400, 500)


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
        call = self.read if operation in PARSED_OPERATIONS else self.call

        async def once(op: str, body: dict[str, Any]) -> dict[str, Any]:
            return call(op, body)

        policy = retry or self.retry
        return run_sync(
            self._send(once, operation, params, table, policy, metrics, policy.blocking_wait)
        )

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
        return await self._send(self.call_async, operation, params, table, policy, metrics, wait)

    async def _send(
        self,
        call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
        operation: str,
        params: dict[str, Any],
        table: str | None,
        policy: RetryPolicy,
        metrics: Metrics | None,
        wait: Callable[[float], Awaitable[None]],
    ) -> dict[str, Any]:
        """The one send path of both APIs: attempts recorded, retried (waiting out each
        backoff with the runtime's `wait`), errors translated."""
        watch = tracing.Request(operation, params, table, self.settings.slow_call_seconds)

        async def attempt() -> dict[str, Any]:
            start = time.perf_counter()
            try:
                response = await call(operation, params)
            except Exception as err:
                if metrics is not None:
                    code = error_code(err)
                    status = http_status(err)
                    retryable = policy.retry_on(err)
                    metrics.record_request(
                        operation,
                        table=table,
                        seconds=time.perf_counter() - start,
                        error_code=code or type(err).__name__,
                        throttled=retryable and code is not None and status in _USER_ERROR,
                        user_error=not retryable and status in _USER_ERROR,
                    )
                raise
            if metrics is not None:
                metrics.record_request(
                    operation,
                    table=table,
                    seconds=time.perf_counter() - start,
                    consumed=response.get("ConsumedCapacity"),
                )
            watch.answered(response)
            return response

        def on_retry(err: BaseException, attempt_no: int, delay: float) -> None:
            if metrics is not None:
                metrics.record_retry(operation, table=table)
            watch.retried(err, attempt_no, delay)

        try:
            return await policy.run(attempt, wait=wait, on_retry=on_retry, table=table)
        except PortChopsError as err:
            watch.failed(err)
            raise
        except Exception as err:
            failure = translate(err, table=table, endpoint=self.client.meta.endpoint_url)
            watch.failed(failure)
            raise failure from err
        finally:
            watch.close()

    async def call_async(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`call` for the async API: `Transport.call_async` on the running loop's session.

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
        left = deadline.remaining()
        table = params.get("TableName")
        if left is None:
            self.slots.acquire()
        elif left <= 0 or not self.slots.acquire(timeout=left):
            raise deadline.timeout_error(
                "connection" if left > 0 else "answer", table=table, operation=operation
            )
        try:
            return self.transport.call(operation, params)
        finally:
            self.slots.release()


def _build_client(settings: Settings) -> BaseClient:
    session = botocore.session.get_session()
    if settings.endpoint_url is not None and session.get_credentials() is None:
        session.set_credentials(_LOCAL_CREDENTIALS.access_key, _LOCAL_CREDENTIALS.secret_key)
    config = Config(
        region_name=settings.region,
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,  # we validate before the wire; botocore's walk is slow
        tcp_keepalive=True,
    )
    client = session.create_client(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=config,
    )
    # botocore exposes no pool_block option: set it on the pool manager so that
    # pools created from now on block instead of overflowing.
    manager = cast(Any, client)._endpoint.http_session._manager
    manager.connection_pool_kw["block"] = True
    install_parser(client)
    # Under a deadline, botocore's own path (a proxy's, or ``conn.client``'s) connects
    # within the time left and reads each answer by the deadline, as the lean path does.
    fallback.bound(client)
    return client


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
            conn = Connection(settings, _build_client(settings), generation)
            _connection = conn
            if old is not None:
                old.close()
    return conn

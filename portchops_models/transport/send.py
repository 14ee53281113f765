"""The one send path of both APIs: every attempt recorded, retried, errors translated.

`Connection.send` (sync, run to completion without an event loop) and
`Connection.send_async` hand a request here with the way to make one attempt and
the way their runtime waits out a backoff; everything else is the same: the retry
policy's loop, metrics per attempt (capacity, errors, throttles), the request's
trace and log records, and the translation of whatever failed into
`portchops_models.errors`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import PortChopsError, error_code, http_status, translate
from ..observe import tracing
from ..observe.metrics import Metrics
from .retry import RetryPolicy

__all__ = ["Scope", "send_path"]

_USER_ERROR = range(400, 500)


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request is sent under.

    Attributes:
        table: the table it is about (for metrics, records and errors), if any.
        policy: the retry policy.
        metrics: where attempts and retries are counted, or ``None``.
        slow_call_seconds: a request slower than this is recorded as slow.
        endpoint: the endpoint URL, named in connection errors.
    """

    table: str | None
    policy: RetryPolicy
    metrics: Metrics | None
    slow_call_seconds: float
    endpoint: str | None


async def send_path(
    call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
    operation: str,
    params: dict[str, Any],
    scope: Scope,
    wait: Callable[[float], Awaitable[None]],
) -> dict[str, Any]:
    """Send `operation` with `call`: attempts recorded, retried (waiting out each backoff
    with the runtime's `wait`), errors translated."""
    table, policy, metrics = scope.table, scope.policy, scope.metrics
    watch = tracing.Request(operation, params, table, scope.slow_call_seconds)

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
        failure = translate(err, table=table, endpoint=scope.endpoint)
        watch.failed(failure)
        raise failure from err
    finally:
        watch.close()

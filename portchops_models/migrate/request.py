"""One DynamoDB call for the runner: retry policy, metrics and error translation."""

from __future__ import annotations

import time
from typing import Any

from ..connection import Connection
from ..errors import PortChopsError, error_code, translate
from ..metrics import Metrics
from ..retry import RetryPolicy


def _send(
    conn: Connection,
    retry: RetryPolicy,
    metrics: Metrics | None,
    operation: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """One call with the retry policy, metrics and error translation."""
    table = params.get("TableName")
    table = table if isinstance(table, str) else None

    def attempt() -> dict[str, Any]:
        start = time.perf_counter()
        try:
            response = conn.call(operation, params)
        except Exception as err:
            if metrics is not None:
                code = error_code(err) or type(err).__name__
                seconds = time.perf_counter() - start
                metrics.record_request(operation, table=table, seconds=seconds, error_code=code)
            raise
        if metrics is not None:
            consumed = response.get("ConsumedCapacity")
            seconds = time.perf_counter() - start
            metrics.record_request(operation, table=table, seconds=seconds, consumed=consumed)
        return response

    try:
        return retry.call(attempt, table=table)
    except PortChopsError:
        raise
    except Exception as err:
        raise translate(err, table=table) from err

"""Following a call through its requests: log records and OpenTelemetry spans.

Two scopes, one per level, used by both APIs:

- `Call`, around each public call (`Repository.get`, `Transaction.commit`...):
  a span named after it (``"UserRepository.get"``, kind INTERNAL) with the
  cache hits and misses, requests and retries it made; a WARNING on
  ``portchops_models.calls`` when it takes longer than ``slow_call_seconds``.
- `Request`, around each DynamoDB request in `Connection` (its retries included):
  a child span (``"GetItem port-chops-users"``, kind CLIENT) with
  ``db.system.name="aws.dynamodb"``, ``db.collection.name``, ``db.operation.name``,
  the consumed capacity, batch sizes, a ``retry`` event per retry and the
  cancellation codes of a canceled transaction; the DEBUG and WARNING records of
  `portchops_models.observe.logs` for retries and give-ups.

Spans need the ``[otel]`` extra (``opentelemetry-api``) and a tracer provider:
the global one (``opentelemetry.trace.set_tracer_provider``) or one given to
`use_tracer_provider`. The API is imported on the first call, never at import
time; without it, or with no provider set, no span is made and a call costs a
context variable and two clock reads. Spans never carry an item, a key value or
an error message (which may name a key): only names, counts and error codes.

Scopes live in context variables, so they follow awaits and the batch threads
(which run in a copy of the caller's context, see `ops.sync_runtime.fan_out`).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import (
    THROTTLING_CODES,
    CallTimeout,
    ThrottledError,
    TransactionCanceled,
    cancellation_reasons,
    error_code,
)
from . import logs

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = [
    "DB_SYSTEM",
    "Call",
    "Request",
    "batch_gave_up",
    "batch_retry",
    "cache_counted",
    "current_call",
    "tracer",
    "use_tracer_provider",
]

#: ``db.system.name`` of every span (OpenTelemetry semantic conventions).
DB_SYSTEM = "aws.dynamodb"
_BATCH_OPERATIONS = frozenset(
    {"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}
)

_scope: contextvars.ContextVar[Call | None] = contextvars.ContextVar("portchops_call", default=None)


# ---------------------------------------------------------------------- the tracer


class _Otel:
    """The lazily imported API (``opentelemetry.trace`` and ``.context``, or None)."""

    api: Any = None
    context: Any = None


# The hot path reads module globals (cheaper than attributes): whether the API was
# looked for, the provider given to `use_tracer_provider`, the provider seen last and
# its tracer, and whether the API's global provider can be read directly.
_loaded = False
_override: object = None
_seen: object = None
_tracer: Tracer | None = None
_direct = False


def _load() -> None:
    global _loaded, _direct
    try:
        from opentelemetry import context, trace
    except ImportError:
        _loaded = True
        return
    trace.get_tracer_provider()  # applies OTEL_PYTHON_TRACER_PROVIDER, if that is set
    # get_tracer_provider() looks the environment up on every call (about a
    # microsecond) while no provider is set: read the global it returns instead.
    _direct = hasattr(trace, "_TRACER_PROVIDER")
    _Otel.api, _Otel.context = trace, context
    _loaded = True


def tracer() -> Tracer | None:
    """The tracer spans are made with, or ``None``: no ``opentelemetry-api``, no provider.

    For example:

        tracer() is None  # True until a tracer provider is set
    """
    if not _loaded:
        _load()
    api = _Otel.api
    if api is None:
        return None
    provider = _override or (api._TRACER_PROVIDER if _direct else api.get_tracer_provider())
    if provider is _seen:
        return _tracer
    return _tracer_of(api, provider)


def _tracer_of(api: Any, provider: Any) -> Tracer | None:
    global _seen, _tracer
    off = provider is None or isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider)
    from importlib.metadata import version

    made = None if off else provider.get_tracer("portchops_models", version("portchops-models"))
    _seen, _tracer = provider, made
    return made


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Trace with `provider` instead of the global one (``None``: the global one again).

    For an application that keeps its provider to itself, and for tests. For example:

        use_tracer_provider(TracerProvider())
    """
    global _override
    if not _loaded:
        _load()
    _override = provider


def _start(name: str, kind_name: str, attributes: Mapping[str, Any]) -> tuple[Span, object]:
    """Start a span as a child of the current one and make it current; (span, token)."""
    assert _tracer is not None
    span = _tracer.start_span(
        name, kind=getattr(_Otel.api.SpanKind, kind_name), attributes=attributes
    )
    token = _Otel.context.attach(_Otel.api.set_span_in_context(span))
    return span, token


def _finish(span: Span, token: object, err: BaseException | None) -> None:
    if err is not None:
        kind = type(err).__name__
        span.set_attribute("error.type", kind)
        code = getattr(err, "code", None) or error_code(err)
        if isinstance(code, str):
            span.set_attribute("aws.error_code", code)
        reasons = err.reasons if isinstance(err, TransactionCanceled) else cancellation_reasons(err)
        if reasons is not None:
            codes = [reason.code if reason else "None" for reason in reasons]
            span.set_attribute("portchops.transaction.cancellation_codes", codes)
        span.set_status(_Otel.api.Status(_Otel.api.StatusCode.ERROR, kind))
    span.end()
    _Otel.context.detach(token)


# ---------------------------------------------------------------------- the call scope


def _name(call: Call | None) -> str | None:
    return None if call is None else call.name


def current_call() -> Call | None:
    """The public call running in this context, or ``None``."""
    return _scope.get()


class Call:
    """The scope of one public call: ``with Call(UserRepository, "get", 1.0): ...``.

    Args:
        owner: the class whose method this is (or its name), e.g. ``UserRepository``.
        method: the method's name, e.g. ``"get"``.
        slow_after: seconds past which the call is logged as slow (0: never).
        table: returns the table the call works on, asked only when it is needed.
    """

    __slots__ = (
        "hits",
        "method",
        "misses",
        "owner",
        "requests",
        "retries",
        "slow_after",
        "span",
        "start",
        "table",
        "token",
        "trace_token",
    )

    def __init__(
        self,
        owner: type | str,
        method: str,
        slow_after: float,
        table: Callable[[], str | None] | None = None,
    ) -> None:
        self.owner = owner
        self.method = method
        self.slow_after = slow_after
        self.table = table
        self.hits = self.misses = self.requests = self.retries = 0
        self.span: Span | None = None

    @property
    def name(self) -> str:
        """``"Owner.method"``, e.g. ``"UserRepository.get"`` (the owner alone without a method)."""
        owner = self.owner if isinstance(self.owner, str) else self.owner.__name__
        return f"{owner}.{self.method}" if self.method else owner

    def table_name(self) -> str | None:
        """The call's table, if it has one."""
        return None if self.table is None else self.table()

    def __enter__(self) -> Call:
        self.token = _scope.set(self)
        if tracer() is not None:
            attributes: dict[str, Any] = {"db.system.name": DB_SYSTEM}
            table = self.table_name()
            if table is not None:
                attributes["db.collection.name"] = table
            self.span, self.trace_token = _start(self.name, "INTERNAL", attributes)
        self.start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self.start
        _scope.reset(self.token)
        span = self.span
        if span is not None:
            if self.hits or self.misses:
                span.set_attribute("portchops.cache.hits", self.hits)
                span.set_attribute("portchops.cache.misses", self.misses)
            span.set_attribute("portchops.requests", self.requests)
            if self.retries:
                span.set_attribute("portchops.retries", self.retries)
            _finish(span, self.trace_token, exc)
        outermost = self.token.old_value in (None, contextvars.Token.MISSING)
        if 0 < self.slow_after < seconds and outermost:
            logs.slow_call(
                self.name, None, self.table_name(), seconds, self.slow_after, self.requests
            )

    def set_attribute(self, key: str, value: str | int | float | bool | list[str]) -> None:
        """Set an attribute on the call's span (nothing without a span)."""
        if self.span is not None:
            self.span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
        """Add an event to the call's span (nothing without a span)."""
        if self.span is not None:
            self.span.add_event(name, attributes)


def cache_counted(hit: bool, count: int) -> None:
    """Count `count` cache hits (or misses) on the call running in this context."""
    call = _scope.get()
    if call is not None:
        if hit:
            call.hits += count
        else:
            call.misses += count


def batch_retry(operation: str, table: str, round_no: int, delay: float, outstanding: int) -> None:
    """A batch round left `outstanding` keys or items unprocessed: DEBUG record, span event."""
    call = _scope.get()
    logs.batch_retry(operation, table, _name(call), round_no, delay, outstanding)
    if call is not None:
        call.retries += 1
        call.add_event(
            "batch_retry",
            {"db.operation.name": operation, "attempt": round_no, "outstanding": outstanding},
        )


def batch_gave_up(operation: str, table: str, err: BaseException) -> None:
    """Batch rounds stopped making progress (or ran out of time): the WARNING record."""
    call = _scope.get()
    logs.gave_up(operation, table, _name(call), err)


# ---------------------------------------------------------------------- the request scope


class Request:
    """The scope of one DynamoDB request, its retries included (see `Connection._send`).

    Args:
        operation: the API operation, e.g. ``"GetItem"``.
        params: its parameters (read for names and sizes only, never for values).
        table: the table, when the caller knows it.
        slow_after: seconds past which a request made outside any public call is
            logged as slow (0: never).
    """

    __slots__ = (
        "call",
        "operation",
        "retries",
        "slow_after",
        "span",
        "start",
        "table",
        "throttles",
        "token",
    )

    def __init__(
        self, operation: str, params: Mapping[str, Any], table: str | None, slow_after: float
    ) -> None:
        self.operation = operation
        self.table = table
        self.slow_after = slow_after
        self.retries = self.throttles = 0
        call = self.call = _scope.get()
        if call is not None:
            call.requests += 1
        self.span: Span | None = None
        if tracer() is not None:
            self.span, self.token = _start(*_request_span(operation, params, table))
        self.start = time.perf_counter()

    def answered(self, response: Mapping[str, Any]) -> None:
        """Record what an answer says: capacity consumed, counts, unprocessed work."""
        span = self.span
        if span is None:
            return
        consumed = response.get("ConsumedCapacity")
        if consumed is not None:
            entries = consumed if isinstance(consumed, list) else [consumed]
            span.set_attribute(
                "aws.dynamodb.consumed_capacity", [json.dumps(e, sort_keys=True) for e in entries]
            )
        for field, attribute in (("Count", "count"), ("ScannedCount", "scanned_count")):
            if field in response:
                span.set_attribute(f"aws.dynamodb.{attribute}", response[field])
        left = response.get("UnprocessedKeys") or response.get("UnprocessedItems")
        if left:
            span.set_attribute("portchops.unprocessed", _count_requests(left))

    def retried(self, err: BaseException, attempt: int, delay: float) -> None:
        """Attempt number `attempt` failed with `err`; the next comes after `delay` seconds."""
        self.retries += 1
        call = self.call
        if call is not None:
            call.retries += 1
        logs.retry(self.operation, self.table, _name(call), attempt, delay, err)
        span = self.span
        if span is not None:
            reason = logs.reason_of(err)
            throttled = reason in THROTTLING_CODES
            self.throttles += throttled
            span.add_event(
                "retry",
                {"attempt": attempt, "delay_seconds": delay, "error.type": reason},
            )

    def failed(self, err: BaseException) -> None:
        """The request failed for good with `err` (the error the caller gets)."""
        if isinstance(err, ThrottledError | CallTimeout):
            call = self.call
            logs.gave_up(self.operation, self.table, _name(call), err)
        self._close(err)

    def close(self) -> None:
        """End the request: the span (if not ended by `failed`), the slow-request record."""
        self._close(None)
        if self.call is None and self.slow_after:
            seconds = time.perf_counter() - self.start
            if seconds > self.slow_after:
                logs.slow_call(None, self.operation, self.table, seconds, self.slow_after, 1)

    def _close(self, err: BaseException | None) -> None:
        span = self.span
        if span is None:
            return
        self.span = None
        span.set_attribute("portchops.attempts", self.retries + 1)
        if self.throttles:
            span.set_attribute("portchops.throttles", self.throttles)
        _finish(span, self.token, err)


def _request_span(
    operation: str, params: Mapping[str, Any], table: str | None
) -> tuple[str, str, dict[str, Any]]:
    """The name, kind and first attributes of a request's span."""
    tables = [table] if table is not None else _tables(operation, params)
    attributes: dict[str, Any] = {
        "db.system.name": DB_SYSTEM,
        "db.operation.name": operation,
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": operation,
    }
    if tables:
        attributes["aws.dynamodb.table_names"] = tables
    if len(tables) == 1:
        attributes["db.collection.name"] = tables[0]
    if operation in _BATCH_OPERATIONS:
        items = params.get("TransactItems")
        size = len(items) if items is not None else _count_requests(params.get("RequestItems"))
        attributes["db.operation.batch.size"] = size
    for field, attribute in (
        ("ConsistentRead", "consistent_read"),
        ("IndexName", "index_name"),
        ("Limit", "limit"),
        ("ScanIndexForward", "scan_forward"),
        ("Segment", "segment"),
        ("TotalSegments", "total_segments"),
    ):
        if field in params:
            attributes[f"aws.dynamodb.{attribute}"] = params[field]
    name = f"{operation} {tables[0]}" if len(tables) == 1 else operation
    return name, "CLIENT", attributes


def _tables(operation: str, params: Mapping[str, Any]) -> list[str]:
    """The tables a request without ``TableName`` names: batches' and transactions'."""
    if "TableName" in params:
        return [str(params["TableName"])]
    if "RequestItems" in params:
        return sorted(params["RequestItems"])
    names: set[str] = set()
    for entry in params.get("TransactItems", ()):
        for body in entry.values():
            if isinstance(body, Mapping) and "TableName" in body:
                names.add(str(body["TableName"]))
    return sorted(names)


def _count_requests(request_items: Mapping[str, Any] | None) -> int:
    """Keys (BatchGetItem) or write requests (BatchWriteItem) over every table."""
    if not request_items:
        return 0
    total = 0
    for entry in request_items.values():
        total += len(entry["Keys"]) if isinstance(entry, Mapping) else len(entry)
    return total

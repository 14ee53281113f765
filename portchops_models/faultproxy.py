"""A fault-injecting loopback HTTP proxy for DynamoDB-compatible engines.

`FaultProxy` listens on ``127.0.0.1`` (a free port by default) and forwards
every request to an upstream engine (moto's server, dynalite, ...). On the
way it can add latency, answer throttling or server errors itself, drop
connections, and turn parts of ``BatchGetItem``/``BatchWriteItem`` requests
into ``UnprocessedKeys``/``UnprocessedItems`` - the faults real DynamoDB
produces and local engines never do. It counts what it did (`ProxyStats`),
including client connections, so connection-pool reuse can be measured.

Standard library only; one thread per client connection, HTTP/1.1 keep-alive
towards the client whatever the upstream does (moto closes every
connection, dynalite keeps them open: both work). Draws come from one seeded
`random.Random`, so a sequential run is reproducible.

Examples:
    >>> import botocore.session
    >>> from portchops_models.engine import LocalEngine
    >>> from portchops_models.faultproxy import FaultProxy, Faults
    >>> with LocalEngine() as engine, FaultProxy(
    ...     upstream=engine.endpoint_url, faults=Faults(throttle=0.2, latency=0.005), seed=1
    ... ) as proxy:
    ...     client = botocore.session.get_session().create_client(
    ...         "dynamodb", region_name="us-east-1", endpoint_url=proxy.endpoint_url,
    ...         aws_access_key_id="x", aws_secret_access_key="x",
    ...     )
    ...     names = client.list_tables()["TableNames"]  # retried by botocore if throttled
    ...     proxy.faults = Faults(unprocessed=0.5, operations=frozenset({"BatchWriteItem"}))
    ...     throttled = proxy.stats.throttled

Notes:
    * Requests without an ``X-Amz-Target`` header (e.g. moto's
      ``/moto-api/reset``) are always forwarded untouched.
    * A request whose body the proxy rewrites (partial batches) no longer
      matches its SigV4 signature; local engines do not check signatures.
    * Batches over DynamoDB's limits (100 keys, 25 write requests) are
      forwarded whole, so the engine answers with its own validation error.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import random
import selectors
import socket
import struct
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, Final, Literal, TypeAlias, cast
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "Faults", "ProxyStats", "ThrottleCode"]

_log = logging.getLogger(__name__)

ThrottleCode: TypeAlias = Literal[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
]
"""Error codes `Faults.throttle_code` can answer throttled requests with."""

_THROTTLE_BODIES: Final[dict[str, tuple[str, str]]] = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "RequestLimitExceeded": (
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account.",
    ),
}

_JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 200
_BATCH_GET_LIMIT: Final = 100
_BATCH_WRITE_LIMIT: Final = 25
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_STALE_CONNECTION_ERRORS: Final = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)

_Headers: TypeAlias = list[tuple[str, str]]
_Json: TypeAlias = dict[str, object]


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What the proxy does to requests; every fault is off by default.

    Fractions are probabilities per request (``drop``, ``server_error``,
    ``throttle``; together at most 1) or per batch key/write request
    (``unprocessed``). Swap a running proxy's faults with
    ``proxy.faults = Faults(...)``.

    Attributes:
        latency: seconds to wait before handling each request (network RTT).
        latency_jitter: up to this many extra seconds, drawn uniformly.
        throttle: fraction answered, without forwarding, with HTTP 400
            ``throttle_code``.
        throttle_code: the error code of throttled answers.
        server_error: fraction answered, without forwarding, with HTTP
            ``server_error_status`` (500 ``InternalFailure`` or 503
            ``ServiceUnavailable``).
        server_error_status: 500 or 503.
        drop: fraction where the client connection is reset without an
            answer (and nothing is forwarded).
        unprocessed: fraction of ``BatchGetItem`` keys and ``BatchWriteItem``
            write requests taken out of the forwarded request and returned as
            ``UnprocessedKeys``/``UnprocessedItems`` (merged with the engine's).
            When every one is drawn, nothing is forwarded.
        operations: when set, faults (latency included) apply only to these
            operations, e.g. ``frozenset({"BatchWriteItem"})``.
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    throttle: float = 0.0
    throttle_code: ThrottleCode = "ProvisionedThroughputExceededException"
    server_error: float = 0.0
    server_error_status: Literal[500, 503] = 500
    drop: float = 0.0
    unprocessed: float = 0.0
    operations: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("throttle", "server_error", "drop", "unprocessed"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be within [0, 1], got {value!r}")
        if self.latency < 0 or self.latency_jitter < 0:
            raise ValueError("Faults.latency and Faults.latency_jitter must be >= 0")
        if self.drop + self.server_error + self.throttle > 1.0 + 1e-9:
            raise ValueError("Faults.drop + Faults.server_error + Faults.throttle must be <= 1")
        if self.throttle_code not in _THROTTLE_BODIES:
            raise ValueError(f"unknown Faults.throttle_code {self.throttle_code!r}")
        if self.server_error_status not in (500, 503):
            raise ValueError("Faults.server_error_status must be 500 or 503")
        if self.operations is not None and not isinstance(self.operations, frozenset):
            object.__setattr__(self, "operations", frozenset(self.operations))

    def applies_to(self, operation: str) -> bool:
        """Whether faults apply to ``operation`` (a DynamoDB operation name)."""
        return bool(operation) and (self.operations is None or operation in self.operations)


@dataclass(frozen=True, kw_only=True)
class ProxyStats:
    """A snapshot of a proxy's counters (see `FaultProxy.stats`).

    Attributes:
        requests: requests received from clients.
        forwarded: requests sent upstream and answered by the engine.
        throttled: requests the proxy answered with a throttling error.
        server_errors: requests the proxy answered with a 500/503.
        dropped: requests whose connection the proxy reset.
        upstream_errors: requests the engine could not be reached for
            (answered with 502).
        unprocessed_keys: BatchGetItem keys moved to ``UnprocessedKeys``.
        unprocessed_items: BatchWriteItem requests moved to ``UnprocessedItems``.
        by_operation: requests received, per operation.
        forwarded_by_operation: requests forwarded, per operation.
        bytes_to_client: response body bytes sent to clients.
        connections_opened: client TCP connections accepted.
        peak_connections: most client connections open at once.
        open_connections: client connections open now.
    """

    requests: int = 0
    forwarded: int = 0
    throttled: int = 0
    server_errors: int = 0
    dropped: int = 0
    upstream_errors: int = 0
    unprocessed_keys: int = 0
    unprocessed_items: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    forwarded_by_operation: dict[str, int] = field(default_factory=dict)
    bytes_to_client: int = 0
    connections_opened: int = 0
    peak_connections: int = 0
    open_connections: int = 0


class _Counters:
    """Mutable counters; every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open_connections = 0
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.forwarded = 0
        self.throttled = 0
        self.server_errors = 0
        self.dropped = 0
        self.upstream_errors = 0
        self.unprocessed_keys = 0
        self.unprocessed_items = 0
        self.by_operation: Counter[str] = Counter()
        self.forwarded_by_operation: Counter[str] = Counter()
        self.bytes_to_client = 0
        self.connections_opened = 0
        self.peak_connections = self.open_connections

    def snapshot(self) -> ProxyStats:
        return ProxyStats(
            requests=self.requests,
            forwarded=self.forwarded,
            throttled=self.throttled,
            server_errors=self.server_errors,
            dropped=self.dropped,
            upstream_errors=self.upstream_errors,
            unprocessed_keys=self.unprocessed_keys,
            unprocessed_items=self.unprocessed_items,
            by_operation=dict(self.by_operation),
            forwarded_by_operation=dict(self.forwarded_by_operation),
            bytes_to_client=self.bytes_to_client,
            connections_opened=self.connections_opened,
            peak_connections=self.peak_connections,
            open_connections=self.open_connections,
        )


class _BadRequest(Exception):
    """The client sent something that is not an HTTP/1.x request."""


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    headers: _Headers
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def operation(self) -> str:
        target = self.header("x-amz-target")
        return target.rpartition(".")[2].strip() if target else ""


@dataclass(slots=True)
class _Response:
    status: int
    reason: str
    headers: _Headers
    body: bytes


@dataclass(slots=True)
class _BatchPlan:
    """A partial batch: what to forward and what to report as unprocessed."""

    operation: str
    forward: _Json | None  # None: everything was drawn, forward nothing
    moved: dict[str, object]
    moved_count: int
    tables: list[str]
    payload: _Json


def _read_request(rfile: BinaryIO, send_continue: Callable[[], None]) -> _Request | None:
    """Read one request; None on a clean end of stream."""
    line = rfile.readline(_MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112: ignore empty lines before a request
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise _BadRequest("request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("malformed request line")
    method, target, version = parts
    headers: _Headers = []
    while True:
        raw = rfile.readline(_MAX_LINE + 1)
        if not raw:
            return None
        if raw in (b"\r\n", b"\n"):
            break
        if len(raw) > _MAX_LINE or len(headers) >= _MAX_HEADERS:
            raise _BadRequest("headers too large")
        if raw[:1] in (b" ", b"\t"):
            raise _BadRequest("obsolete header folding")
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest("malformed header")
        headers.append((name, value.strip()))
    request = _Request(method, target, headers, b"", keep_alive=True)
    connection = (request.header("connection") or "").lower()
    if version == "HTTP/1.0":
        request.keep_alive = "keep-alive" in connection
    else:
        request.keep_alive = "close" not in connection
    if (request.header("expect") or "").lower() == "100-continue" and version != "HTTP/1.0":
        send_continue()
    if "chunked" in (request.header("transfer-encoding") or "").lower():
        body = _read_chunked(rfile)
        if body is None:
            return None
        request.body = body
    else:
        length_text = request.header("content-length")
        try:
            length = int(length_text) if length_text else 0
        except ValueError as err:
            raise _BadRequest("bad Content-Length") from err
        if length < 0:
            raise _BadRequest("bad Content-Length")
        if length:
            request.body = rfile.read(length)
            if len(request.body) < length:
                return None
    return request


def _read_chunked(rfile: BinaryIO) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        size_line = rfile.readline(_MAX_LINE + 1)
        if not size_line:
            return None
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as err:
            raise _BadRequest("bad chunk size") from err
        if size == 0:
            break
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
            return None
        chunks.append(chunk)
    while True:  # trailer section
        trailer = rfile.readline(_MAX_LINE + 1)
        if not trailer:
            return None
        if trailer in (b"\r\n", b"\n"):
            return b"".join(chunks)


def _json_dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _error_body(type_: str, message: str) -> bytes:
    return _json_dumps({"__type": type_, "message": message})


def _set_header(headers: _Headers, name: str, value: str) -> None:
    """Set ``name`` (case-insensitive) to ``value`` where it was first, dropping repeats."""
    lowered = name.lower()
    matches = [index for index, (key, _) in enumerate(headers) if key.lower() == lowered]
    if not matches:
        headers.append((name, value))
        return
    first = matches[0]
    headers[first] = (headers[first][0], value)
    for index in reversed(matches[1:]):
        del headers[index]


def _plan_batch(operation: str, payload: _Json, draw: Callable[[], bool]) -> _BatchPlan | None:
    """Draw which keys/write requests become unprocessed; None when nothing moves."""
    items = payload.get("RequestItems")
    if not isinstance(items, dict) or not items:
        return None
    is_get = operation == "BatchGetItem"
    total = 0
    for spec in items.values():
        entries = spec.get("Keys") if is_get and isinstance(spec, dict) else spec
        if not isinstance(entries, list):
            return None
        total += len(entries)
    if total == 0 or total > (_BATCH_GET_LIMIT if is_get else _BATCH_WRITE_LIMIT):
        return None  # let the engine answer its validation error for the whole request
    forward: dict[str, object] = {}
    moved: dict[str, object] = {}
    moved_count = 0
    for table, spec in items.items():
        entries = spec["Keys"] if is_get else spec
        keep: list[object] = []
        move: list[object] = []
        for entry in entries:
            (move if draw() else keep).append(entry)
        moved_count += len(move)
        if is_get:
            rest = {k: v for k, v in spec.items() if k != "Keys"}
            if keep:
                forward[table] = {"Keys": keep, **rest}
            if move:
                moved[table] = {"Keys": move, **rest}
        else:
            if keep:
                forward[table] = keep
            if move:
                moved[table] = move
    if moved_count == 0:
        return None
    return _BatchPlan(
        operation=operation,
        forward={**payload, "RequestItems": forward} if forward else None,
        moved=moved,
        moved_count=moved_count,
        tables=list(items),
        payload=payload,
    )


def _empty_batch_response(plan: _BatchPlan) -> _Json:
    """What the engine would answer had it processed none of the batch."""
    response: _Json
    if plan.operation == "BatchGetItem":
        response = {"Responses": {table: [] for table in plan.tables}, "UnprocessedKeys": {}}
    else:
        response = {"UnprocessedItems": {}}
        if plan.payload.get("ReturnItemCollectionMetrics") == "SIZE":
            response["ItemCollectionMetrics"] = {}
    if plan.payload.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
        response["ConsumedCapacity"] = []
    return response


def _merge_unprocessed(plan: _BatchPlan, response: _Json) -> bool:
    """Add the plan's moved keys/requests to an engine response; False if malformed."""
    if plan.operation == "BatchGetItem":
        responses = response.setdefault("Responses", {})
        if not isinstance(responses, dict):
            return False
        for table in plan.tables:
            responses.setdefault(table, [])
        unprocessed = response.get("UnprocessedKeys")
        if not isinstance(unprocessed, dict):
            unprocessed = response["UnprocessedKeys"] = {}
        for table, entry in plan.moved.items():
            existing = unprocessed.get(table)
            assert isinstance(entry, dict)
            if isinstance(existing, dict) and isinstance(existing.get("Keys"), list):
                existing["Keys"].extend(entry["Keys"])
            else:
                unprocessed[table] = entry
    else:
        unprocessed = response.get("UnprocessedItems")
        if not isinstance(unprocessed, dict):
            unprocessed = response["UnprocessedItems"] = {}
        for table, requests in plan.moved.items():
            existing = unprocessed.get(table)
            assert isinstance(requests, list)
            if isinstance(existing, list):
                existing.extend(requests)
            else:
                unprocessed[table] = requests
    return True


class _Connection:
    """One client connection, served on its own thread."""

    def __init__(self, proxy: FaultProxy, sock: socket.socket, number: int) -> None:
        self.proxy = proxy
        self.sock = sock
        self.rfile = cast("BinaryIO", sock.makefile("rb", buffering=65536))
        self.upstream: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(
            target=self.run, name=f"faultproxy-{proxy.port}-conn-{number}", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> None:
        try:
            self._serve_forever()
        except Exception:  # pragma: no cover - a bug; never kill the process over it
            if not self.proxy._stopping.is_set():
                _log.exception("fault proxy connection failed")
        finally:
            self.close()
            self.proxy._connection_closed(self)

    def _serve_forever(self) -> None:
        stopping = self.proxy._stopping
        while not stopping.is_set():
            try:
                request = _read_request(self.rfile, self._send_continue)
            except _BadRequest as err:
                with contextlib.suppress(OSError):
                    self._send(_plain_response(400, "Bad Request", str(err)), close=True)
                return
            except (OSError, ValueError):
                return
            if request is None:
                return
            try:
                if not self._handle(request):
                    return
            except OSError:
                return

    def close(self) -> None:
        """Close both sides; safe to call from any thread, more than once."""
        upstream = self.upstream
        if upstream is not None:
            upstream.close()
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def interrupt(self) -> None:
        """Wake the thread wherever it blocks (reading the client or the engine)."""
        for sock in (self.sock, self.upstream.sock if self.upstream is not None else None):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _abort(self) -> None:
        """Reset the client connection: no answer, an RST instead of a FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    # -- one request -------------------------------------------------------

    def _handle(self, request: _Request) -> bool:
        """Serve one request; returns whether to keep the connection open."""
        proxy = self.proxy
        operation = request.operation
        proxy._count_request(operation)
        faults = proxy.faults
        plan: _BatchPlan | None = None
        if faults.applies_to(operation):
            delay = proxy._draw_delay(faults)
            if delay > 0 and proxy._stopping.wait(delay):
                return False
            outcome = proxy._draw_outcome(faults)
            if outcome == "drop":
                proxy._count("dropped")
                self._abort()
                return False
            if outcome == "throttle":
                proxy._count("throttled")
                type_, message = _THROTTLE_BODIES[faults.throttle_code]
                return self._send(_json_response(400, "Bad Request", type_, message), request)
            if outcome == "server_error":
                proxy._count("server_errors")
                if faults.server_error_status == 503:
                    response = _json_response(
                        503,
                        "Service Unavailable",
                        "com.amazon.coral.service#ServiceUnavailable",
                        "The service is currently unavailable or busy.",
                    )
                else:
                    response = _json_response(
                        500,
                        "Internal Server Error",
                        "com.amazon.coral.service#InternalFailure",
                        "The server encountered an internal error trying to fulfill the request.",
                    )
                return self._send(response, request)
            if faults.unprocessed > 0 and operation in ("BatchGetItem", "BatchWriteItem"):
                plan = proxy._plan_batch(operation, request.body, faults.unprocessed)
        if plan is None:
            upstream_response = self._forward(request, request.body, operation)
            if upstream_response is None:
                return self._send(_upstream_failure(), request)
            return self._send(upstream_response, request)
        return self._send(self._forward_partial(request, plan), request)

    def _forward_partial(self, request: _Request, plan: _BatchPlan) -> _Response:
        if plan.forward is None:
            response = _empty_batch_response(plan)
            _merge_unprocessed(plan, response)
            self.proxy._count_unprocessed(plan)
            return _json_ok(_json_dumps(response))
        upstream = self._forward(request, _json_dumps(plan.forward), plan.operation, identity=True)
        if upstream is None:
            return _upstream_failure()
        if upstream.status != 200:
            return upstream  # the engine rejected the (partial) batch: pass its answer on
        body = upstream.body
        encoding = _header(upstream.headers, "content-encoding")
        try:
            if encoding and encoding.lower() != "identity":
                body = zlib.decompress(body, wbits=47)  # gzip or zlib
            payload = json.loads(body)
        except (ValueError, zlib.error):
            payload = None
        if not isinstance(payload, dict) or not _merge_unprocessed(plan, payload):
            self.proxy._count("upstream_errors")
            return _upstream_failure("the engine's batch response could not be parsed")
        self.proxy._count_unprocessed(plan)
        new_body = _json_dumps(payload)
        headers = [(k, v) for k, v in upstream.headers if k.lower() != "content-encoding"]
        _set_header(headers, "Content-Length", str(len(new_body)))
        _set_header(headers, "x-amz-crc32", str(zlib.crc32(new_body)))
        return _Response(upstream.status, upstream.reason, headers, new_body)

    def _forward(
        self, request: _Request, body: bytes, operation: str, *, identity: bool = False
    ) -> _Response | None:
        """Send to the engine and read its answer; None (counted) if it fails."""
        proxy = self.proxy
        headers: _Headers = []
        connection_tokens = {
            token.strip().lower() for token in (request.header("connection") or "").split(",")
        }
        has_host = has_length = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered in connection_tokens:
                continue
            if identity and lowered == "accept-encoding":
                continue
            if lowered == "content-length":
                if has_length:
                    continue
                has_length = True
                value = str(len(body))
            has_host = has_host or lowered == "host"
            headers.append((name, value))
        if not has_length and (body or request.method in ("POST", "PUT", "PATCH")):
            headers.append(("Content-Length", str(len(body))))
        if not has_host:
            headers.insert(0, ("Host", proxy._upstream_netloc))
        for attempt in range(2):
            if proxy._stopping.is_set():
                return None
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(
                    proxy._upstream_host, proxy._upstream_port, timeout=proxy.upstream_timeout
                )
            conn = self.upstream
            reused = conn.sock is not None
            try:
                conn.putrequest(
                    request.method, request.target, skip_host=True, skip_accept_encoding=True
                )
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body)
                upstream = conn.getresponse()
                data = upstream.read()
                response = _Response(
                    upstream.status, upstream.reason, list(upstream.msg.items()), data
                )
            except _STALE_CONNECTION_ERRORS as err:
                conn.close()
                if reused and attempt == 0:
                    continue  # a keep-alive connection the engine had closed: retry once
                self._upstream_failed(err)
                return None
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self._upstream_failed(err)
                return None
            proxy._count_forwarded(operation)
            return _strip_hop_by_hop(response, request.method)
        return None  # pragma: no cover - the loop always returns

    def _upstream_failed(self, err: Exception) -> None:
        if not self.proxy._stopping.is_set():
            _log.warning("fault proxy: upstream %s failed: %r", self.proxy.upstream, err)
        self.proxy._count("upstream_errors")

    # -- writing -----------------------------------------------------------

    def _send_continue(self) -> None:
        self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(
        self, response: _Response, request: _Request | None = None, *, close: bool = False
    ) -> bool:
        """Write a whole response in one go; returns whether to keep the connection."""
        keep = not close and request is not None and request.keep_alive
        keep = keep and not self.proxy._stopping.is_set()
        head_only = request is not None and request.method == "HEAD"
        lines = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in response.headers)
        if not keep:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        body = b"" if head_only else response.body
        # Count first: once the client has the answer, the stats must already show it.
        self.proxy._count_bytes(len(body))
        self.sock.sendall(data + body if body else data)
        return keep


def _header(headers: _Headers, name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _strip_hop_by_hop(response: _Response, method: str) -> _Response:
    """Drop the engine's connection-level headers; the body's framing is ours."""
    connection_tokens = {
        token.strip().lower()
        for token in (_header(response.headers, "connection") or "").split(",")
    }
    no_body = method == "HEAD" or response.status in (204, 304) or response.status < 200
    headers: _Headers = []
    for name, value in response.headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP or lowered in connection_tokens:
            continue
        if lowered == "content-length" and not no_body:
            value = str(len(response.body))
        headers.append((name, value))
    if not no_body and _header(headers, "content-length") is None:
        headers.append(("Content-Length", str(len(response.body))))
    response.headers = headers
    return response


def _answer_headers(body: bytes) -> _Headers:
    return [
        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
        ("x-amz-crc32", str(zlib.crc32(body))),
        ("Content-Type", _JSON_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Date", email.utils.formatdate(usegmt=True)),
    ]


def _json_response(status: int, reason: str, type_: str, message: str) -> _Response:
    body = _error_body(type_, message)
    return _Response(status, reason, _answer_headers(body), body)


def _json_ok(body: bytes) -> _Response:
    return _Response(200, "OK", _answer_headers(body), body)


def _upstream_failure(message: str = "the engine could not be reached") -> _Response:
    return _json_response(
        502, "Bad Gateway", "com.amazon.coral.service#InternalFailure", f"fault proxy: {message}"
    )


def _plain_response(status: int, reason: str, message: str) -> _Response:
    body = message.encode("utf-8", "replace")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return _Response(status, reason, headers, body)


class FaultProxy:
    """A fault-injecting HTTP proxy on loopback in front of a DynamoDB-compatible engine.

    A context manager: ``with FaultProxy(upstream=url, faults=Faults(...), seed=1) as p:``
    then point clients at ``p.endpoint_url``.

    Args:
        upstream: the engine's ``http://host:port`` URL.
        faults: the initial faults (none by default); see `faults`.
        seed: seeds the proxy's random draws (None: unseeded).
        host: the address to bind; loopback by default.
        port: the port to bind; 0 (the default) picks a free one.
        upstream_timeout: socket timeout, in seconds, towards the engine.
    """

    def __init__(
        self,
        upstream: str,
        *,
        faults: Faults | None = None,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"upstream must not have a path or query, got {upstream!r}")
        self.upstream = upstream
        """The engine's URL, as given."""
        self.upstream_timeout = upstream_timeout
        """Socket timeout, in seconds, towards the engine."""
        self.host = host
        """The bound address."""
        self.port = port
        """The bound port (the real one once started)."""
        self._requested_port = port
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_netloc = parts.netloc
        self._faults = faults if faults is not None else Faults()
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._counters = _Counters()
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._running = False
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self._accepted = 0

    # -- public API --------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running proxy."""
        if not self._running:
            raise RuntimeError("the proxy is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the proxy is accepting connections."""
        return self._running

    @property
    def faults(self) -> Faults:
        """The faults in force; assign a new `Faults` to change them (thread-safe)."""
        with self._random_lock:
            return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, got {type(faults).__name__}")
        with self._random_lock:
            self._faults = faults

    @property
    def stats(self) -> ProxyStats:
        """A consistent snapshot of the counters."""
        with self._counters.lock:
            return self._counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters (``open_connections`` stays; ``peak_connections`` restarts from it)."""
        with self._counters.lock:
            self._counters.reset()

    def start(self) -> FaultProxy:
        """Bind and start serving (idempotent); returns self."""
        with self._lifecycle:
            if self._running:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.host, self._requested_port))
                listener.listen(256)
                listener.setblocking(False)
            except BaseException:
                listener.close()
                raise
            self.host, self.port = listener.getsockname()[:2]
            self._listener = listener
            self._wake = socket.socketpair()
            self._stopping.clear()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"faultproxy-{self.port}-accept", daemon=True
            )
            self._running = True
            self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and join every thread (idempotent)."""
        with self._lifecycle:
            if not self._running:
                return
            self._running = False
            self._stopping.set()
            assert self._wake is not None
            assert self._listener is not None
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
            if self._accept_thread is not None:
                self._accept_thread.join()
                self._accept_thread = None
            self._listener.close()
            self._listener = None
            for sock in self._wake:
                sock.close()
            self._wake = None
            with self._counters.lock:
                connections = list(self._connections)
            for connection in connections:
                connection.interrupt()
            for connection in connections:
                connection.thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on {self.host}:{self.port}" if self._running else "stopped"
        return f"<FaultProxy {state} -> {self.upstream} {self._faults!r}>"

    # -- internals ---------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake
        assert listener is not None
        assert wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake[0]:
                        return
                    try:
                        sock, _addr = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        if self._stopping.is_set():
                            return
                        _log.warning("fault proxy: accept failed", exc_info=True)
                        continue
                    self._start_connection(sock)

    def _start_connection(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._accepted += 1
        connection = _Connection(self, sock, self._accepted)
        counters = self._counters
        with counters.lock:
            counters.connections_opened += 1
            counters.open_connections += 1
            counters.peak_connections = max(counters.peak_connections, counters.open_connections)
            self._connections.add(connection)
        connection.thread.start()

    def _connection_closed(self, connection: _Connection) -> None:
        counters = self._counters
        with counters.lock:
            if connection in self._connections:
                self._connections.discard(connection)
                counters.open_connections -= 1

    def _draw_delay(self, faults: Faults) -> float:
        if faults.latency_jitter > 0:
            with self._random_lock:
                return faults.latency + self._random.uniform(0.0, faults.latency_jitter)
        return faults.latency

    def _draw_outcome(self, faults: Faults) -> str:
        if faults.drop == 0 and faults.server_error == 0 and faults.throttle == 0:
            return "forward"
        with self._random_lock:
            draw = self._random.random()
        if draw < faults.drop:
            return "drop"
        if draw < faults.drop + faults.server_error:
            return "server_error"
        if draw < faults.drop + faults.server_error + faults.throttle:
            return "throttle"
        return "forward"

    def _plan_batch(self, operation: str, body: bytes, fraction: float) -> _BatchPlan | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        with self._random_lock:
            rng = self._random
            return _plan_batch(operation, payload, lambda: rng.random() < fraction)

    def _count_request(self, operation: str) -> None:
        with self._counters.lock:
            self._counters.requests += 1
            if operation:
                self._counters.by_operation[operation] += 1

    def _count_forwarded(self, operation: str) -> None:
        with self._counters.lock:
            self._counters.forwarded += 1
            if operation:
                self._counters.forwarded_by_operation[operation] += 1

    def _count(self, name: str) -> None:
        with self._counters.lock:
            setattr(self._counters, name, getattr(self._counters, name) + 1)

    def _count_unprocessed(self, plan: _BatchPlan) -> None:
        with self._counters.lock:
            if plan.operation == "BatchGetItem":
                self._counters.unprocessed_keys += plan.moved_count
            else:
                self._counters.unprocessed_items += plan.moved_count

    def _count_bytes(self, count: int) -> None:
        with self._counters.lock:
            self._counters.bytes_to_client += count

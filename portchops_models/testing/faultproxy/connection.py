"""One client connection of the proxy: its thread, fault injection and upstream forwarding."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import struct
import threading
import zlib
from typing import BinaryIO, Final, Protocol, cast

from .batches import BatchPlan, empty_batch_response, merge_unprocessed
from .faults import THROTTLE_BODIES, Faults, Outcome
from .http import (
    HOP_BY_HOP,
    BadRequest,
    Headers,
    Request,
    Response,
    head_bytes,
    header,
    html_error_response,
    json_dumps,
    json_ok,
    json_response,
    plain_response,
    read_request,
    server_error_response,
    set_header,
    strip_hop_by_hop,
    upstream_failure,
)
from .seen import Fault
from .stats import Counters

__all__ = ["ClientConnection", "Proxy"]

_log = logging.getLogger(__package__)  # the package's logger, "portchops_models.testing.faultproxy"

_BATCHES: Final = frozenset({"BatchGetItem", "BatchWriteItem"})

_STALE_CONNECTION_ERRORS: Final = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


class Proxy(Protocol):
    """What a client connection uses of its `FaultProxy` (the proxy imports this module,
    so the connection sees it through this protocol instead of importing it back)."""

    upstream: str
    upstream_timeout: float
    port: int
    _upstream_host: str
    _upstream_port: int
    _upstream_netloc: str
    _counters: Counters
    _stopping: threading.Event

    @property
    def faults(self) -> Faults: ...
    def _connection_closed(self, connection: ClientConnection) -> None: ...
    def _draw_delay(self, faults: Faults) -> float: ...
    def _take_html_error(self, faults: Faults) -> bool: ...
    def _draw_outcome(self, faults: Faults) -> Outcome: ...
    def _record(self, request: Request, outcome: Outcome | Fault) -> None: ...
    def _plan_batch(self, operation: str, body: bytes, fraction: float) -> BatchPlan | None: ...


class ClientConnection:
    """One client connection, served on its own thread."""

    def __init__(self, proxy: Proxy, sock: socket.socket, number: int) -> None:
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
                request = read_request(self.rfile, self._send_continue)
            except BadRequest as err:
                with contextlib.suppress(OSError):
                    self._send(plain_response(400, "Bad Request", str(err)), close=True)
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

    def _handle(self, request: Request) -> bool:
        """Serve one request; returns whether to keep the connection open."""
        proxy = self.proxy
        operation = request.operation
        proxy._counters.count_request(operation)
        faults = proxy.faults
        outcome: Outcome = "forward"
        plan: BatchPlan | None = None
        html_error = slow = False
        if faults.applies_to(operation):
            delay = proxy._draw_delay(faults)
            if delay > 0 and proxy._stopping.wait(delay):
                return False
            html_error = proxy._take_html_error(faults)
            if not html_error:
                outcome = proxy._draw_outcome(faults)
                slow = faults.trickles and outcome == "forward"
            if outcome == "forward" and faults.unprocessed > 0 and operation in _BATCHES:
                plan = proxy._plan_batch(operation, request.body, faults.unprocessed)
        if html_error:
            proxy._record(request, "html_error")
            proxy._counters.count("html_errors")
            return self._send(html_error_response(faults.html_error_status), request)
        proxy._record(
            request, "unprocessed" if plan is not None else "trickle" if slow else outcome
        )
        if outcome == "drop":
            proxy._counters.count("dropped")
            self._abort()
            return False
        if outcome == "hang":
            proxy._counters.count("hung")
            self._hang()
            return False
        if outcome == "throttle":
            proxy._counters.count("throttled")
            type_, message = THROTTLE_BODIES[faults.throttle_code]
            return self._send(json_response(400, "Bad Request", type_, message), request)
        if outcome == "server_error":
            proxy._counters.count("server_errors")
            return self._send(server_error_response(faults.server_error_status), request)
        if plan is not None:
            answer = self._forward_partial(request, plan)
            if slow:
                return self._send_slowly(answer, request, faults)
            return self._send(answer, request)
        upstream_response = self._forward(request, request.body, operation)
        if upstream_response is None:
            return self._send(upstream_failure(), request)
        if outcome == "lost_answer":
            proxy._counters.count("lost_answers")  # the engine has answered: the write has landed
            self._abort()
            return False
        if slow:
            return self._send_slowly(upstream_response, request, faults)
        return self._send(upstream_response, request)

    def _hang(self) -> None:
        """Send nothing until the client closes (or `interrupt` shuts the socket on stop)."""
        with contextlib.suppress(OSError):
            while self.sock.recv(65536):
                pass  # whatever else the client sends is read and ignored

    def _forward_partial(self, request: Request, plan: BatchPlan) -> Response:
        if plan.forward is None:
            response = empty_batch_response(plan)
            merge_unprocessed(plan, response)
            self.proxy._counters.count_unprocessed(plan)
            return json_ok(json_dumps(response))
        upstream = self._forward(request, json_dumps(plan.forward), plan.operation, identity=True)
        if upstream is None:
            return upstream_failure()
        if upstream.status != 200:
            return upstream  # the engine rejected the (partial) batch: pass its answer on
        body = upstream.body
        encoding = header(upstream.headers, "content-encoding")
        try:
            if encoding and encoding.lower() != "identity":
                body = zlib.decompress(body, wbits=47)  # gzip or zlib
            payload = json.loads(body)
        except (ValueError, zlib.error):
            payload = None
        if not isinstance(payload, dict) or not merge_unprocessed(plan, payload):
            self.proxy._counters.count("upstream_errors")
            return upstream_failure("the engine's batch response could not be parsed")
        self.proxy._counters.count_unprocessed(plan)
        new_body = json_dumps(payload)
        headers = [(k, v) for k, v in upstream.headers if k.lower() != "content-encoding"]
        set_header(headers, "Content-Length", str(len(new_body)))
        set_header(headers, "x-amz-crc32", str(zlib.crc32(new_body)))
        return Response(upstream.status, upstream.reason, headers, new_body)

    def _forward(
        self, request: Request, body: bytes, operation: str, *, identity: bool = False
    ) -> Response | None:
        """Send to the engine and read its answer; None (counted) if it fails."""
        proxy = self.proxy
        headers: Headers = []
        connection_tokens = {
            token.strip().lower() for token in (request.header("connection") or "").split(",")
        }
        has_host = has_length = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered in HOP_BY_HOP or lowered in connection_tokens:
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
                response = Response(
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
            proxy._counters.count_forwarded(operation)
            return strip_hop_by_hop(response, request.method)
        return None  # pragma: no cover - the loop always returns

    def _upstream_failed(self, err: Exception) -> None:
        if not self.proxy._stopping.is_set():
            _log.warning("fault proxy: upstream %s failed: %r", self.proxy.upstream, err)
        self.proxy._counters.count("upstream_errors")

    # -- writing -----------------------------------------------------------

    def _send_continue(self) -> None:
        self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(
        self, response: Response, request: Request | None = None, *, close: bool = False
    ) -> bool:
        """Write a whole response in one go; returns whether to keep the connection."""
        keep = not close and request is not None and request.keep_alive
        keep = keep and not self.proxy._stopping.is_set()
        head_only = request is not None and request.method == "HEAD"
        data = head_bytes(response, keep_alive=keep)
        body = b"" if head_only else response.body
        # Count first: once the client has the answer, the stats must already show it.
        self.proxy._counters.count_bytes(len(body))
        self.sock.sendall(data + body if body else data)
        return keep

    def _send_slowly(self, response: Response, request: Request, faults: Faults) -> bool:
        """Send `response` a byte at a time (its head, its body or both: `Faults.trickle_*`).

        Stops when the client goes away (a send fails) or the proxy stops; returns
        whether to keep the connection.
        """
        proxy = self.proxy
        proxy._counters.count("trickled")
        keep = request.keep_alive and not proxy._stopping.is_set()
        body = response.body
        if faults.trickle_body > 0 and len(body) < faults.trickle_body_length:
            body += b" " * (faults.trickle_body_length - len(body))  # JSON allows it
            headers = list(response.headers)
            set_header(headers, "Content-Length", str(len(body)))
            if header(headers, "x-amz-crc32") is not None:
                set_header(headers, "x-amz-crc32", str(zlib.crc32(body)))
            response = Response(response.status, response.reason, headers, body)
        proxy._counters.count_bytes(len(body))
        for part, interval in (
            (head_bytes(response, keep_alive=keep), faults.trickle_headers),
            (b"" if request.method == "HEAD" else body, faults.trickle_body),
        ):
            if interval <= 0:
                self.sock.sendall(part)
                continue
            for index in range(len(part)):
                self.sock.sendall(part[index : index + 1])
                if proxy._stopping.wait(interval):
                    return False
        return keep

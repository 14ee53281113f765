"""`HttpPool`: keep-alive ``http.client`` connections to one endpoint, for threads.

``http.client`` opens the connections (and wraps them in TLS); each exchange on
them is the layer's own: the request in one send (`http11.request_bytes`), the
answer's bytes taken as each ``recv`` returns them and assembled by the `Assembler`
the async pool uses too.

Measured against dynalite (CPU per GetItem, same encoder and decoder): the
standard library's ``http.client`` on a kept-alive connection about 250 µs,
urllib3's pool (what botocore uses) about 370 µs, httpx about 690 µs. urllib3's
extra cost buys nothing used here (no redirects, no retries, no proxies), so the
pool is a few lines over ``http.client``: idle connections are kept, most recent
first; one found closed by the server is dropped before use. The caller bounds
how many requests run at once (`Connection.call` holds one slot per connection),
so the pool never holds more than that many connections.

Under a deadline (`portchops_models.transport.deadline`) one exchange is bounded as a
whole: a new connection gets the time left (not the full ``connect_timeout``),
the request is sent and the answer read (status line, headers and body) by the
deadline, however slowly the peer sends (each ``recv``'s timeout cut to the time
left, `_receive`). The per-read ``read_timeout`` still bounds each read within that.

Failures are raised as botocore raises them from urllib3, so the retry policy,
lost-answer reconciliation and `errors.translate` see the same exceptions:
``EndpointConnectionError`` (refused, unresolvable), ``ConnectTimeoutError``,
``ReadTimeoutError`` (the read timeout or the deadline) and
``ConnectionClosedError`` (reset or closed mid-answer).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import time
from collections import deque
from urllib.parse import urlsplit

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from . import deadline, http11
from .assembler import Answer, Assembler
from .bounded import SLACK
from .codec import HttpRequest
from .signing import signing_host

__all__ = ["HttpAnswer", "HttpPool", "default_ssl"]

#: status, headers (names in lower case), body
HttpAnswer = tuple[int, dict[str, str], bytes]


class HttpPool:
    """Kept-alive HTTP/1.1 connections to one endpoint (``http`` or ``https``).

    Args:
        endpoint: the endpoint URL.
        maxsize: how many idle connections are kept.
        connect_timeout: seconds to open a connection (TLS handshake included).
        read_timeout: default seconds to wait for each read of an answer.
        ssl_context: for ``https`` (default: the system's trust store).
        keepalive: set ``SO_KEEPALIVE`` on new connections (botocore's ``tcp_keepalive``).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        maxsize: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: bool = True,
    ) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self.maxsize = maxsize
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._host = signing_host(endpoint)[0]  # the Host header: the one that is signed
        self._port = parts.port or (443 if self._https else 80)
        self._ssl = ssl_context if ssl_context is not None or not self._https else default_ssl()
        self._idle: deque[http.client.HTTPConnection] = deque()
        self._closed = False
        #: connections opened so far (for tests and benchmarks).
        self.opened = 0

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpAnswer:
        """Send `request` on a pooled connection and read the whole answer.

        Under the deadline in force, connecting, sending and reading all end by it.

        Args:
            timeout: seconds for each read of the answer (default: ``read_timeout``).
        """
        until = deadline.until()
        conn = self._checkout(until)
        try:
            sock = conn.sock
            wait = self.read_timeout if timeout is None else timeout
            if until is not None:
                left = until - time.monotonic()
                if left < wait:
                    if left <= 0:
                        raise TimeoutError("the call's deadline passed before the request was sent")
                    wait = left
            current = sock.gettimeout()
            if current is None or not wait <= current <= wait + SLACK:
                sock.settimeout(wait)  # else the socket has it already: no system call
                current = wait
            path = http11.target(request.url)
            sock.sendall(
                http11.request_bytes(
                    request.method, path, self._host, request.headers, request.body
                )
            )
            status, headers, body, will_close = _receive(sock, request.method, current, until)
        except TimeoutError as err:
            conn.close()
            raise ReadTimeoutError(endpoint_url=request.url, error=err) from err
        except (OSError, http.client.HTTPException, ValueError) as err:
            conn.close()
            raise ConnectionClosedError(endpoint_url=request.url, error=err) from err
        except BaseException:
            conn.close()
            raise
        if will_close or conn.sock is None:
            conn.close()
        else:
            self._checkin(conn)
        return status, headers, body

    def close(self) -> None:
        """Close the idle connections; connections in use close when they come back."""
        self._closed = True
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:  # taken by another thread meanwhile
                break

    def _checkout(self, until: float | None) -> http.client.HTTPConnection:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return self._connect(until)
            if conn.sock is not None and not _readable(conn.sock):
                return conn
            conn.close()  # the server closed it while it was idle (or sent junk)

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        if self._closed or len(self._idle) >= self.maxsize:
            conn.close()
        else:
            self._idle.append(conn)

    def _connect(self, until: float | None) -> http.client.HTTPConnection:
        """A new connection, opened within ``connect_timeout`` and by `until`."""
        timeout = self.connect_timeout
        if until is not None:
            timeout = min(timeout, until - time.monotonic())
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._hostname, self._port, timeout=timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._hostname, self._port, timeout=timeout)
        try:
            if timeout <= 0:
                raise TimeoutError("the call's deadline passed before connecting")
            conn.connect()
        except TimeoutError as err:
            conn.close()
            raise ConnectTimeoutError(endpoint_url=self.endpoint, error=err) from err
        except ssl.SSLError as err:
            conn.close()
            raise HTTPClientError(error=err) from err
        except OSError as err:  # refused, unreachable, name not resolved
            conn.close()
            raise EndpointConnectionError(endpoint_url=self.endpoint, error=err) from err
        if self.keepalive:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.opened += 1
        return conn


#: How much one ``recv`` asks for: a small answer in one call, a 1 MB page in few.
_RECV = 262144


def _receive(sock: socket.socket, method: str, timeout: float, until: float | None) -> Answer:
    """Read one answer from `sock`, its timeout (now `timeout`) bounding each ``recv``,
    and all of them together ending by `until` (at most `SLACK` after it): the
    timeout is cut to the time left once that is shorter, as `BoundedReader` does.

    Raises:
        TimeoutError: a ``recv`` timed out, or the deadline passed.
    """
    assembler = Assembler(method)
    recv = sock.recv
    while True:
        if until is not None:
            left = until - time.monotonic()
            if left < timeout - SLACK:
                if left <= 0:
                    raise TimeoutError("the call's deadline passed while its answer was read")
                sock.settimeout(left)
                timeout = left
        data = recv(_RECV)
        answer = assembler.feed(data) if data else assembler.finish()
        if answer is not None:
            return answer


def _readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read: the server closed it (or misbehaved)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def default_ssl() -> ssl.SSLContext:
    """botocore's certificate bundle (certifi's when installed), as botocore verifies."""
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))

"""`AsyncPool`: the async twin of `HttpPool`, on asyncio's own transports, per event loop.

Each exchange is a `Link`'s (`portchops_models.transport.link`): an asyncio protocol
on a kept-alive connection, the request written in one call and the answer parsed
by `http11` as the sync pool parses it. Measured against dynalite (CPU per GetItem
awaited one after another, same encoder and decoder): aiohttp, which this pool ran
on before, about 300 µs; a `Link` about 150; a bare asyncio-streams client about
100. No extra dependency: the async API needs only the standard library.

Connections belong to the loop they were opened on, so there is one set per
running loop, made on first use there: each ``asyncio.run`` and each test's loop
gets its own, and none is ever used from another loop. A loop's connections are
closed when it shuts down (``asyncio.run`` and ``loop.shutdown_asyncgens()`` close
them: they are held by an async generator of that loop), by `aclose` on that
loop, or by `close` from anywhere (then on their own loop). Idle connections are
reused most recent first; one the server closed while it was idle is dropped.

In front of them, each loop's `FairGate` hands out ``limit`` slots in the order
the calls began (`portchops_models.transport.gate`): a request holds its slot from
before it takes a connection until the connection is back, so a loop never has
more than ``limit`` connections, and nobody barges ahead of an older call.

Under a deadline (`portchops_models.transport.deadline`) one exchange is bounded as a
whole: the wait at the gate and connecting end by it, and so does the answer
(status line, headers and body together), each wait for bytes also bounded by
the per-read timeout.

Failures are raised as `HttpPool` raises them (botocore's exception classes), so
retry classification and error translation are the same on both sides.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)

from . import deadline, http11
from .codec import HttpRequest
from .gate import FairGate
from .link import Link
from .pool import HttpAnswer, default_ssl
from .signing import signing_host

__all__ = ["AsyncPool"]


@dataclass
class _LoopPool:
    """One event loop's connections: its slots, its idle links, what closes them."""

    #: this loop's connection slots, handed out oldest call first.
    gate: FairGate
    #: an async generator of the loop whose ``finally`` closes the idle links, so that
    #: the loop's ``shutdown_asyncgens()`` (``asyncio.run`` calls it) does.
    holder: AsyncIterator[None] | None = None
    idle: list[Link] = field(default_factory=list)
    closed: bool = False

    def shut(self) -> None:
        """Close the idle links; links in use close when they come back."""
        self.closed = True
        idle, self.idle = self.idle, []
        for link in idle:
            link.close()


class AsyncPool:
    """Kept-alive HTTP/1.1 connections to one endpoint for coroutines, per event loop.

    Args:
        endpoint: the endpoint URL (``http`` or ``https``).
        limit: connections per loop (``max_pool_connections``).
        connect_timeout: seconds to open a connection, TLS included (cut to a
            deadline's time left).
        read_timeout: default seconds the peer may stay silent while an answer comes
            (a deadline bounds the whole answer).
        ssl_context: for ``https`` (default: botocore's certificate bundle).
        keepalive: set ``SO_KEEPALIVE`` on new connections.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: bool = True,
    ) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._host = signing_host(endpoint)[0]  # the Host header: the one that is signed
        self._ssl = ssl_context
        self._lock = threading.Lock()
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._closing: set[asyncio.Task[None]] = set()
        #: connections opened so far, on every loop (for tests and benchmarks).
        self.opened = 0

    async def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpAnswer:
        """Send `request` on one of this loop's connections and read the whole answer.

        Under the deadline in force, waiting for a connection and connecting end by
        it, and reading the answer (headers and body) as a whole too.

        Args:
            timeout: seconds the peer may stay silent while the answer comes
                (default: ``read_timeout``).

        Raises:
            ConnectTimeoutError: no connection within ``connect_timeout`` or by the deadline.
            ReadTimeoutError: the peer was silent for the read timeout, or the deadline passed.
            ConnectionClosedError: closed or reset before the whole answer came.
        """
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool.closed:
            pool = await self._open(loop)
        window = deadline.window()
        until = None if window is None else window[0]
        gate = pool.gate
        waited = not gate.take()
        if waited:
            rank = time.monotonic() if window is None else window[1]
            try:
                await gate.acquire(rank=rank, until=until)
            except TimeoutError as err:
                raise ConnectTimeoutError(endpoint_url=request.url, error=err) from err
        try:
            link = self._idle_link(pool)
            if link is None:
                link = await self._connect(loop, until)
                waited = True
            if waited and until is not None and until <= time.monotonic():  # nothing sent late
                pool.idle.append(link)
                raise ConnectTimeoutError(
                    endpoint_url=request.url, error="the deadline passed before the request went"
                )
            data = http11.request_bytes(
                request.method,
                http11.target(request.url),
                self._host,
                request.headers,
                request.body,
            )
            status, headers, body, close = await link.exchange(
                data,
                method=request.method,
                url=request.url,
                per_read=self.read_timeout if timeout is None else timeout,
                until=until,
            )
            if close or pool.closed:
                link.close()
            else:
                pool.idle.append(link)
            return status, headers, body
        finally:
            gate.release()

    def _idle_link(self, pool: _LoopPool) -> Link | None:
        """The most recently used idle link still open, dropping those the server closed."""
        idle = pool.idle
        while idle:
            link = idle.pop()
            if link.usable:
                return link
            link.abort()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, until: float | None) -> Link:
        """A new link, opened (TLS included) within ``connect_timeout`` and by `until`."""
        timeout = self.connect_timeout
        if until is not None:
            timeout = min(timeout, until - time.monotonic())
        if timeout <= 0:
            raise ConnectTimeoutError(
                endpoint_url=self.endpoint, error="the call's deadline passed before connecting"
            )
        context = self._ssl_context()
        try:
            async with asyncio.timeout(timeout):
                _, link = await loop.create_connection(
                    Link,
                    self._hostname,
                    self._port,
                    ssl=context,
                    server_hostname=self._hostname if context is not None else None,
                )
        except TimeoutError as err:
            raise ConnectTimeoutError(endpoint_url=self.endpoint, error=err) from err
        except (ssl.SSLError, ssl.CertificateError) as err:
            raise HTTPClientError(error=err) from err
        except OSError as err:  # refused, unreachable, name not resolved
            raise EndpointConnectionError(endpoint_url=self.endpoint, error=err) from err
        if self.keepalive and link.transport is not None:
            sock = link.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.opened += 1
        return link

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self._https:
            return None
        if self._ssl is None:
            self._ssl = default_ssl()
        return self._ssl

    async def aclose(self) -> None:
        """Close the running loop's connections (others close on their own loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.pop(loop, None)
        if pool is not None and pool.holder is not None:
            await pool.holder.aclose()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close every loop's connections, each on its own loop; callable from any thread."""
        with self._lock:
            pools = list(self._pools.items())
            self._pools.clear()
        for loop, pool in pools:
            if loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(self._close_on_loop, loop, pool)
            except RuntimeError:  # closed meanwhile
                continue

    def gate(self) -> FairGate | None:
        """The running loop's gate, if its connections are open (for tests and benchmarks)."""
        pool = self._pools.get(asyncio.get_running_loop())
        return None if pool is None else pool.gate

    async def _hold_open(
        self, loop: asyncio.AbstractEventLoop, pool: _LoopPool
    ) -> AsyncIterator[None]:
        """Yield once, then (on ``aclose()``, or the loop's shutdown) forget and close `pool`."""
        try:
            yield
        finally:
            with self._lock:
                if self._pools.get(loop) is pool:
                    del self._pools[loop]
            pool.shut()

    def _close_on_loop(self, loop: asyncio.AbstractEventLoop, pool: _LoopPool) -> None:
        assert pool.holder is not None
        task = loop.create_task(pool.holder.aclose())  # type: ignore[attr-defined]
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _LoopPool:
        pool = _LoopPool(FairGate(self.limit))
        pool.holder = self._hold_open(loop, pool)
        await anext(pool.holder)  # runs to the yield now: the loop now tracks the generator
        with self._lock:
            for stale in [other for other in self._pools if other.is_closed()]:
                del self._pools[stale]  # loops closed without shutting down their generators
            self._pools[loop] = pool
        return pool

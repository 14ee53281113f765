"""`Link`: one kept-alive HTTP/1.1 connection for coroutines, as an asyncio protocol.

Why not aiohttp (what `AsyncPool` ran on before): for each request it made a task,
three loop timers, request and response objects and a multidict of headers, about
300 µs of CPU a GetItem against dynalite where a bare asyncio client pays about
100. A `Link` does the least an honest exchange needs: the whole request written
in one call (`http11.request_bytes`), the answer's bytes handed as they arrive to an
`Assembler` (the sync pool's too), one future and one loop timer a request.

The timer bounds the answer two ways at once: every wait for more bytes by the
per-read timeout, and the answer as a whole by the deadline (status line,
headers and body together, however slowly a peer sends them). It is set once,
at the earlier of the two, and when it fires early (bytes came meanwhile, or the
loop ran it ahead of its time) it is set again for what is left.

A failure leaves the connection out of step, so it is dropped (aborted): a reset
or a close mid-answer, bytes the answer does not account for, an answer that
does not parse, a timeout, or the awaiting call cancelled. Failures are raised as
`HttpPool` raises them (botocore's exception classes).
"""

from __future__ import annotations

import asyncio
import http.client
import time

from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from .assembler import Answer, Assembler

__all__ = ["Link"]


class Link(asyncio.Protocol):
    """One connection: the answer awaited on it, and the bytes received for it.

    Made by ``loop.create_connection(lambda: Link(), ...)``; `exchange` sends one
    request and returns its answer, one request at a time.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: closed by either side, or out of step: never to be used again.
        self.closed = False
        self._assembler = Assembler("POST")
        self._waiter: asyncio.Future[Answer] | None = None
        self._url = ""
        self._per_read = 0.0
        self._until: float | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        """Whether a request may go out on it now (open, idle, in step)."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    async def exchange(
        self, data: bytes, *, method: str, url: str, per_read: float, until: float | None
    ) -> Answer:
        """Write `data` (a whole request) and wait for its whole answer.

        Args:
            method: the request's method (a ``HEAD`` answer has no body).
            url: named in errors.
            per_read: seconds the peer may stay silent while the answer comes.
            until: the `time.monotonic` instant the whole answer must be in by.

        Raises:
            ReadTimeoutError: silent for `per_read`, or `until` passed.
            ConnectionClosedError: closed or reset before the answer was in, or an
                answer that does not parse.
        """
        transport = self.transport
        assert transport is not None, "exchange before the connection was made"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter = waiter
        self._assembler = Assembler(method)
        self._url, self._per_read, self._until = url, per_read, until
        now = self._last = time.monotonic()
        due = now + per_read if until is None or until > now + per_read else until
        self._timer = loop.call_later(due - now, self._expire)
        transport.write(data)
        try:
            return await waiter
        except asyncio.CancelledError:  # the answer will not be read: out of step
            self.abort()
            raise
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def abort(self) -> None:
        """Drop the connection at once (unsent bytes discarded)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close the connection once what is written has gone out."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (asyncio calls this once connected)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Gather the answer's bytes; complete the answer once they are all in."""
        if self._waiter is None:  # bytes nobody asked for: the stream is out of step
            self.abort()
            return
        self._last = time.monotonic()
        self._settle(data)

    def eof_received(self) -> bool:
        """The peer closed its side: a read-to-close body ends here, any other is cut short."""
        self.closed = True
        if self._waiter is not None:
            self._settle(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed or reset: an answer still awaited fails."""
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._settle(None, exc)

    # the answer

    def _settle(self, data: bytes | None, lost: Exception | None = None) -> None:
        """Feed `data` to the answer (``None``: the peer closed); settle the waiter once
        the answer is whole, or fails."""
        assembler = self._assembler
        try:
            answer = assembler.feed(data) if data is not None else assembler.finish()
        except (http.client.HTTPException, ValueError) as err:
            self._fail(ConnectionClosedError(endpoint_url=self._url, error=lost or err))
            return
        if answer is not None:
            waiter = self._waiter
            self._waiter = None
            if answer[3]:
                self.closed = True
            assert waiter is not None
            waiter.set_result(answer)

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        now = time.monotonic()
        until = self._until
        due = self._last + self._per_read
        if until is not None and until < due:
            due = until
        if now < due:  # bytes came meanwhile, or the loop ran the timer early
            self._timer = asyncio.get_running_loop().call_later(due - now, self._expire)
            return
        if until is not None and now >= until:
            why = "the call's deadline passed while its answer was read"
        else:
            why = f"no bytes of the answer for {self._per_read:g} s"
        self._fail(ReadTimeoutError(endpoint_url=self._url, error=why))

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        self._waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

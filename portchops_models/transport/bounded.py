"""Reading an HTTP answer under the call's deadline: bounded as a whole, not per socket read.

A socket timeout bounds each ``recv``: a peer that sends its answer one byte at
a time restarts it with every byte, so an answer whose headers (or body) trickle
in can outlast any deadline. `BoundedResponse` is ``http.client``'s response
reading through `BoundedReader`, which cuts the socket's timeout to the time left
before the deadline in force (`portchops_models.transport.deadline`) as that time runs out:
the status line, the headers and the body together end by the deadline (at most
`SLACK` after it), on a slow peer as on a silent one.

On the happy path it costs a clock read per socket read and no system call: the
timeout is changed only once it is more than `SLACK` longer than the time left
(one ``settimeout`` per step of `SLACK`, only on an answer that is slow anyway).
Without a deadline in force, `BoundedResponse` reads exactly as ``http.client``
does. botocore's own request path (`portchops_models.transport.fallback`) reads
through `BoundedResponse`; `HttpPool` bounds its own ``recv`` calls the same way
(`portchops_models.transport.pool`), with the same `SLACK`.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from typing import cast

from . import deadline

__all__ = ["SLACK", "BoundedReader", "BoundedResponse"]

#: How far past the deadline a read may end: the socket timeout is cut only once it is
#: this much longer than the time left (so a fast answer never pays a ``settimeout``).
SLACK = 0.05


class BoundedReader(io.RawIOBase):
    """The reads of one answer from `sock`, each one's timeout cut to the time left.

    Args:
        sock: the connection's socket (plain or TLS); its timeout is the per-read one.
        until: the `time.monotonic` instant every read must end by.
    """

    def __init__(self, sock: socket.socket, until: float) -> None:
        super().__init__()
        # socket's own reader: it keeps the socket open while the answer is read, even
        # once the connection is closed (http.client closes it as soon as it has read the
        # headers of a "Connection: close" answer, then reads the body).
        self._raw = sock.makefile("rb", buffering=0)
        self._sock = sock
        self._until = until
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        """One socket read into `buffer`, ending by the deadline.

        Raises:
            TimeoutError: the deadline has passed (or passes during the read).
        """
        left = self._until - time.monotonic()
        timeout = self._timeout
        if timeout is None or left < timeout - SLACK:
            if left <= 0:
                raise TimeoutError("the call's deadline passed while its answer was read")
            self._sock.settimeout(left)
            self._timeout = left
        return self._raw.readinto(buffer)

    def close(self) -> None:
        """Release the socket (closed for real once its connection is closed too)."""
        if not self.closed:
            self._raw.close()
        super().close()

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        """What ``http.client.HTTPResponse`` calls on the socket it is given: a buffered self."""
        return io.BufferedReader(self)


class BoundedResponse(http.client.HTTPResponse):
    """``http.client``'s response, its reads bounded as a whole by the deadline in force.

    A connection uses it as its ``response_class``. The deadline is read once, when
    the answer starts; without one the answer is read as ``http.client`` reads it.
    """

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        until = deadline.until()
        source = sock if until is None else cast(socket.socket, BoundedReader(sock, until))
        super().__init__(source, debuglevel, method, url)

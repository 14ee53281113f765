"""`Assembler`: one HTTP/1.1 answer from its bytes as they arrive, whatever the pieces.

Both pools read answers this way: the sync one (`HttpPool`) from each ``recv`` of
its socket, the async one (`Link`) from each ``data_received``. Bytes are gathered
until the head is in (`http11.parse_head`, `http11.framing`), then until the body is:
``Content-Length``, chunked (`http11.read_chunked`, tried only once the bytes end a
line) or read to the close (`finish`). ``100 Continue`` heads are skipped, LF-only
lines accepted. Pure: no sockets, no clock.

Example:
    >>> answer = Assembler("POST")
    >>> answer.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\no") is None
    True
    >>> answer.feed(b"k")
    (200, {'content-length': '2'}, b'ok', False)
"""

from __future__ import annotations

import http.client
import io

from . import http11

__all__ = ["MAX_HEAD", "Answer", "Assembler"]

#: status, headers (names in lower case), body, whether the connection must close after it
Answer = tuple[int, dict[str, str], bytes, bool]

#: The most bytes an answer's head may take (as `http11`: 100 lines of 64 KiB).
MAX_HEAD = http11.MAX_LINE * (http11.MAX_HEADERS + 1)


class Assembler:
    """The answer to one request, assembled from the pieces `feed` is given.

    Args:
        method: the request's method (the answer to a ``HEAD`` has no body).
    """

    __slots__ = ("_buffer", "_eof", "_head", "_method", "_pos")

    def __init__(self, method: str) -> None:
        self._method = method
        self._buffer: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._head: tuple[int, dict[str, str], bool, int] | None = None

    def feed(self, data: bytes) -> Answer | None:
        """Add `data`; the whole answer once it is in, else ``None``.

        An answer followed by more bytes than it accounts for says the connection must
        close (its fourth item): the stream is out of step.

        Raises:
            http.client.HTTPException: the bytes are no HTTP/1.x answer (a bad status
                line, a line over 64 KiB, too many headers).
            ValueError: a malformed length or chunk.
        """
        buffer = self._buffer
        if not buffer:
            self._buffer = data
        elif isinstance(buffer, bytearray):
            buffer += data
        else:
            self._buffer = bytearray(buffer) + data
        return self._answer()

    def finish(self) -> Answer:
        """The peer closed: the answer if it is whole (a body read to the close).

        Raises:
            http.client.RemoteDisconnected: closed before a byte of the answer.
            http.client.IncompleteRead: closed in the middle of it.
        """
        self._eof = True
        answer = self._answer()
        if answer is not None:
            return answer
        if not self._buffer:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        raise http.client.IncompleteRead(bytes(self._buffer[self._pos :]))

    def _answer(self) -> Answer | None:
        """The whole answer if its bytes are in, else ``None`` (what is parsed is kept)."""
        buffer, pos = self._buffer, self._pos
        while self._head is None:
            end, size = buffer.find(b"\r\n\r\n", pos), 4
            bare = buffer.find(b"\n\n", pos, len(buffer) if end < 0 else end)  # LF-only lines
            if bare >= 0:
                end, size = bare, 2
            if end < 0:
                if len(buffer) - pos > MAX_HEAD:
                    raise http.client.LineTooLong("header line")
                self._pos = pos
                return None
            minor, status, headers = http11.parse_head(bytes(buffer[pos : end + size]))
            pos = end + size
            if status == 100:
                continue
            close, length = http11.framing(minor, status, headers, self._method)
            self._head = (status, headers, close, length)
        self._pos = pos
        status, headers, close, length = self._head
        if length >= 0:
            if len(buffer) - pos < length:
                return None
            body = bytes(memoryview(buffer)[pos : pos + length])
            pos += length
        elif length == http11.CHUNKED:
            if not self._eof and not buffer.endswith(b"\n"):  # a chunked body ends in a line
                return None
            reader = io.BytesIO(memoryview(buffer)[pos:])
            try:
                body = http11.read_chunked(reader)
            except http.client.IncompleteRead:
                if self._eof:
                    raise
                return None
            pos += reader.tell()
        else:  # read to close
            if not self._eof:
                return None
            body, pos, close = bytes(memoryview(buffer)[pos:]), len(buffer), True
        return status, headers, body, close or len(buffer) > pos

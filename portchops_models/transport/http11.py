"""One HTTP/1.1 exchange on a kept-alive socket: the request in one send, the answer read by hand.

``http.client`` sends a request's head and body in two ``send`` calls and parses an
answer's headers with the ``email`` package (about 25 µs an answer, where splitting
the lines costs about 4). Both pools keep ``http.client`` (sync) or asyncio (async)
for what they do well, connecting and TLS, and make the exchange themselves:
`request_bytes` builds the whole request, sent in one piece; an answer's head is split
by `parse_head`, `framing` says how its body ends, `read_chunked` reads a chunked one
(`portchops_models.transport.assembler` puts these together as the bytes arrive).

Failures are ``http.client``'s own exceptions, so callers map them as before: an
empty answer is ``RemoteDisconnected``, a malformed status line ``BadStatusLine``, a
line over 64 KiB ``LineTooLong``, a body cut short ``IncompleteRead``.
"""

from __future__ import annotations

import functools
import http.client
import io
from urllib.parse import urlsplit

__all__ = [
    "CHUNKED",
    "MAX_HEADERS",
    "MAX_LINE",
    "TO_CLOSE",
    "framing",
    "parse_head",
    "read_chunked",
    "request_bytes",
    "target",
]

#: As ``http.client``: the longest line, and the most headers, an answer may have.
MAX_LINE = 65536
MAX_HEADERS = 100
_NO_BODY = frozenset({204, 304})


def request_bytes(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The whole request, head and body: ``Host`` (the signed one), the caller's
    headers, ``Content-Length`` and ``Accept-Encoding: identity`` unless given.

    Example:
        >>> request_bytes("POST", "/", "localhost:8000", {"X-A": "1"}, b"{}").split(b"\\r\\n")
        [b'POST / HTTP/1.1', b'Host: localhost:8000', b'X-A: 1', b'Content-Length: 2', \
b'Accept-Encoding: identity', b'', b'{}']
    """
    lines = [f"{method} {path} HTTP/1.1"]
    given = {name.lower() for name in headers}
    if "host" not in given:
        lines.append(f"Host: {host}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if "content-length" not in given:
        lines.append(f"Content-Length: {len(body)}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


@functools.lru_cache(maxsize=64)
def target(url: str) -> str:
    """The request target (path) for `url`: ``/`` for an endpoint without a path.

    Example:
        >>> target("http://localhost:8000"), target("https://example.com/a/b")
        ('/', '/a/b')
    """
    return urlsplit(url).path or "/"


def _line(fp: io.BufferedIOBase) -> bytes:
    line = fp.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _exactly(fp: io.BufferedIOBase, size: int) -> bytes:
    data = fp.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


#: `framing`'s body lengths that are not a byte count.
CHUNKED = -1
TO_CLOSE = -2


def parse_head(data: bytes) -> tuple[int, int, dict[str, str]]:
    """(HTTP minor version, status, headers) of one answer's head: its bytes up to the
    blank line. Header names in lower case, the last of a repeated header wins, a
    folded line continues the header before it.

    Example:
        >>> parse_head(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nX-A:  b \\r\\n\\r\\n")
        (1, 200, {'content-length': '2', 'x-a': 'b'})

    Raises:
        http.client.RemoteDisconnected: `data` is empty.
        http.client.BadStatusLine: the first line is not an HTTP/1.x status line.
    """
    if not data:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    text = data.decode("iso-8859-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if len(lines) > MAX_HEADERS + 2:
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
    if len(data) > MAX_LINE and any(len(line) > MAX_LINE for line in lines):
        raise http.client.LineTooLong("header line")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise http.client.BadStatusLine(repr(lines[0]))
    found: dict[str, str] = {}
    last = ""
    for line in lines[1:]:
        if not line:
            break
        if line[0] in " \t":
            if last:
                found[last] = f"{found[last]} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip().lower()
            found[last] = value.strip()
    return (0 if version == "HTTP/1.0" else 1), int(code), found


def framing(minor: int, status: int, headers: dict[str, str], method: str) -> tuple[bool, int]:
    """How the body after a (final) head ends: (whether the connection must close after
    it, its length in bytes, or `CHUNKED`, or `TO_CLOSE`: read until the peer closes)."""
    connection = headers.get("connection", "").lower()
    if minor == 1:
        close = "close" in connection
    else:
        close = "keep-alive" not in connection and "keep-alive" not in headers
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        return close, 0
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return close, CHUNKED
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return close, int(length)
    return True, TO_CLOSE


def read_chunked(fp: io.BufferedIOBase) -> bytes:
    """A chunked body from `fp`, trailers skipped.

    Raises:
        http.client.IncompleteRead: `fp` ended first (or a chunk size is not hex).
    """
    parts: list[bytes] = []
    while True:
        line = _line(fp)
        try:
            if not line.endswith(b"\n"):  # cut short: a partial size would be misread
                raise ValueError(line)
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            while True:  # trailers, up to the blank line
                line = _line(fp)
                if line in (b"\r\n", b"\n"):
                    return b"".join(parts)
                if not line or not line.endswith(b"\n"):
                    raise http.client.IncompleteRead(b"".join(parts))
        parts.append(_exactly(fp, size))
        _exactly(fp, 2)  # the chunk's CRLF

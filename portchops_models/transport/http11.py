"""One HTTP/1.1 exchange on a kept-alive socket: the request in one send, the answer read by hand.

``http.client`` sends a request's head and body in two ``send`` calls and parses an
answer's headers with the ``email`` package (about 25 µs an answer, where splitting
the lines costs about 4). `HttpPool` keeps ``http.client`` for what it does well
(connecting, TLS) and does the exchange itself: `request_bytes` builds the whole
request, sent with one ``sendall``; `read_answer` reads the status line, the headers
and a ``Content-Length``, chunked or read-to-close body from a buffered reader of the
socket (under a deadline, `BoundedReader`'s, so the answer is still bounded as a whole).

Failures are ``http.client``'s own exceptions, so callers map them as before: an
empty answer is ``RemoteDisconnected``, a malformed status line ``BadStatusLine``, a
line over 64 KiB ``LineTooLong``, a body cut short ``IncompleteRead``.
"""

from __future__ import annotations

import http.client
import io

__all__ = ["MAX_HEADERS", "MAX_LINE", "read_answer", "request_bytes"]

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


def _line(fp: io.BufferedIOBase) -> bytes:
    line = fp.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _status(fp: io.BufferedIOBase) -> tuple[int, int]:
    """(HTTP minor version, status) of the status line."""
    line = _line(fp)
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    version, _, rest = line.decode("iso-8859-1").partition(" ")
    code = rest.split(" ", 1)[0].strip()
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(repr(line))
    return (0 if version in ("HTTP/1.0",) else 1), int(code)


def _headers(fp: io.BufferedIOBase) -> dict[str, str]:
    """The header lines up to the blank one, names in lower case (the last of a
    repeated header wins); a folded line continues the header before it."""
    found: dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        line = _line(fp)
        if line in (b"\r\n", b"\n", b""):
            return found
        text = line.decode("iso-8859-1")
        if text[:1] in (" ", "\t") and last:
            found[last] = f"{found[last]} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if sep:
            last = name.strip().lower()
            found[last] = value.strip()
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _exactly(fp: io.BufferedIOBase, size: int) -> bytes:
    data = fp.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _chunked(fp: io.BufferedIOBase) -> bytes:
    parts: list[bytes] = []
    while True:
        line = _line(fp)
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            while _line(fp) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(_exactly(fp, size))
        _exactly(fp, 2)  # the chunk's CRLF


def read_answer(fp: io.BufferedIOBase, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """Read one answer from `fp`: (status, headers in lower case, body, whether the
    connection must close after it). ``100 Continue`` answers are skipped."""
    while True:
        minor, status = _status(fp)
        headers = _headers(fp)
        if status != 100:
            break
    connection = headers.get("connection", "").lower()
    if minor == 1:
        close = "close" in connection
    else:
        close = "keep-alive" not in connection and "keep-alive" not in headers
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        return status, headers, b"", close
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, _chunked(fp), close
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return status, headers, _exactly(fp, int(length)), close
    return status, headers, fp.read(), True  # no length: the body ends with the connection

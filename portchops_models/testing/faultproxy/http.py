"""Raw HTTP/1.1 for the proxy: reading requests (chunked too), headers, building answers."""

from __future__ import annotations

import email.utils
import http.client
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final, TypeAlias

__all__ = [
    "HOP_BY_HOP",
    "BadRequest",
    "Headers",
    "Request",
    "Response",
    "header",
    "head_bytes",
    "html_error_response",
    "json_dumps",
    "json_ok",
    "json_response",
    "plain_response",
    "read_request",
    "server_error_response",
    "set_header",
    "strip_hop_by_hop",
    "upstream_failure",
]

_JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 200
HOP_BY_HOP: Final = frozenset(
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

Headers: TypeAlias = list[tuple[str, str]]


class BadRequest(Exception):
    """The client sent something that is not an HTTP/1.x request."""


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: Headers
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
class Response:
    status: int
    reason: str
    headers: Headers
    body: bytes


def read_request(rfile: BinaryIO, send_continue: Callable[[], None]) -> Request | None:
    """Read one request; None on a clean end of stream."""
    line = rfile.readline(_MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112: ignore empty lines before a request
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise BadRequest("request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    headers: Headers = []
    while True:
        raw = rfile.readline(_MAX_LINE + 1)
        if not raw:
            return None
        if raw in (b"\r\n", b"\n"):
            break
        if len(raw) > _MAX_LINE or len(headers) >= _MAX_HEADERS:
            raise BadRequest("headers too large")
        if raw[:1] in (b" ", b"\t"):
            raise BadRequest("obsolete header folding")
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest("malformed header")
        headers.append((name, value.strip()))
    request = Request(method, target, headers, b"", keep_alive=True)
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
            raise BadRequest("bad Content-Length") from err
        if length < 0:
            raise BadRequest("bad Content-Length")
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
            raise BadRequest("bad chunk size") from err
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


def json_dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _error_body(type_: str, message: str) -> bytes:
    return json_dumps({"__type": type_, "message": message})


def set_header(headers: Headers, name: str, value: str) -> None:
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


def header(headers: Headers, name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def strip_hop_by_hop(response: Response, method: str) -> Response:
    """Drop the engine's connection-level headers; the body's framing is ours."""
    connection_tokens = {
        token.strip().lower() for token in (header(response.headers, "connection") or "").split(",")
    }
    no_body = method == "HEAD" or response.status in (204, 304) or response.status < 200
    headers: Headers = []
    for name, value in response.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in connection_tokens:
            continue
        if lowered == "content-length" and not no_body:
            value = str(len(response.body))
        headers.append((name, value))
    if not no_body and header(headers, "content-length") is None:
        headers.append(("Content-Length", str(len(response.body))))
    response.headers = headers
    return response


def _answer_headers(body: bytes) -> Headers:
    return [
        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
        ("x-amz-crc32", str(zlib.crc32(body))),
        ("Content-Type", _JSON_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Date", email.utils.formatdate(usegmt=True)),
    ]


def json_response(status: int, reason: str, type_: str, message: str) -> Response:
    body = _error_body(type_, message)
    return Response(status, reason, _answer_headers(body), body)


def json_ok(body: bytes) -> Response:
    return Response(200, "OK", _answer_headers(body), body)


def server_error_response(status: int) -> Response:
    """The 500 ``InternalFailure`` or 503 ``ServiceUnavailable`` DynamoDB answers."""
    if status == 503:
        return json_response(
            503,
            "Service Unavailable",
            "com.amazon.coral.service#ServiceUnavailable",
            "The service is currently unavailable or busy.",
        )
    return json_response(
        500,
        "Internal Server Error",
        "com.amazon.coral.service#InternalFailure",
        "The server encountered an internal error trying to fulfill the request.",
    )


def html_error_response(status: int) -> Response:
    """A load balancer's or sidecar's error page: HTML, no request id, no checksum."""
    reason = http.client.responses.get(status, "Error")
    body = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>fault proxy</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode("ascii")
    headers = [
        ("Content-Type", "text/html"),
        ("Content-Length", str(len(body))),
        ("Date", email.utils.formatdate(usegmt=True)),
    ]
    return Response(status, reason, headers, body)


def head_bytes(response: Response, *, keep_alive: bool) -> bytes:
    """The status line and headers of `response`, ``Connection: close`` unless `keep_alive`."""
    lines = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def upstream_failure(message: str = "the engine could not be reached") -> Response:
    return json_response(
        502, "Bad Gateway", "com.amazon.coral.service#InternalFailure", f"fault proxy: {message}"
    )


def plain_response(status: int, reason: str, message: str) -> Response:
    body = message.encode("utf-8", "replace")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return Response(status, reason, headers, body)

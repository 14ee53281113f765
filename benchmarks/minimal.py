"""The lower bound: a minimal keep-alive DynamoDB client, sync and async.

Per call it does only what any DynamoDB client must: one ``json.dumps`` of the
payload, a SigV4 signature with a cached signing key (`Signer`: the same
algorithm as botocore's ``SigV4Auth``, the derived key computed once per day, region
and service, as the layer's own signer does), one HTTP/1.1 exchange on a pooled
keep-alive connection, one ``json.loads`` of the answer, and one plain dict per item
(``{"userId": "u-1", "score": "50", ...}``: each attribute's value as DynamoDB
sent it, no types, no validation). No hooks, no shape walk, no retries unless a
contender adds its own loop.

* `MinimalClient`: kept-alive sockets, one per thread at a time, for thread pools;
* `AsyncMinimalClient`: ``asyncio`` streams, for ``asyncio.gather``.

Both share `Signer` (the request, in one piece), `_read_head` (the answer's status,
keep-alive and length, its head split by hand) and `decode` (answer to dict).
Any answer but 200 raises `MinimalError` with DynamoDB's error code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

REGION = "us-east-1"
TARGET_PREFIX = "DynamoDB_20120810."
SERVICE = "dynamodb"
SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"
CONTENT_TYPE = "application/x-amz-json-1.0"
THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)


class MinimalError(Exception):
    """A non-200 answer: ``status`` and DynamoDB's ``code`` (e.g. ``ThrottlingException``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        """Throttling or a 5xx: worth another attempt."""
        return self.status >= 500 or self.code in THROTTLING


class Signer:
    """The request of one call: JSON body and SigV4-signed headers.

    Its own small SigV4 (``hmac``/``hashlib``), not the layer's and not botocore's
    ``SigV4Auth``: the floor must not pay for work the layer does not do (botocore
    rebuilds an ``AWSRequest`` and derives the signing key on every request, about
    110 µs), and must not borrow the layer's code either. The signing key is derived
    once per (date, region, service) and kept; tests/test_benchmarks.py checks the
    ``Authorization`` header against botocore's for the same request and time.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = REGION,
        access_key: str = "x",
        secret_key: str = "x",
    ) -> None:
        self.url = endpoint_url.rstrip("/") + "/"
        self.netloc = urlsplit(endpoint_url).netloc
        self._host = _signed_host(endpoint_url)
        self._region = region
        self._access_key = access_key
        self._secret = secret_key
        self._key_scope = ""
        self._key = b""

    def _signing_key(self, date: str) -> bytes:
        if date != self._key_scope:  # a new day: derive once, keep it
            key = hmac.new(f"AWS4{self._secret}".encode(), date.encode(), hashlib.sha256).digest()
            for part in (self._region, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key, self._key_scope = key, date
        return self._key

    def authorization(self, target: str, amz_date: str, body: bytes) -> str:
        """The ``Authorization`` header for a POST of ``body`` signed at ``amz_date``."""
        canonical = (
            f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{self._host}\n"
            f"x-amz-date:{amz_date}\nx-amz-target:{target}\n\n{SIGNED_HEADERS}\n"
            f"{hashlib.sha256(body).hexdigest()}"
        )
        date = amz_date[:8]
        scope = f"{date}/{self._region}/{SERVICE}/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
        signature = hmac.new(self._signing_key(date), to_sign.encode(), hashlib.sha256)
        return (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
            f"SignedHeaders={SIGNED_HEADERS}, Signature={signature.hexdigest()}"
        )

    def sign(
        self, operation: str, payload: dict[str, Any], *, amz_date: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of one call; ``amz_date`` (``%Y%m%dT%H%M%SZ``) defaults to now."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        when = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = TARGET_PREFIX + operation
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": target,
            "X-Amz-Date": when,
            "Authorization": self.authorization(target, when, body),
            "Content-Length": str(len(body)),
        }
        return body, headers

    def message(self, operation: str, payload: dict[str, Any]) -> bytes:
        """The whole HTTP/1.1 request of one call, head and body, to send in one piece."""
        body, headers = self.sign(operation, payload)
        head = f"POST / HTTP/1.1\r\nHost: {self.netloc}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        return head.encode("latin-1") + b"\r\n" + body


def _signed_host(endpoint_url: str) -> str:
    """The ``host`` header as signed: lower case, the scheme's default port left out."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def decode(status: int, data: bytes) -> dict[str, Any]:
    """One ``json.loads``; a non-200 answer raises `MinimalError`."""
    answer: dict[str, Any] = json.loads(data) if data else {}
    if status != 200:
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1]
        message = str(answer.get("message") or answer.get("Message") or "")
        raise MinimalError(status, code, message)
    return answer


def plain(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One dict per item: each attribute's value as DynamoDB sent it."""
    return {name: next(iter(value.values())) for name, value in item.items()}


class _Connection:
    """One kept-alive socket and its buffered reader."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class MinimalClient:
    """A thread-safe sync client over a pool of keep-alive sockets, one per thread at a time.

    The exchange is as lean as the async floor's (and the layer's own): the whole
    request in one ``sendall``, the answer's head split by hand (`_read_head`), the
    body read by its ``Content-Length``. ``http.client`` would send the head and the
    body in two calls and parse the headers with the ``email`` package: a floor that
    paid for that would flatter the layer.
    """

    def __init__(self, endpoint_url: str, *, pool: int = 50, timeout: float = 30.0) -> None:
        parts = urlsplit(endpoint_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        self._signer = Signer(endpoint_url)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool)

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        message = self._signer.message(operation, payload)
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            while True:
                if conn is None:
                    conn = _Connection(self._host, self._port, self._timeout)
                try:
                    conn.sock.sendall(message)
                    status, keep, length = _read_head(conn.reader.readline)
                    data = conn.reader.read(length) if length else b""
                    if len(data) < length:
                        raise ConnectionError("the answer was cut short")
                    break
                except (OSError, ValueError, IndexError):
                    conn.close()
                    conn = None
                    if not reused:
                        raise
                    reused = False  # a keep-alive connection the server had closed: once more
            if keep:
                with self._lock:
                    self._idle.append(conn)
            else:
                conn.close()
        return decode(status, data)

    def get_item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self.call("GetItem", {"TableName": table, "Key": key}).get("Item")
        return plain(item) if item is not None else None

    def batch_get_chunk(self, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One chunk of at most 100 keys, unprocessed keys resubmitted until none are left."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {table: {"Keys": keys}}
        while request:
            answer = self.call("BatchGetItem", {"RequestItems": request})
            items.extend(plain(item) for item in answer["Responses"].get(table, ()))
            request = answer.get("UnprocessedKeys") or {}
        return items

    def query(self, table: str, key_name: str, key_value: str) -> Iterator[dict[str, Any]]:
        """Every item of one partition, page after page."""
        payload: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": key_name},
            "ExpressionAttributeValues": {":v": {"S": key_value}},
        }
        while True:
            answer = self.call("Query", payload)
            for item in answer["Items"]:
                yield plain(item)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            payload["ExclusiveStartKey"] = last

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class AsyncMinimalClient:
    """An asyncio client over a pool of keep-alive stream connections (one event loop)."""

    def __init__(self, endpoint_url: str, *, pool: int = 50) -> None:
        parts = urlsplit(endpoint_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._pool = pool
        self._signer = Signer(endpoint_url)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots: asyncio.Semaphore | None = None

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        message = self._signer.message(operation, payload)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._pool)
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            while True:
                if conn is None:
                    conn = await asyncio.open_connection(self._host, self._port)
                reader, writer = conn
                try:
                    writer.write(message)
                    status, keep, data = await _read_answer(reader)
                    break
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    writer.close()
                    conn = None
                    if not reused:
                        raise
                    reused = False
            if keep:
                self._idle.append(conn)
            else:
                writer.close()
        return decode(status, data)

    async def get_item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = (await self.call("GetItem", {"TableName": table, "Key": key})).get("Item")
        return plain(item) if item is not None else None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """(status, keep-alive, body) of one HTTP/1.1 answer with a Content-Length."""
    lines = iter((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n"))
    status, keep, length = _read_head(lines.__next__)
    data = await reader.readexactly(length) if length else b""
    return status, keep, data


def _read_head(readline: Callable[[], bytes]) -> tuple[int, bool, int]:
    """(status, keep-alive, Content-Length) of an answer's head, its lines from `readline`
    up to the blank one (with or without their line ends)."""
    status = int(readline().split(b" ", 2)[1])
    length = 0
    keep = True
    while True:
        line = readline()
        if line in (b"", b"\r\n", b"\n"):
            return status, keep, length
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"connection":
            keep = value.strip().lower() != b"close"

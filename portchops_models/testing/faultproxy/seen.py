"""`SeenRequest`: what the proxy recorded of one request, and the bounded log keeping them."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["Fault", "RequestLog", "SeenRequest"]

Fault: TypeAlias = Literal[
    "drop",
    "server_error",
    "throttle",
    "lost_answer",
    "hang",
    "unprocessed",
    "html_error",
    "trickle",
]
"""The fault the proxy drew for a request (see `SeenRequest.fault`)."""


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request as the proxy received it from the client (see `FaultProxy.seen`).

    Attributes:
        operation: the DynamoDB operation (``"PutItem"``), from ``X-Amz-Target``;
            ``""`` for requests without one.
        method: the HTTP method.
        target: the request target (path and query).
        headers: the client's headers, in order, as sent.
        body: the raw body, as sent (before any partial-batch rewrite).
        fault: the fault drawn for it; None when it was forwarded as is
            (latency aside).
    """

    operation: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fault: Fault | None = None

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def payload(self) -> dict[str, Any] | None:
        """The body parsed as a JSON object (a fresh copy each time); None if it is not one."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class RequestLog:
    """The last ``size`` requests seen, oldest first; thread-safe."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"the request log size must be >= 0, got {size!r}")
        self._lock = threading.Lock()
        self._entries: deque[SeenRequest] = deque(maxlen=size)

    def add(self, entry: SeenRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> tuple[SeenRequest, ...]:
        with self._lock:
            return tuple(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

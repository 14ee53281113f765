"""`ProxyStats`, the snapshot a proxy reports, and the locked counters behind it."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from .batches import BatchPlan

__all__ = ["Counters", "ProxyStats", "Tally"]

Tally: TypeAlias = Literal[
    "throttled",
    "server_errors",
    "dropped",
    "lost_answers",
    "hung",
    "upstream_errors",
    "html_errors",
    "trickled",
]
"""The counters `Counters.count` adds one to."""


@dataclass(frozen=True, kw_only=True)
class ProxyStats:
    """A snapshot of a proxy's counters (see `FaultProxy.stats`).

    Attributes:
        requests: requests received from clients.
        forwarded: requests sent upstream and answered by the engine
            (``lost_answers`` included).
        throttled: requests the proxy answered with a throttling error.
        server_errors: requests the proxy answered with a 500/503.
        dropped: requests whose connection the proxy reset.
        lost_answers: requests forwarded and answered by the engine whose
            client connection the proxy then reset instead of answering.
        hung: requests the proxy never answered nor forwarded, holding the
            connection open until the client closed it or the proxy stopped.
        upstream_errors: requests the engine could not be reached for
            (answered with 502).
        html_errors: requests the proxy answered with an HTML 5xx page without
            a request id (`Faults.html_error_every`).
        trickled: answers sent slowly (`Faults.trickle_headers`,
            `Faults.trickle_body`), counted when they start.
        unprocessed_keys: BatchGetItem keys moved to ``UnprocessedKeys``.
        unprocessed_items: BatchWriteItem requests moved to ``UnprocessedItems``.
        by_operation: requests received, per operation.
        forwarded_by_operation: requests forwarded, per operation.
        bytes_to_client: response body bytes sent to clients.
        connections_opened: client TCP connections accepted.
        peak_connections: most client connections open at once.
        open_connections: client connections open now.
    """

    requests: int = 0
    forwarded: int = 0
    throttled: int = 0
    server_errors: int = 0
    dropped: int = 0
    lost_answers: int = 0
    hung: int = 0
    upstream_errors: int = 0
    html_errors: int = 0
    trickled: int = 0
    unprocessed_keys: int = 0
    unprocessed_items: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    forwarded_by_operation: dict[str, int] = field(default_factory=dict)
    bytes_to_client: int = 0
    connections_opened: int = 0
    peak_connections: int = 0
    open_connections: int = 0


class Counters:
    """Mutable counters; every access holds ``lock`` (the ``count*`` methods take it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open_connections = 0
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.forwarded = 0
        self.throttled = 0
        self.server_errors = 0
        self.dropped = 0
        self.lost_answers = 0
        self.hung = 0
        self.upstream_errors = 0
        self.html_errors = 0
        self.trickled = 0
        self.unprocessed_keys = 0
        self.unprocessed_items = 0
        self.by_operation: Counter[str] = Counter()
        self.forwarded_by_operation: Counter[str] = Counter()
        self.bytes_to_client = 0
        self.connections_opened = 0
        self.peak_connections = self.open_connections

    def snapshot(self) -> ProxyStats:
        return ProxyStats(
            requests=self.requests,
            forwarded=self.forwarded,
            throttled=self.throttled,
            server_errors=self.server_errors,
            dropped=self.dropped,
            lost_answers=self.lost_answers,
            hung=self.hung,
            upstream_errors=self.upstream_errors,
            html_errors=self.html_errors,
            trickled=self.trickled,
            unprocessed_keys=self.unprocessed_keys,
            unprocessed_items=self.unprocessed_items,
            by_operation=dict(self.by_operation),
            forwarded_by_operation=dict(self.forwarded_by_operation),
            bytes_to_client=self.bytes_to_client,
            connections_opened=self.connections_opened,
            peak_connections=self.peak_connections,
            open_connections=self.open_connections,
        )

    def count(self, name: Tally) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def count_request(self, operation: str) -> None:
        with self.lock:
            self.requests += 1
            if operation:
                self.by_operation[operation] += 1

    def count_forwarded(self, operation: str) -> None:
        with self.lock:
            self.forwarded += 1
            if operation:
                self.forwarded_by_operation[operation] += 1

    def count_unprocessed(self, plan: BatchPlan) -> None:
        with self.lock:
            if plan.operation == "BatchGetItem":
                self.unprocessed_keys += plan.moved_count
            else:
                self.unprocessed_items += plan.moved_count

    def count_bytes(self, count: int) -> None:
        with self.lock:
            self.bytes_to_client += count

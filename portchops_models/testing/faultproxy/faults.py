"""`Faults`: what the proxy does to requests, and the throttling answers it can give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = ["OUTCOMES", "THROTTLE_BODIES", "Faults", "Outcome", "ThrottleCode"]

ThrottleCode: TypeAlias = Literal[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
]
"""Error codes `Faults.throttle_code` can answer throttled requests with."""

Outcome: TypeAlias = Literal["drop", "server_error", "throttle", "lost_answer", "hang", "forward"]
"""What the proxy does with one request, as drawn by `Faults.outcome`."""

OUTCOMES: Final[tuple[Outcome, ...]] = ("drop", "server_error", "throttle", "lost_answer", "hang")
"""The per-request faults, in the order a draw picks them."""

THROTTLE_BODIES: Final[dict[str, tuple[str, str]]] = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "RequestLimitExceeded": (
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What the proxy does to requests; every fault is off by default.

    Fractions are probabilities per request (``drop``, ``server_error``,
    ``throttle``, ``lost_answer``, ``hang``; together at most 1) or per batch
    key/write request (``unprocessed``). Swap a running proxy's faults with
    ``proxy.faults = Faults(...)``.

    Attributes:
        latency: seconds to wait before handling each request (network RTT).
        latency_jitter: up to this many extra seconds, drawn uniformly.
        throttle: fraction answered, without forwarding, with HTTP 400
            ``throttle_code``.
        throttle_code: the error code of throttled answers.
        server_error: fraction answered, without forwarding, with HTTP
            ``server_error_status`` (500 ``InternalFailure`` or 503
            ``ServiceUnavailable``).
        server_error_status: 500 or 503.
        drop: fraction where the client connection is reset without an
            answer (and nothing is forwarded).
        lost_answer: fraction forwarded whole (never as a partial batch) to the
            engine, whose answer is read in full - so a write has landed - and
            then lost: the client connection is reset instead. A read timeout
            after the write was applied, as clients see it.
        hang: fraction read and then never answered nor forwarded: the client
            connection stays open, silent, until the client closes it or the
            proxy stops (an endpoint that accepts and never answers).
        unprocessed: fraction of ``BatchGetItem`` keys and ``BatchWriteItem``
            write requests taken out of the forwarded request and returned as
            ``UnprocessedKeys``/``UnprocessedItems`` (merged with the engine's).
            When every one is drawn, nothing is forwarded.
        trickle_headers: seconds between the bytes of each answer's status line
            and headers (0: off). The request is forwarded and the engine's
            answer read whole (a write lands), then its head is sent one byte at
            a time, then its body: a peer whose every byte restarts a socket
            timeout.
        trickle_body: seconds between the bytes of each answer's body (0: off).
            The engine's answer is padded with JSON whitespace to
            ``trickle_body_length`` bytes (its ``x-amz-crc32`` recomputed, so a
            client that waits it out reads a valid answer); the head, declaring
            that length, is sent at once, then the body one byte at a time.
        trickle_body_length: the ``Content-Length`` of a trickled body.
        html_error_every: every Nth request that faults apply to, counted from
            when these faults were set (0: off), is answered without forwarding
            with an HTML page of status ``html_error_status`` and no request id:
            a load balancer or sidecar in front of DynamoDB. Drawn faults apply
            to the others.
        html_error_status: the status of those pages (a 5xx, e.g. 502, 503, 504).
        operations: when set, faults (latency included) apply only to these
            operations, e.g. ``frozenset({"BatchWriteItem"})``.
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    throttle: float = 0.0
    throttle_code: ThrottleCode = "ProvisionedThroughputExceededException"
    server_error: float = 0.0
    server_error_status: Literal[500, 503] = 500
    drop: float = 0.0
    lost_answer: float = 0.0
    hang: float = 0.0
    unprocessed: float = 0.0
    trickle_headers: float = 0.0
    trickle_body: float = 0.0
    trickle_body_length: int = 100_000
    html_error_every: int = 0
    html_error_status: int = 503
    operations: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in (*OUTCOMES, "unprocessed"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be within [0, 1], got {value!r}")
        if self.latency < 0 or self.latency_jitter < 0:
            raise ValueError("Faults.latency and Faults.latency_jitter must be >= 0")
        if sum(getattr(self, name) for name in OUTCOMES) > 1.0 + 1e-9:
            raise ValueError(
                "Faults.drop + server_error + throttle + lost_answer + hang must be <= 1"
            )
        if self.throttle_code not in THROTTLE_BODIES:
            raise ValueError(f"unknown Faults.throttle_code {self.throttle_code!r}")
        if self.server_error_status not in (500, 503):
            raise ValueError("Faults.server_error_status must be 500 or 503")
        if self.trickle_headers < 0 or self.trickle_body < 0:
            raise ValueError("Faults.trickle_headers and Faults.trickle_body must be >= 0")
        if self.trickle_body_length < 1:
            raise ValueError("Faults.trickle_body_length must be >= 1")
        if self.html_error_every < 0:
            raise ValueError("Faults.html_error_every must be >= 0")
        if not 500 <= self.html_error_status <= 599:
            raise ValueError("Faults.html_error_status must be a 5xx status")
        if self.operations is not None and not isinstance(self.operations, frozenset):
            object.__setattr__(self, "operations", frozenset(self.operations))

    def applies_to(self, operation: str) -> bool:
        """Whether faults apply to ``operation`` (a DynamoDB operation name)."""
        return bool(operation) and (self.operations is None or operation in self.operations)

    @property
    def trickles(self) -> bool:
        """Whether answers are sent slowly (`trickle_headers` or `trickle_body`)."""
        return self.trickle_headers > 0 or self.trickle_body > 0

    @property
    def draws_outcomes(self) -> bool:
        """Whether any per-request fault is on (else every request is forwarded)."""
        return any(getattr(self, name) > 0 for name in OUTCOMES)

    def outcome(self, draw: float) -> Outcome:
        """The outcome a uniform ``draw`` in [0, 1) picks, faults taking `OUTCOMES` order."""
        edge = 0.0
        for name in OUTCOMES:
            edge += getattr(self, name)
            if draw < edge:
                return name
        return "forward"

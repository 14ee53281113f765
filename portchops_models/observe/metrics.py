"""Request metrics for the data layer: capacity, throttles, errors, retries, latency, cache.

`Metrics` is fed by every DynamoDB request: recording is cheap (one lock, a few counter
bumps, one append to a bounded buffer) and never raises. Read it as a plain, JSON-ready dict
(`Metrics.snapshot`) or as CloudWatch Embedded Metric Format lines (`Metrics.to_emf`).
Latency percentiles use the last `LATENCY_SAMPLES` latencies of each operation (a ring
buffer) and the nearest-rank method: the p-th percentile of n samples is the ceil(p*n/100)-th
smallest (1..100 ms gives p50 = 50, p99 = 99; no samples gives 0.0). Counters are cumulative;
``reset=True`` reads and zeroes them in one step, as periodic EMF export wants.

    >>> m = Metrics()
    >>> m.record_request("GetItem", table="users", seconds=0.004, consumed={"CapacityUnits": 0.5})
    >>> m.snapshot()["consumed_read_capacity_units"]
    0.5
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TextIO, TypedDict, cast

__all__ = ["LATENCY_SAMPLES", "Metrics", "MetricsSnapshot", "OperationStats", "TableStats"]

LATENCY_SAMPLES = 2048
"""How many of its most recent latencies each operation keeps for its percentiles."""

_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_MAX_UNITS = 1e9  # far above what one response can consume: anything larger is junk, ignored
_MAX_SECONDS = 1e6  # likewise for a request's duration


class OperationStats(TypedDict):
    """Requests, failures, retries and latency (milliseconds) of one operation, e.g. ``Query``."""

    requests: int
    errors: int
    throttled: int
    retries: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float


class TableStats(TypedDict):
    """Capacity consumed by, and requests and retries sent to, one table."""

    consumed_read_capacity_units: float
    consumed_write_capacity_units: float
    requests: int
    retries: int


class MetricsSnapshot(TypedDict):
    """A copy of a `Metrics`, a plain dict at runtime. ``errors`` counts every failed
    request (throttles and user errors too); ``error_codes`` counts them by AWS error code."""

    requests: int
    errors: int
    throttled_requests: int
    user_errors: int
    retries: int
    cache_hits: int
    cache_misses: int
    transactions_canceled: int
    invalidations_sent: int
    invalidations_received: int
    bus_reconnects: int
    bus_rejected: int
    bus_floods: int
    stream_records: int
    stream_handler_errors: int
    stream_lag_seconds: float
    write_to_eviction_p50_ms: float
    write_to_eviction_p99_ms: float
    write_to_eviction_max_ms: float
    consumed_read_capacity_units: float
    consumed_write_capacity_units: float
    error_codes: dict[str, int]
    operations: dict[str, OperationStats]
    tables: dict[str, TableStats]


def _units(value: object) -> float | None:
    """``value`` as capacity units if it is a sane, finite, non-negative number, else None."""
    kind = type(value)
    plain = kind is float or kind is int  # a bool is neither (its type is bool)
    if not plain and (not isinstance(value, int | float) or isinstance(value, bool)):
        return None
    number = cast(float, value)
    return float(number) if 0 <= number <= _MAX_UNITS else None  # NaN fails the range check


def _capacity(
    operation: str, table: str | None, consumed: object
) -> list[tuple[str | None, float, float]]:
    """(table, read units, write units) for each entry of a ``ConsumedCapacity`` value."""
    found: list[tuple[str | None, float, float]] = []
    for entry in consumed if isinstance(consumed, list | tuple) else (consumed,):
        if type(entry) is not dict and not isinstance(entry, Mapping):
            continue
        read = _units(entry.get("ReadCapacityUnits"))
        write = _units(entry.get("WriteCapacityUnits"))
        if read is None and write is None:
            if operation in _READS:
                read = _units(entry.get("CapacityUnits"))
            elif operation in _WRITES:
                write = _units(entry.get("CapacityUnits"))
        name = entry.get("TableName")
        found.append((name if isinstance(name, str) else table, read or 0.0, write or 0.0))
    return found


def _rank(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of sorted samples; 0.0 when there are none."""
    return ordered[max((percent * len(ordered) + 99) // 100, 1) - 1] if ordered else 0.0


_NESTED = ("error_codes", "operations", "tables")
_TOTAL_KEYS = tuple(key for key in MetricsSnapshot.__annotations__ if key not in _NESTED)
_OPERATION_KEYS = tuple(OperationStats.__annotations__)


def _emf_name(key: str) -> str:
    """The CloudWatch metric name of a snapshot key: ``cache_hits`` -> ``CacheHits``."""
    return "".join(part.capitalize() for part in key.split("_"))


def _emf_unit(key: str) -> str:
    if key.endswith("_ms"):
        return "Milliseconds"
    if key.endswith("_seconds"):
        return "Seconds"
    return "None" if "capacity" in key else "Count"


_RESERVED = frozenset({"_aws", "Operation", *map(_emf_name, _TOTAL_KEYS + _OPERATION_KEYS)})


def _emf_line(ns: str, stamp: int, dims: dict[str, str], values: dict[str, object]) -> str:
    metrics = [{"Name": _emf_name(key), "Unit": _emf_unit(key)} for key in values]
    directive = {"Namespace": ns, "Dimensions": [list(dims)], "Metrics": metrics}
    body: dict[str, object] = {"_aws": {"Timestamp": stamp, "CloudWatchMetrics": [directive]}}
    body.update(dims)
    body.update({_emf_name(key): value for key, value in values.items()})
    return json.dumps(body, separators=(",", ":"))


def _empty() -> MetricsSnapshot:
    return MetricsSnapshot(
        requests=0,
        errors=0,
        throttled_requests=0,
        user_errors=0,
        retries=0,
        cache_hits=0,
        cache_misses=0,
        transactions_canceled=0,
        invalidations_sent=0,
        invalidations_received=0,
        bus_reconnects=0,
        bus_rejected=0,
        bus_floods=0,
        stream_records=0,
        stream_handler_errors=0,
        stream_lag_seconds=0.0,
        write_to_eviction_p50_ms=0.0,
        write_to_eviction_p99_ms=0.0,
        write_to_eviction_max_ms=0.0,
        consumed_read_capacity_units=0.0,
        consumed_write_capacity_units=0.0,
        error_codes={},
        operations={},
        tables={},
    )


class Metrics:
    """Thread-safe collector of DynamoDB request metrics; one lock guards all of its state.

    Example: ``metrics = Metrics()``, pass it to ``UserRepository(metrics=...)``, then once a minute
    ``metrics.write_emf(sys.stdout, reset=True)``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _empty()
        self._latencies: dict[str, deque[float]] = {}
        self._evictions: deque[float] = deque(maxlen=LATENCY_SAMPLES)  # write-to-eviction, ms

    def _op(self, name: str) -> OperationStats:
        op = self._state["operations"].get(name)
        if op is None:
            op = self._state["operations"][name] = OperationStats(
                requests=0,
                errors=0,
                throttled=0,
                retries=0,
                latency_p50_ms=0.0,
                latency_p99_ms=0.0,
                latency_max_ms=0.0,
            )
            self._latencies[name] = deque(maxlen=LATENCY_SAMPLES)
        return op

    def _table(self, name: str) -> TableStats:
        table = self._state["tables"].get(name)
        if table is None:
            table = self._state["tables"][name] = TableStats(
                consumed_read_capacity_units=0.0,
                consumed_write_capacity_units=0.0,
                requests=0,
                retries=0,
            )
        return table

    def record_request(
        self,
        operation: str,
        *,
        table: str | None,
        seconds: float,
        consumed: object = None,
        error_code: str | None = None,
        throttled: bool = False,
        user_error: bool = False,
    ) -> None:
        """Record one HTTP request to DynamoDB, e.g. ``record_request("Query", table="t",
        seconds=0.01, consumed=response.get("ConsumedCapacity"))``; never raises.

        ``table`` is None for multi-table batches; a non-finite or negative ``seconds`` gives no
        latency sample. ``consumed`` (a dict, a list of dicts or None): explicit
        ``ReadCapacityUnits``/``WriteCapacityUnits`` win, else ``CapacityUnits`` counts as read
        or write by the operation; junk values are ignored. The request failed if it has an
        ``error_code``, was ``throttled`` or is a ``user_error``.
        """
        try:
            capacity = [] if consumed is None else _capacity(operation, table, consumed)
        except Exception:  # junk from a response must never break the request
            capacity = []
        ok_time = (
            type(seconds) is float or isinstance(seconds, int | float)
        ) and 0 <= seconds < _MAX_SECONDS  # not NaN
        with self._lock:
            state = self._state
            op = state["operations"].get(operation) or self._op(operation)
            state["requests"] += 1
            op["requests"] += 1
            if ok_time:
                self._latencies[operation].append(seconds * 1000.0)
            if error_code is not None or throttled or user_error:
                state["errors"] += 1
                op["errors"] += 1
            if error_code is not None:
                state["error_codes"][error_code] = state["error_codes"].get(error_code, 0) + 1
            if throttled:
                state["throttled_requests"] += 1
                op["throttled"] += 1
            if user_error:
                state["user_errors"] += 1
            if table is not None:
                (state["tables"].get(table) or self._table(table))["requests"] += 1
            for name, read, write in capacity:
                state["consumed_read_capacity_units"] += read
                state["consumed_write_capacity_units"] += write
                if name is not None:
                    stats = self._table(name)
                    stats["consumed_read_capacity_units"] += read
                    stats["consumed_write_capacity_units"] += write

    def record_retry(self, operation: str, *, table: str | None = None) -> None:
        """Record a retry of a request or its unprocessed part: ``record_retry("BatchGetItem")``."""
        with self._lock:
            self._state["retries"] += 1
            self._op(operation)["retries"] += 1
            if table is not None:
                self._table(table)["retries"] += 1

    def record_cache(self, *, hit: bool, count: int = 1) -> None:
        """Record ``count`` cache lookups that hit or missed: ``record_cache(hit=False)``."""
        if isinstance(count, int) and count > 0:
            with self._lock:
                if hit:
                    self._state["cache_hits"] += count
                else:
                    self._state["cache_misses"] += count

    def record_cache_hit(self) -> None:
        """Record one cache lookup that hit: ``record_cache(hit=True)`` at its cheapest, for
        the cache's hit path."""
        lock = self._lock
        lock.acquire()  # half the cost of ``with lock:`` on CPython 3.11, on the hottest path
        try:
            self._state["cache_hits"] += 1
        finally:
            lock.release()

    def record_cancellation(self) -> None:
        """Record a transaction that DynamoDB canceled: ``record_cancellation()``."""
        with self._lock:
            self._state["transactions_canceled"] += 1

    # The invalidation bus (portchops_models.cache.bus): counts are of item keys.

    def record_invalidation_sent(self, count: int) -> None:
        """Record ``count`` keys published on the invalidation bus."""
        if isinstance(count, int) and count > 0:
            with self._lock:
                self._state["invalidations_sent"] += count

    def record_invalidation_received(self, count: int, *, seconds: float) -> None:
        """Record ``count`` keys evicted for another process's write, ``seconds`` after it."""
        ok_time = isinstance(seconds, int | float) and 0 <= seconds < _MAX_SECONDS
        with self._lock:
            if isinstance(count, int) and count > 0:
                self._state["invalidations_received"] += count
            if ok_time:  # clocks of two machines may disagree: a negative time is no sample
                self._evictions.append(seconds * 1000.0)

    def record_bus_reconnect(self) -> None:
        """Record a resubscription to the invalidation bus after its connection was lost."""
        with self._lock:
            self._state["bus_reconnects"] += 1

    def record_bus_rejected(self) -> None:
        """Record a bus message dropped unread: unsigned, forged, malformed or oversized."""
        with self._lock:
            self._state["bus_rejected"] += 1

    def record_bus_flood(self) -> None:
        """Record a backlog of bus messages turned into one drop of every cache."""
        with self._lock:
            self._state["bus_floods"] += 1

    # Stream workers (portchops_models.streams.worker).

    def record_stream_batch(self, records: int, *, lag_seconds: float) -> None:
        """Record ``records`` stream records handled; ``lag_seconds`` is how far the
        worker is behind the stream's head now (the age of the newest record it handled,
        0 once a shard answered with nothing new)."""
        with self._lock:
            if isinstance(records, int) and records > 0:
                self._state["stream_records"] += records
            if isinstance(lag_seconds, int | float) and 0 <= lag_seconds < _MAX_SECONDS:
                self._state["stream_lag_seconds"] = float(lag_seconds)

    def record_handler_error(self) -> None:
        """Record a stream handler that raised (the batch is delivered again)."""
        with self._lock:
            self._state["stream_handler_errors"] += 1

    def snapshot(self, *, reset: bool = False) -> MetricsSnapshot:
        """The metrics as a plain, JSON-ready dict; ``reset=True`` also zeroes them.

        Example: ``metrics.snapshot()["operations"]["Query"]["latency_p99_ms"]``.
        """
        with self._lock:
            snap = self._state.copy()
            snap["error_codes"] = dict(snap["error_codes"])
            snap["operations"] = {name: op.copy() for name, op in snap["operations"].items()}
            snap["tables"] = {name: table.copy() for name, table in snap["tables"].items()}
            samples = {name: list(latencies) for name, latencies in self._latencies.items()}
            evictions = list(self._evictions)
            if reset:
                self._state, self._latencies = _empty(), {}
                self._evictions.clear()
        evictions.sort()  # outside the lock
        snap["write_to_eviction_p50_ms"] = _rank(evictions, 50)
        snap["write_to_eviction_p99_ms"] = _rank(evictions, 99)
        snap["write_to_eviction_max_ms"] = evictions[-1] if evictions else 0.0
        for name, ordered in samples.items():  # sort outside the lock
            ordered.sort()
            op = snap["operations"][name]
            op["latency_p50_ms"] = _rank(ordered, 50)
            op["latency_p99_ms"] = _rank(ordered, 99)
            op["latency_max_ms"] = ordered[-1] if ordered else 0.0
        return snap

    def reset(self) -> None:
        """Zero every counter and forget every latency sample."""
        with self._lock:
            self._state, self._latencies = _empty(), {}
            self._evictions.clear()

    def to_emf(
        self,
        *,
        namespace: str = "PortChops",
        timestamp_ms: int | None = None,
        dimensions: Mapping[str, str] | None = None,
        reset: bool = False,
    ) -> list[str]:
        """CloudWatch Embedded Metric Format JSON lines: the totals, then one per operation.

        Every line has the ``dimensions`` (at most 29, none named ``Operation``, ``_aws`` or like
        a metric, else ValueError), operation lines also ``Operation``. ``timestamp_ms`` defaults
        to now. Example: ``metrics.to_emf(dimensions={"Stage": "prod"}, reset=True)``.
        """
        dims = dict(dimensions or {})
        clash = sorted(_RESERVED.intersection(dims))
        if clash or len(dims) > 29:
            raise ValueError(f"invalid EMF dimensions (reserved: {clash}, count: {len(dims)})")
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        snap = self.snapshot(reset=reset)
        flat: Mapping[str, object] = snap
        lines = [_emf_line(namespace, stamp, dims, {key: flat[key] for key in _TOTAL_KEYS})]
        for name, op in sorted(snap["operations"].items()):
            lines.append(_emf_line(namespace, stamp, {**dims, "Operation": name}, dict(op)))
        return lines

    def write_emf(
        self,
        stream: TextIO,
        *,
        namespace: str = "PortChops",
        timestamp_ms: int | None = None,
        dimensions: Mapping[str, str] | None = None,
        reset: bool = False,
    ) -> None:
        """Write the `to_emf` lines to ``stream``, e.g. ``metrics.write_emf(sys.stdout)``."""
        lines = self.to_emf(
            namespace=namespace, timestamp_ms=timestamp_ms, dimensions=dimensions, reset=reset
        )
        stream.write("".join(line + "\n" for line in lines))

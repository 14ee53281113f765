"""Tests for portchops_models.metrics."""

from __future__ import annotations

import io
import json
import math
import sys
import threading
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portchops_models.metrics import LATENCY_SAMPLES, Metrics


def test_capacity_from_dict_counts_as_read_for_read_operations() -> None:
    m = Metrics()
    m.record_request(
        "GetItem",
        table="users",
        seconds=0.01,
        consumed={"TableName": "users", "CapacityUnits": 0.5},
    )
    m.record_request("Query", table="users", seconds=0.01, consumed={"CapacityUnits": 2.0})
    snap = m.snapshot()
    assert snap["consumed_read_capacity_units"] == 2.5
    assert snap["consumed_write_capacity_units"] == 0.0
    assert snap["tables"]["users"]["consumed_read_capacity_units"] == 2.5
    assert snap["tables"]["users"]["requests"] == 2


@pytest.mark.parametrize(
    "operation", ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]
)
def test_capacity_counts_as_write_for_write_operations(operation: str) -> None:
    m = Metrics()
    m.record_request(operation, table="t", seconds=0.0, consumed={"CapacityUnits": 3.0})
    snap = m.snapshot()
    assert snap["consumed_write_capacity_units"] == 3.0
    assert snap["consumed_read_capacity_units"] == 0.0


def test_capacity_from_list_is_attributed_per_table() -> None:
    m = Metrics()
    consumed = [
        {"TableName": "users", "CapacityUnits": 1.5},
        {"TableName": "progress", "CapacityUnits": 4.0},
    ]
    m.record_request("BatchGetItem", table=None, seconds=0.02, consumed=consumed)
    snap = m.snapshot()
    assert snap["consumed_read_capacity_units"] == 5.5
    assert snap["tables"]["users"]["consumed_read_capacity_units"] == 1.5
    assert snap["tables"]["progress"]["consumed_read_capacity_units"] == 4.0
    assert snap["tables"]["users"]["requests"] == 0  # the request named no single table


def test_explicit_read_and_write_units_win_over_capacity_units() -> None:
    m = Metrics()
    consumed = {"TableName": "t", "CapacityUnits": 9.0, "WriteCapacityUnits": 2.0}
    m.record_request("GetItem", table="t", seconds=0.01, consumed=consumed)
    consumed = {"CapacityUnits": 9.0, "ReadCapacityUnits": 1.0, "WriteCapacityUnits": 0.5}
    m.record_request("TransactWriteItems", table="t", seconds=0.01, consumed=consumed)
    snap = m.snapshot()
    assert snap["consumed_read_capacity_units"] == 1.0
    assert snap["consumed_write_capacity_units"] == 2.5
    assert snap["tables"]["t"]["consumed_write_capacity_units"] == 2.5


def test_unknown_operation_and_junk_values_add_no_capacity() -> None:
    m = Metrics()
    m.record_request("ExecuteStatement", table="t", seconds=0.01, consumed={"CapacityUnits": 1.0})
    bad: list[object] = [{"CapacityUnits": "1"}, {"CapacityUnits": True}, {"CapacityUnits": -1}]
    bad += [{"CapacityUnits": math.nan}, {"CapacityUnits": math.inf}, "x", None, 3]
    m.record_request("Query", table="t", seconds=0.01, consumed=bad)
    snap = m.snapshot()
    assert snap["consumed_read_capacity_units"] == 0.0
    assert snap["consumed_write_capacity_units"] == 0.0
    assert snap["requests"] == 2


def test_failures_throttles_and_user_errors_are_counted() -> None:
    m = Metrics()
    m.record_request("Query", table="t", seconds=0.01)
    m.record_request(
        "Query",
        table="t",
        seconds=0.01,
        error_code="ProvisionedThroughputExceededException",
        throttled=True,
    )
    m.record_request(
        "PutItem", table="t", seconds=0.01, error_code="ValidationException", user_error=True
    )
    m.record_request("PutItem", table="t", seconds=0.01, error_code="InternalServerError")
    snap = m.snapshot()
    assert snap["requests"] == 4
    assert snap["errors"] == 3
    assert snap["throttled_requests"] == 1
    assert snap["user_errors"] == 1
    assert snap["error_codes"] == {
        "ProvisionedThroughputExceededException": 1,
        "ValidationException": 1,
        "InternalServerError": 1,
    }
    assert snap["operations"]["Query"]["throttled"] == 1
    assert snap["operations"]["Query"]["errors"] == 1
    assert snap["operations"]["PutItem"]["errors"] == 2


def test_retries_are_counted_in_total_operation_and_table() -> None:
    m = Metrics()
    m.record_retry("BatchGetItem", table="users")
    m.record_retry("BatchGetItem")
    snap = m.snapshot()
    assert snap["retries"] == 2
    assert snap["operations"]["BatchGetItem"]["retries"] == 2
    assert snap["operations"]["BatchGetItem"]["requests"] == 0
    assert snap["tables"]["users"]["retries"] == 1


def test_cache_counters() -> None:
    m = Metrics()
    m.record_cache(hit=True)
    m.record_cache(hit=True, count=4)
    m.record_cache(hit=False, count=2)
    m.record_cache(hit=False, count=0)
    m.record_cache(hit=True, count=-3)
    snap = m.snapshot()
    assert (snap["cache_hits"], snap["cache_misses"]) == (5, 2)


def test_percentiles_use_nearest_rank() -> None:
    m = Metrics()
    for ms in reversed(range(1, 101)):
        m.record_request("GetItem", table="t", seconds=ms / 1000)
    op = m.snapshot()["operations"]["GetItem"]
    assert op["latency_p50_ms"] == pytest.approx(50.0)
    assert op["latency_p99_ms"] == pytest.approx(99.0)
    assert op["latency_max_ms"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("samples_ms", "p50", "p99"), [([1, 2, 3], 2, 3), (list(range(1, 11)), 5, 10), ([7], 7, 7)]
)
def test_percentiles_round_the_rank_up(samples_ms: list[int], p50: float, p99: float) -> None:
    m = Metrics()
    for ms in samples_ms:
        m.record_request("Query", table="t", seconds=ms / 1000)
    op = m.snapshot()["operations"]["Query"]
    assert op["latency_p50_ms"] == pytest.approx(p50)
    assert op["latency_p99_ms"] == pytest.approx(p99)


def test_percentiles_of_one_sample_and_no_samples() -> None:
    m = Metrics()
    m.record_request("Scan", table="t", seconds=0.25)
    m.record_request("Query", table="t", seconds=math.nan)
    m.record_request("Query", table="t", seconds=-1.0)
    ops = m.snapshot()["operations"]
    assert ops["Scan"]["latency_p50_ms"] == ops["Scan"]["latency_p99_ms"] == 250.0
    assert ops["Query"]["requests"] == 2
    assert (ops["Query"]["latency_p50_ms"], ops["Query"]["latency_max_ms"]) == (0.0, 0.0)


def test_latency_ring_buffer_keeps_only_the_latest_samples() -> None:
    m = Metrics()
    m.record_request("GetItem", table="t", seconds=10.0)
    for _ in range(LATENCY_SAMPLES - 1):
        m.record_request("GetItem", table="t", seconds=0.001)
    assert m.snapshot()["operations"]["GetItem"]["latency_max_ms"] == pytest.approx(10_000.0)
    m.record_request("GetItem", table="t", seconds=0.001)  # pushes the slow sample out
    op = m.snapshot()["operations"]["GetItem"]
    assert op["requests"] == LATENCY_SAMPLES + 1
    assert op["latency_max_ms"] == pytest.approx(1.0)


def test_reset_and_snapshot_reset_zero_everything() -> None:
    m = Metrics()
    m.record_request("GetItem", table="t", seconds=0.01, consumed={"CapacityUnits": 1.0})
    m.record_retry("GetItem")
    m.record_cache(hit=True)
    first = m.snapshot(reset=True)
    assert first["requests"] == 1
    assert m.snapshot() == Metrics().snapshot()
    m.record_request("GetItem", table="t", seconds=0.01)
    m.reset()
    empty = m.snapshot()
    assert empty["requests"] == 0
    assert empty["operations"] == {}
    assert empty["tables"] == {}


def test_snapshot_is_a_plain_detached_json_ready_dict() -> None:
    m = Metrics()
    m.record_request("Query", table="t", seconds=0.01, consumed={"CapacityUnits": 1.0})
    snap = m.snapshot()
    flat: Mapping[str, object] = snap
    assert type(snap) is dict
    assert type(snap["operations"]["Query"]) is dict
    json.loads(json.dumps(snap, allow_nan=False))
    for key in (
        "consumed_read_capacity_units",
        "consumed_write_capacity_units",
        "throttled_requests",
        "user_errors",
        "errors",
        "retries",
        "cache_hits",
        "cache_misses",
        "requests",
    ):
        assert isinstance(flat[key], int | float)
    m.record_request("Query", table="t", seconds=0.01)
    assert snap["requests"] == 1  # later records do not leak into an old snapshot
    assert snap["operations"]["Query"]["requests"] == 1


def _check_emf(line: str, namespace: str) -> dict[str, object]:
    doc = json.loads(line)
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int)
    (directive,) = meta["CloudWatchMetrics"]
    assert directive["Namespace"] == namespace
    for dimension_set in directive["Dimensions"]:
        assert len(dimension_set) <= 30
        for key in dimension_set:
            assert isinstance(doc[key], str)
    assert directive["Metrics"]
    for metric in directive["Metrics"]:
        assert metric["Unit"] in {"Count", "Milliseconds", "Seconds", "None"}
        value = doc[metric["Name"]]
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)
        assert math.isfinite(value)
    return dict(doc)


def test_emf_lines_follow_the_embedded_metric_format() -> None:
    m = Metrics()
    m.record_request("Query", table="t", seconds=0.012, consumed={"CapacityUnits": 2.0})
    m.record_request("PutItem", table="t", seconds=0.02, throttled=True, error_code="Throttled")
    m.record_cache(hit=False)
    lines = m.to_emf(namespace="Test", timestamp_ms=1_700_000_000_000, dimensions={"Stage": "x"})
    assert len(lines) == 3  # totals + two operations
    docs = [_check_emf(line, "Test") for line in lines]
    totals, put, query = docs
    assert totals["_aws"] == {
        "Timestamp": 1_700_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "Test",
                "Dimensions": [["Stage"]],
                "Metrics": json.loads(lines[0])["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            }
        ],
    }
    assert totals["Stage"] == "x"
    assert totals["Requests"] == 2
    assert totals["ThrottledRequests"] == 1
    assert totals["ConsumedReadCapacityUnits"] == 2.0
    assert totals["CacheMisses"] == 1
    assert (put["Operation"], query["Operation"]) == ("PutItem", "Query")
    assert json.loads(lines[1])["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Stage", "Operation"]
    ]
    assert query["LatencyP50Ms"] == pytest.approx(12.0)
    assert put["Throttled"] == 1


def test_emf_without_dimensions_and_write_emf() -> None:
    m = Metrics()
    m.record_request("GetItem", table="t", seconds=0.001)
    out = io.StringIO()
    m.write_emf(out, reset=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert out.getvalue().endswith("\n")
    totals = _check_emf(lines[0], "PortChops")
    assert json.loads(lines[0])["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert totals["Requests"] == 1
    assert m.snapshot()["requests"] == 0  # reset=True zeroed it


@pytest.mark.parametrize("dimensions", [{"Operation": "x"}, {"_aws": "x"}, {"Requests": "x"}])
def test_emf_rejects_reserved_dimensions(dimensions: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="reserved"):
        Metrics().to_emf(dimensions=dimensions)


def test_emf_rejects_too_many_dimensions() -> None:
    with pytest.raises(ValueError, match="count: 30"):
        Metrics().to_emf(dimensions={f"D{i}": "x" for i in range(30)})


def test_concurrent_recording_loses_nothing() -> None:
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a missing lock shows
    try:
        _record_concurrently()
    finally:
        sys.setswitchinterval(old_interval)


def _record_concurrently() -> None:
    m = Metrics()
    threads_n, per_thread = 8, 1000
    barrier = threading.Barrier(threads_n)

    def work(index: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            m.record_request(
                "GetItem" if i % 2 else "PutItem",
                table=f"t{index % 2}",
                seconds=0.001,
                consumed={"CapacityUnits": 1.0},
                throttled=i % 10 == 0,
            )
            m.record_cache(hit=i % 2 == 0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = m.snapshot()
    total = threads_n * per_thread
    assert snap["requests"] == total
    assert snap["throttled_requests"] == total // 10
    assert snap["errors"] == total // 10
    assert snap["consumed_read_capacity_units"] == total / 2
    assert snap["consumed_write_capacity_units"] == total / 2
    assert snap["operations"]["GetItem"]["requests"] == total // 2
    assert snap["tables"]["t0"]["requests"] == snap["tables"]["t1"]["requests"] == total // 2
    assert snap["cache_hits"] == snap["cache_misses"] == total // 2


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.binary(max_size=5)
)
_keys = st.sampled_from(
    ["TableName", "CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits", "Table", "x"]
)
_junk = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys | st.text(max_size=3), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    operation=st.sampled_from(["GetItem", "Query", "PutItem", "BatchWriteItem", "Other"]),
    consumed=_junk,
    seconds=st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
)
def test_junk_consumed_capacity_never_raises_or_poisons_totals(
    operation: str, consumed: object, seconds: float
) -> None:
    m = Metrics()
    m.record_request(operation, table="t", seconds=seconds, consumed=consumed)
    m.record_request(operation, table=None, seconds=seconds, consumed=[consumed, consumed])
    snap = m.snapshot()
    numbers = [snap["consumed_read_capacity_units"], snap["consumed_write_capacity_units"]]
    for stats in snap["tables"].values():
        numbers += [stats["consumed_read_capacity_units"], stats["consumed_write_capacity_units"]]
    for stats_op in snap["operations"].values():
        numbers += [stats_op["latency_p50_ms"], stats_op["latency_p99_ms"]]
        numbers.append(stats_op["latency_max_ms"])
    assert all(math.isfinite(n) and n >= 0 for n in numbers)
    assert snap["requests"] == 2
    json.dumps(snap, allow_nan=False)
    for line in m.to_emf(timestamp_ms=0):
        _check_emf(line, "PortChops")

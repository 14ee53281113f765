"""Smoke tests of the benchmark harness (``make bench``): the parity check, the minimal
client that is the benchmarks' lower bound, and the summary's verdicts.

The timed scenarios themselves are not run here (they take minutes), except the
profile page's at a tiny scale, for what it counts; these tests keep the parts that
decide what the numbers mean honest: the lower bound reads what botocore reads, and a
contender that could not be measured never passes.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import parity, profile, report
from benchmarks.cache_skew import zipf_sequences
from benchmarks.common import (
    PROGRESS_TABLE,
    USERS_TABLE,
    ScenarioResult,
    Spread,
    Target,
    ratio,
    raw_client,
)
from benchmarks.context import Bench, Scale
from benchmarks.minimal import AsyncMinimalClient, MinimalClient, MinimalError, plain
from portchops_models.testing.engine import DynaliteEngine


@pytest.fixture(scope="module")
def bench(dynalite_engine: DynaliteEngine) -> Bench:
    """The benchmarks' tables and 1,000 users on dynalite, written once for this module."""
    seeded = Bench(engine_url=dynalite_engine.endpoint_url, scale=Scale.tiny())
    seeded.prepare()
    return seeded


def test_parity_check_finds_no_difference(bench):
    result = parity.run(bench)
    assert [r["first"] for r in result.rows if r["differences"]] == []
    assert all(t.passed for t in result.targets)


def test_profile_page_is_one_request_on_one_table_and_two_on_two(bench):
    result = profile.run(bench)
    assert [(r["tables"], r["requests"]) for r in result.rows] == [(1, 1), (2, 2), (2, 2)]
    assert not [n for n in result.notes if "returned pages" in n]  # every page: user + 50 rows
    assert [t.source for t in result.targets] == ["#23", "#23"]
    assert result.targets[1].passed
    tables = raw_client(bench.engine_url).list_tables()["TableNames"]
    assert "bench-app" not in tables  # the scenario drops the table it made
    assert USERS_TABLE in tables


def test_minimal_client_reads_what_botocore_reads(bench):
    client = raw_client(bench.engine_url)
    minimal = MinimalClient(bench.engine_url, pool=2)
    keys = [{"userId": {"S": k}} for k in bench.user_ids[:100]]
    try:
        for key in keys[:5]:
            expected = plain(client.get_item(TableName=USERS_TABLE, Key=key)["Item"])
            assert minimal.get_item(USERS_TABLE, key) == expected
        answer = client.batch_get_item(RequestItems={USERS_TABLE: {"Keys": keys}})
        by_id = {i["userId"]: i for i in map(plain, answer["Responses"][USERS_TABLE])}
        got = minimal.batch_get_chunk(USERS_TABLE, keys)
        assert {i["userId"]: i for i in got} == by_id
        assert len(got) == 100
        assert minimal.get_item(USERS_TABLE, {"userId": {"S": "nobody"}}) is None
        partition = bench.partition(30)
        pages = client.get_paginator("query").paginate(
            TableName=PROGRESS_TABLE,
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": partition}},
        )
        expected_items = [plain(i) for page in pages for i in page["Items"]]
        assert list(minimal.query(PROGRESS_TABLE, "userId", partition)) == expected_items
        assert len(expected_items) == 30
    finally:
        minimal.close()


def test_minimal_async_client_reads_what_the_sync_one_reads(bench):
    keys = [{"userId": {"S": k}} for k in bench.user_ids[:40]]
    sync = MinimalClient(bench.engine_url, pool=2)
    expected = [sync.get_item(USERS_TABLE, k) for k in keys]
    sync.close()

    async def gathered() -> list[object]:
        client = AsyncMinimalClient(bench.engine_url, pool=8)
        try:
            first = await asyncio.gather(*(client.get_item(USERS_TABLE, k) for k in keys))
            again = await asyncio.gather(*(client.get_item(USERS_TABLE, k) for k in keys))
            assert again == first  # the second burst reuses the kept-alive connections
            return list(first)
        finally:
            await client.close()

    assert asyncio.run(gathered()) == expected


def test_minimal_client_errors_carry_dynamodbs_code(bench):
    minimal = MinimalClient(bench.engine_url, pool=1)
    with pytest.raises(MinimalError) as caught:
        minimal.call("GetItem", {"TableName": "bench-missing", "Key": {"userId": {"S": "x"}}})
    minimal.close()
    assert caught.value.code == "ResourceNotFoundException"
    assert caught.value.status == 400
    assert not caught.value.retryable


def test_an_unmeasured_target_fails_and_says_why():
    unmeasured = Target("async", None, 1.5, ">=", note="async layer: not built yet", source="#12")
    met = Target("sync", 2.5, 2.0, ">=", spread=(2.1, 2.9), source="#12")
    result = ScenarioResult("s", "7. S", {}, [], [], targets=[unmeasured, met])
    results = {"run": {"quick": True}, "total_seconds": 1.0, "scenarios": [result.as_dict()]}
    rows = report.summary_rows(results)
    assert [(r[2], r[3], r[5]) for r in rows] == [
        ("async", "async layer: not built yet", False),
        ("sync", "2.50x (2.10-2.90)", True),
    ]


def test_a_full_run_is_held_to_the_time_limit():
    results = {"run": {"quick": False}, "total_seconds": 601.0, "scenarios": []}
    assert report.summary_rows(results)[-1][-1] is False


@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=30))
def test_a_spread_brackets_its_median(values):
    spread = Spread.of(values)
    assert spread.low <= spread.median <= spread.high
    assert ratio(values, values).median == pytest.approx(1.0)


def test_zipf_draws_are_seeded_and_skewed():
    keys = [f"k{i}" for i in range(1000)]
    first = zipf_sequences(keys, 2000, 2)
    assert first == zipf_sequences(keys, 2000, 2)
    draws = first[0] + first[1]
    assert draws.count("k0") > draws.count("k9") > draws.count("k999")

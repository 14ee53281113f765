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
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import parity, profile, report
from benchmarks.cache_skew import zipf_sequences
from benchmarks.common import (
    MEDIAN_IN_RANGE,
    PROGRESS_TABLE,
    USERS_TABLE,
    WORST,
    Column,
    ScenarioResult,
    Spread,
    Target,
    ratio,
    raw_client,
)
from benchmarks.context import Bench, Scale
from benchmarks.minimal import AsyncMinimalClient, MinimalClient, MinimalError, Signer, plain
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
    assert [(r[2], r[4], r[-1]) for r in rows] == [
        ("async", "async layer: not built yet", False),
        ("sync", "2.50x (2.10-2.90)", True),
    ]


def test_a_target_is_judged_on_its_worst_round_and_names_its_floor():
    crossing = Target("cpu", 1.2, 1.3, "<=", spread=(1.1, 1.4), floor="MinimalClient")
    inside = Target("cpu", 1.2, 1.3, "<=", spread=(1.1, 1.29), floor="MinimalClient")
    speedup = Target("rate", 3.5, 3.0, ">=", spread=(2.9, 4.0), floor="aiobotocore")
    assert (crossing.rule, crossing.judged, crossing.passed) == (WORST, 1.4, False)
    assert (inside.judged, inside.passed) == (1.29, True)
    assert (speedup.rule, speedup.judged, speedup.passed) == (MEDIAN_IN_RANGE, 2.9, False)
    assert Target("memory", 1.2, 1.5, "<=").passed  # one value: judged on it
    result = ScenarioResult("s", "3. S", {}, [], [], targets=[crossing, speedup])
    results = {"run": {"quick": True}, "total_seconds": 1.0, "scenarios": [result.as_dict()]}
    rows = report.summary_rows(results)
    assert [(r[3], r[4], r[5]) for r in rows] == [
        ("MinimalClient", "1.20x (1.10-1.40)", "worst round 1.40x"),
        ("aiobotocore", "3.50x (2.90-4.00)", "median, range inside 2.90x"),
    ]


@given(
    st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=9),
    st.floats(min_value=0.01, max_value=100),
    st.sampled_from(["<=", ">="]),
)
def test_a_target_passes_only_when_every_round_is_within_its_limit(rounds, limit, op):
    spread = Spread.of(rounds)
    target = Target("t", spread.median, limit, op, spread=spread.range)
    within = all(r <= limit for r in rounds) if op == "<=" else all(r >= limit for r in rounds)
    assert target.passed is within


def test_the_floors_signature_is_botocores(bench):
    """The floor's own cached-key SigV4 signs exactly what botocore's SigV4Auth signs."""
    payload = {"TableName": USERS_TABLE, "Key": {"userId": {"S": "u-é"}}}
    for endpoint, region in ((bench.engine_url, "us-east-1"), ("http://LocalHost:80", "eu-west-1")):
        signer = Signer(endpoint, region=region, access_key="AKID", secret_key="s3cr3t")
        for _ in range(2):  # the second request signs with the cached key
            body, headers = signer.sign("GetItem", payload)
            request = AWSRequest(
                method="POST",
                url=signer.url,
                data=body,
                # what botocore's client signs (Content-Length is added after signing)
                headers={k: headers[k] for k in ("Content-Type", "X-Amz-Target")},
            )
            auth = SigV4Auth(Credentials("AKID", "s3cr3t"), "dynamodb", region)
            request.context["timestamp"] = headers["X-Amz-Date"]
            auth._modify_request_before_signing(request)
            canonical = auth.canonical_request(request)
            expected = auth.signature(auth.string_to_sign(request, canonical), request)
            assert headers["Authorization"].endswith(f"Signature={expected}")
            assert headers["Authorization"].startswith(
                f"AWS4-HMAC-SHA256 Credential=AKID/{headers['X-Amz-Date'][:8]}/{region}/dynamodb/"
            )


def test_the_floors_signing_key_is_derived_once_a_day():
    signer = Signer("http://127.0.0.1:8000", secret_key="s")
    signer.sign("GetItem", {}, amz_date="20250101T000000Z")
    first = signer._key
    signer.sign("GetItem", {}, amz_date="20250101T235959Z")
    assert signer._key is first
    signer.sign("GetItem", {}, amz_date="20250102T000000Z")
    assert signer._key is not first


def test_a_figure_is_written_for_every_scenario(tmp_path):
    rows = [{"contender": "ours", "ms": 1.5}, {"contender": "theirs", "ms": 2.5}]
    columns = [Column("contender", "contender", "{}"), Column("ms", "ms", "{:.1f}")]
    met = Target("t", 0.6, 1.0, "<=", spread=(0.5, 0.7), floor="theirs")
    scenarios = [
        ScenarioResult(key, f"{i}. {key}", {}, columns, rows, targets=[met]).as_dict()
        for i, key in enumerate(("first", "query_cpu"))  # query_cpu's own panel lacks its extra
    ]
    run = {"date": "2025-01-01T00:00:00+00:00", "cpus": 2, "python": "3.12", "quick": True}
    written = report.write_charts({"run": run, "scenarios": scenarios}, tmp_path)
    assert [p.name for p in written] == ["first.svg", "query_cpu.svg"]
    assert all(p.read_text(encoding="utf-8").lstrip().startswith("<?xml") for p in written)


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

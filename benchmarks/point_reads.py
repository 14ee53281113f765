"""Scenario 1: point reads, one GetItem at a time, at 5 ms RTT.

Contenders, over the same 1,000 users and the same proxy:

* raw botocore ``get_item`` (default client);
* plain PynamoDB ``Model.get`` (its own client, built from ``Meta``);
* ``UserRepository.get`` with the cache off;
* ``UserRepository.get`` answered from the cache: the default cache
  (``cache_maxsize`` 500, ``cache_ttl_seconds`` 300), reading as many keys as it
  holds, every one loaded once before. Scenario 8 shows the cache on a realistic,
  skewed mix of hits and misses.

The loop runs sequentially in the calling thread, so ``time.thread_time()`` around
it is all the client's CPU work (GC on). Targets: the layer costs at most 10% over
PynamoDB with the cache off (wall and CPU per op), and a cache hit is at least
100x faster than a read that goes to the table.
"""

from __future__ import annotations

import time
from typing import Any

from portchops_models import UserRepository
from portchops_models.metrics import Metrics
from portchops_models.testing.faultproxy import Faults

from .common import (
    RTT,
    USERS_TABLE,
    Column,
    RemoteProxy,
    ScenarioResult,
    Target,
    interleaved,
    median,
    plain_models,
    ratio,
    raw_client,
    use_layer,
)
from .context import Bench

RAW = "botocore get_item"
PYNAMO = "PynamoDB Model.get"
OFF = "UserRepository.get, cache off"
HIT = "UserRepository.get, cache hit"


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    keys = bench.user_ids[: scale.point_ops]
    with RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=1) as proxy:
        endpoint = proxy.endpoint_url
        settings = use_layer(endpoint)
        client = raw_client(endpoint)
        plain_user, _ = plain_models(endpoint)
        cold = UserRepository(cache=None, metrics=Metrics())
        warm = UserRepository(metrics=Metrics())  # the default cache policy
        hit_keys = keys[: settings.cache_maxsize]
        for key in hit_keys:  # fill the cache: every timed read of `warm` is a hit
            warm.get(key)

        def raw_loop() -> None:
            for key in keys:
                client.get_item(TableName=USERS_TABLE, Key={"userId": {"S": key}})["Item"]

        def pynamo_loop() -> None:
            for key in keys:
                plain_user.get(key)

        def off_loop() -> None:
            for key in keys:
                cold.get(key)

        def hit_loop() -> None:
            for _ in range(scale.hit_passes):
                for key in hit_keys:
                    warm.get(key)

        samples = interleaved(
            {RAW: raw_loop, PYNAMO: pynamo_loop, OFF: off_loop, HIT: hit_loop},
            scale.point_rounds,
        )
        hits_before = warm.cache.hits if warm.cache is not None else 0
        hit_loop()
        misses = warm.metrics.snapshot()["cache_misses"]
        hits = (warm.cache.hits if warm.cache is not None else 0) - hits_before

    ops = {RAW: len(keys), PYNAMO: len(keys), OFF: len(keys), HIT: len(hit_keys) * scale.hit_passes}
    per_op: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        per_op[name] = {
            "wall": median([s.wall for s in runs]) / ops[name],
            "cpu": median([s.cpu for s in runs]) / ops[name],
        }
    base = per_op[PYNAMO]
    rows: list[dict[str, Any]] = []
    for name in (RAW, PYNAMO, OFF, HIT):
        m = per_op[name]
        rows.append(
            {
                "contender": name,
                "wall_ms_per_op": m["wall"] * 1e3,
                "cpu_us_per_op": m["cpu"] * 1e6,
                "wall_vs_pynamodb": m["wall"] / base["wall"],
                "cpu_vs_pynamodb": m["cpu"] / base["cpu"],
                "ops_per_round": ops[name],
            }
        )
    wall = {name: [s.wall / ops[name] for s in runs] for name, runs in samples.items()}
    cpu = {name: [s.cpu / ops[name] for s in runs] for name, runs in samples.items()}
    off_wall, off_cpu = ratio(wall[OFF], wall[PYNAMO]), ratio(cpu[OFF], cpu[PYNAMO])
    hit_speedup = ratio(wall[OFF], wall[HIT])
    targets = [
        Target(
            "point read, cache off: wall vs PynamoDB",
            off_wall.median,
            1.10,
            "<=",
            spread=off_wall.range,
        ),
        Target(
            "point read, cache off: CPU vs PynamoDB",
            off_cpu.median,
            1.10,
            "<=",
            spread=off_cpu.range,
        ),
        Target(
            "point read, cache hit: speed-up vs cache off",
            hit_speedup.median,
            100,
            ">=",
            spread=hit_speedup.range,
        ),
    ]
    notes = [
        f"{scale.point_rounds} interleaved rounds of {len(keys)} sequential gets per contender "
        f"(cache hits: {scale.hit_passes} passes per round); medians per op; targets are "
        "medians of round-by-round ratios, with their ranges; GC on.",
        f"Cache hits: the default cache ({settings.cache_maxsize} entries, "
        f"{settings.cache_ttl_seconds:g} s) over {len(hit_keys)} keys; the verification pass "
        f"made {hits} hits; the cache missed {misses} times in total (the fill only).",
    ]
    return ScenarioResult(
        key="point_reads",
        title="1. Point reads (GetItem, 5 ms RTT)",
        setup={"rtt_ms": RTT * 1e3, "ops": len(keys), "rounds": scale.point_rounds},
        columns=[
            Column("contender", "contender", "{}"),
            Column("wall_ms_per_op", "wall ms/op", "{:.3f}"),
            Column("cpu_us_per_op", "client CPU µs/op", "{:.1f}"),
            Column("wall_vs_pynamodb", "wall vs PynamoDB", "{:.3f}x"),
            Column("cpu_vs_pynamodb", "CPU vs PynamoDB", "{:.3f}x"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

"""Scenario 1: point reads, one GetItem at a time, at 5 ms RTT.

Contenders, over the same 1,000 users and the same proxy:

* raw botocore ``get_item`` (default client);
* plain PynamoDB ``Model.get`` (its own client, built from ``Meta``);
* ``UserRepository.get`` with the cache off, and ``AsyncUserRepository.get`` with the
  cache off (awaited one after the other);
* the minimal clients (`benchmarks.minimal`), sync and async, one get after the
  other: the floors of the two rows above (the same SigV4 with a cached signing key,
  one keep-alive connection, one ``json.loads``);
* ``UserRepository.get`` answered from the cache: the default cache
  (``cache_maxsize`` 500, ``cache_ttl_seconds`` 300), reading as many keys as it
  holds, every one loaded once before. Scenario 8 shows the cache on a realistic,
  skewed mix of hits and misses.

The loop runs sequentially in the calling thread, so ``time.thread_time()`` around
it is all the client's CPU work (GC on; the async loops run their event loop in the
same thread). Targets: the layer costs at most 10% over PynamoDB with the cache off
(wall and CPU per op), a cache hit is at least 100x faster than a read that goes to
the table, and (issue 25) CPU per get at most 1.3x the minimal client's, sync against
`MinimalClient` and async against `AsyncMinimalClient`, judged on the worst round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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
from .concurrent_gets import _async_layer
from .context import Bench
from .minimal import AsyncMinimalClient, MinimalClient

RAW = "botocore get_item"
PYNAMO = "PynamoDB Model.get"
OFF = "UserRepository.get, cache off"
HIT = "UserRepository.get, cache hit"
ASYNC_OFF = "AsyncUserRepository.get, cache off"
FLOOR = "minimal client get_item"
FLOOR_ASYNC = "minimal async client get_item"
ORDER = (RAW, PYNAMO, OFF, HIT, ASYNC_OFF, FLOOR, FLOOR_ASYNC)


def floor_of(name: str) -> str:
    """The floor of a row: the async minimal client for the async row, else the sync one."""
    return FLOOR_ASYNC if name in (ASYNC_OFF, FLOOR_ASYNC) else FLOOR


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

        minimal = MinimalClient(endpoint, pool=1)
        minimal_async = AsyncMinimalClient(endpoint, pool=1)
        async_layer, why_not = _async_layer()
        loop = asyncio.new_event_loop()
        raw_keys = [{"userId": {"S": key}} for key in keys]

        def floor_loop() -> None:
            for key in raw_keys:
                minimal.get_item(USERS_TABLE, key)

        async def floor_gets() -> None:
            for key in raw_keys:
                await minimal_async.get_item(USERS_TABLE, key)

        async def async_gets() -> None:
            for key in keys:
                await async_layer.get(key)

        contenders: dict[str, Callable[[], Any]] = {
            RAW: raw_loop,
            PYNAMO: pynamo_loop,
            OFF: off_loop,
            HIT: hit_loop,
            FLOOR: floor_loop,
            FLOOR_ASYNC: lambda: loop.run_until_complete(floor_gets()),
        }
        if async_layer is not None:
            try:
                loop.run_until_complete(async_gets())
                contenders[ASYNC_OFF] = lambda: loop.run_until_complete(async_gets())
            except Exception as err:  # a half-built layer: say so, measure nothing
                why_not = f"async layer: failed ({type(err).__name__}: {err})"
        try:
            samples = interleaved(contenders, scale.point_rounds)
        finally:
            loop.run_until_complete(minimal_async.close())
            loop.run_until_complete(loop.shutdown_asyncgens())  # closes the layer's session
            loop.close()
            minimal.close()
        hits_before = warm.cache.hits if warm.cache is not None else 0
        hit_loop()
        misses = warm.metrics.snapshot()["cache_misses"]
        hits = (warm.cache.hits if warm.cache is not None else 0) - hits_before

    ops = {name: len(keys) for name in ORDER}
    ops[HIT] = len(hit_keys) * scale.hit_passes
    per_op: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        per_op[name] = {
            "wall": median([s.wall for s in runs]) / ops[name],
            "cpu": median([s.cpu for s in runs]) / ops[name],
        }
    base = per_op[PYNAMO]
    wall = {name: [s.wall / ops[name] for s in runs] for name, runs in samples.items()}
    cpu = {name: [s.cpu / ops[name] for s in runs] for name, runs in samples.items()}

    def cpu_of(name: str) -> list[float]:
        return cpu[name]

    async_cpu = ratio(cpu[ASYNC_OFF], cpu[FLOOR_ASYNC]) if ASYNC_OFF in cpu else None
    sync_cpu = ratio(cpu[OFF], cpu[FLOOR])
    rows: list[dict[str, Any]] = []
    for name in ORDER:
        if name not in per_op:
            rows.append({"contender": name, "note": why_not})
            continue
        m = per_op[name]
        rows.append(
            {
                "contender": name,
                "wall_ms_per_op": m["wall"] * 1e3,
                "cpu_us_per_op": m["cpu"] * 1e6,
                "wall_vs_pynamodb": m["wall"] / base["wall"],
                "cpu_vs_pynamodb": m["cpu"] / base["cpu"],
                "floor": floor_of(name),
                "cpu_vs_floor": ratio(cpu_of(name), cpu_of(floor_of(name))).times(),
                "ops_per_round": ops[name],
            }
        )
    off_wall, off_cpu = ratio(wall[OFF], wall[PYNAMO]), ratio(cpu[OFF], cpu[PYNAMO])
    hit_speedup = ratio(wall[OFF], wall[HIT])
    targets = [
        Target(
            "point read, cache off: wall",
            off_wall.median,
            1.10,
            "<=",
            spread=off_wall.range,
            floor=PYNAMO,
        ),
        Target(
            "point read, cache off: CPU",
            off_cpu.median,
            1.10,
            "<=",
            spread=off_cpu.range,
            floor=PYNAMO,
        ),
        Target(
            "point read, cache hit: speed-up",
            hit_speedup.median,
            100,
            ">=",
            spread=hit_speedup.range,
            floor=OFF,
        ),
        Target(
            "sequential get, cache off: CPU",
            sync_cpu.median,
            1.3,
            "<=",
            spread=sync_cpu.range,
            source="#25",
            floor="MinimalClient",
        ),
        Target(
            "sequential async get, cache off: CPU",
            async_cpu.median if async_cpu else None,
            1.3,
            "<=",
            spread=async_cpu.range if async_cpu else None,
            note="" if async_cpu else why_not,
            source="#25",
            floor="AsyncMinimalClient",
        ),
    ]
    notes = [
        f"{scale.point_rounds} interleaved rounds of {len(keys)} sequential gets per contender "
        f"(cache hits: {scale.hit_passes} passes per round); medians per op; targets are "
        "judged on round-by-round ratios (costs on the worst round, speed-ups on the median "
        "with the whole range); CPU of the calling thread; GC on.",
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
            Column("floor", "floor", "{}"),
            Column("cpu_vs_floor", "CPU vs floor", "{}"),
            Column("note", "note", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

"""Scenario 7: 200 concurrent gets at 5 ms RTT, on threads and on asyncio.

Each sample is a few bursts of 200 ``GetItem`` calls (different users, all in flight
at once), through the same proxy, by six contenders:

* ``UserRepository(cache=None).get`` on 50 threads (the layer's default pool of 50);
* ``AsyncUserRepository(cache=None).get`` under ``asyncio.gather``;
* raw botocore ``get_item`` on 50 threads, its pool sized to 50 connections;
* aiobotocore ``get_item`` under ``asyncio.gather``, its pool sized to 50 too;
* the minimal client (`benchmarks.minimal`) on 50 threads and under ``gather``.

Throughput is gets per second of wall time; client CPU per get is the process's
CPU time (every thread; the engine and the proxy run elsewhere) over the gets.
Targets (issue 12): the async layer at least 1.5x aiobotocore's throughput, the
layer on threads at least 2x raw botocore's, and the layer's CPU per get at most
1.5x the minimal client's on the same threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Any

from portchops_models import UserRepository
from portchops_models.metrics import Metrics
from portchops_models.testing.faultproxy import Faults

from .common import (
    FANOUT,
    REGION,
    RTT,
    USERS_TABLE,
    Column,
    RemoteProxy,
    ScenarioResult,
    Spread,
    Target,
    interleaved,
    ratio,
    raw_client,
    use_layer,
)
from .context import Bench
from .minimal import AsyncMinimalClient, MinimalClient

LAYER = "UserRepository.get, 50 threads"
LAYER_ASYNC = "AsyncUserRepository.get, gather"
RAW = "botocore get_item, 50 threads"
AIO = "aiobotocore get_item, gather"
MINIMAL = "minimal client, 50 threads"
MINIMAL_ASYNC = "minimal async client, gather"
ORDER = (LAYER, LAYER_ASYNC, RAW, AIO, MINIMAL, MINIMAL_ASYNC)
NOT_BUILT = "async layer: not built yet"


def _async_layer() -> tuple[Any, str]:
    """``AsyncUserRepository`` if `portchops_models.aio` exists, else (None, why not)."""
    try:
        from portchops_models.aio import AsyncUserRepository
    except ImportError as err:
        return None, f"{NOT_BUILT} ({err})"
    try:
        return AsyncUserRepository(cache=None, metrics=Metrics()), ""
    except Exception as err:  # a half-built layer: say so, measure nothing
        return None, f"async layer: not usable yet ({type(err).__name__}: {err})"


async def _aiobotocore_client(stack: AsyncExitStack, endpoint_url: str) -> Any:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    return await stack.enter_async_context(
        get_session().create_client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=AioConfig(max_pool_connections=FANOUT),
        )
    )


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    keys = bench.users(max(scale.concurrent_gets, 1))[: scale.concurrent_gets]
    raw_keys = [{"userId": {"S": k}} for k in keys]
    bursts = scale.concurrent_bursts
    gets = len(keys) * bursts
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    with (
        RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=7) as proxy,
        ThreadPoolExecutor(max_workers=FANOUT, thread_name_prefix="bench-get") as pool,
    ):
        endpoint = proxy.endpoint_url
        use_layer(endpoint)
        layer = UserRepository(cache=None, metrics=Metrics())
        client = raw_client(endpoint, pool=FANOUT)
        minimal = MinimalClient(endpoint, pool=FANOUT)
        minimal_async = AsyncMinimalClient(endpoint, pool=FANOUT)
        async_layer, why_not = _async_layer()
        aio = loop.run_until_complete(_aiobotocore_client(stack, endpoint))

        def threads(get: Callable[[Any], Any], args: list[Any]) -> Callable[[], int]:
            def burst() -> int:
                found = 0
                for _ in range(bursts):
                    found += sum(1 for r in pool.map(get, args) if r is not None)
                return found

            return burst

        def gathered(get: Callable[[Any], Awaitable[Any]], args: list[Any]) -> Callable[[], int]:
            async def all_at_once() -> int:
                found = 0
                for _ in range(bursts):
                    answers = await asyncio.gather(*(get(a) for a in args))
                    found += sum(1 for r in answers if r is not None)
                return found

            return lambda: loop.run_until_complete(all_at_once())

        async def aio_get(key: dict[str, Any]) -> Any:
            return (await aio.get_item(TableName=USERS_TABLE, Key=key)).get("Item")

        contenders: dict[str, Callable[[], int]] = {
            LAYER: threads(layer.get, keys),
            RAW: threads(
                lambda k: client.get_item(TableName=USERS_TABLE, Key=k).get("Item"), raw_keys
            ),
            AIO: gathered(aio_get, raw_keys),
            MINIMAL: threads(lambda k: minimal.get_item(USERS_TABLE, k), raw_keys),
            MINIMAL_ASYNC: gathered(lambda k: minimal_async.get_item(USERS_TABLE, k), raw_keys),
        }
        if async_layer is not None:
            contenders[LAYER_ASYNC] = gathered(async_layer.get, keys)
        try:
            if LAYER_ASYNC in contenders:
                try:
                    contenders[LAYER_ASYNC]()
                except Exception as err:  # a half-built layer: say so, measure nothing
                    why_not = f"async layer: failed ({type(err).__name__}: {err})"
                    del contenders[LAYER_ASYNC]
            found = {name: fn() for name, fn in contenders.items()}
            samples = interleaved(contenders, scale.concurrent_rounds, warmup=0)  # warmed above
        finally:
            loop.run_until_complete(minimal_async.close())
            loop.run_until_complete(stack.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            minimal.close()

    rate = {n: [gets / s.wall for s in runs] for n, runs in samples.items()}
    cpu = {n: [s.proc_cpu / gets for s in runs] for n, runs in samples.items()}
    rows: list[dict[str, Any]] = []
    for name in ORDER:
        if name not in samples:
            rows.append({"contender": name, "note": why_not or NOT_BUILT})
            continue
        gets_per_s = Spread.of(rate[name])
        per_get = Spread.of(cpu[name])
        rows.append(
            {
                "contender": name,
                "gets_per_s": gets_per_s.median,
                "gets_per_s_range": f"{gets_per_s.low:,.0f}-{gets_per_s.high:,.0f}",
                "cpu_us_per_get": per_get.median * 1e6,
                "cpu_vs_minimal": ratio(cpu[name], cpu[MINIMAL]).times(),
                "found": found[name],
                "note": "",
            }
        )
    vs_raw = ratio(rate[LAYER], rate[RAW])
    cpu_vs_min = ratio(cpu[LAYER], cpu[MINIMAL])
    if LAYER_ASYNC in samples:
        vs_aio: Spread | None = ratio(rate[LAYER_ASYNC], rate[AIO])
    else:
        vs_aio = None
    targets = [
        Target(
            f"{len(keys)} concurrent gets: async layer vs aiobotocore gather, throughput",
            vs_aio.median if vs_aio else None,
            1.5,
            ">=",
            spread=vs_aio.range if vs_aio else None,
            note="" if vs_aio else (why_not or NOT_BUILT),
            source="#12",
        ),
        Target(
            f"{len(keys)} concurrent gets: layer on threads vs raw botocore on threads, throughput",
            vs_raw.median,
            2.0,
            ">=",
            spread=vs_raw.range,
            source="#12",
        ),
        Target(
            "client CPU per get: layer vs minimal client (50 threads)",
            cpu_vs_min.median,
            1.5,
            "<=",
            spread=cpu_vs_min.range,
            source="#12",
        ),
    ]
    notes = [
        f"{scale.concurrent_rounds} interleaved rounds of {bursts} burst(s) of {len(keys)} "
        f"concurrent gets per contender; medians, ranges across rounds; {FANOUT} threads and "
        f"{FANOUT} pooled connections for every contender; GC on.",
        f"Async minimal client vs aiobotocore: "
        f"{ratio(rate[MINIMAL_ASYNC], rate[AIO]).times()} the throughput, "
        f"{ratio(cpu[MINIMAL_ASYNC], cpu[AIO]).times()} the CPU per get.",
    ]
    if LAYER_ASYNC in samples:
        notes.append(
            "Async layer CPU per get vs minimal async client: "
            f"{ratio(cpu[LAYER_ASYNC], cpu[MINIMAL_ASYNC]).times()}."
        )
    else:
        notes.append(why_not)
    if len(set(found.values())) != 1:
        notes.append(f"Contenders found different item counts: {found}")
    return ScenarioResult(
        key="concurrent_gets",
        title=f"7. {len(keys)} concurrent gets (5 ms RTT): threads and asyncio",
        setup={
            "rtt_ms": RTT * 1e3,
            "concurrent": len(keys),
            "bursts": bursts,
            "threads": FANOUT,
            "rounds": scale.concurrent_rounds,
        },
        columns=[
            Column("contender", "contender", "{}"),
            Column("gets_per_s", "gets/s", "{:,.0f}"),
            Column("gets_per_s_range", "range", "{}"),
            Column("cpu_us_per_get", "client CPU µs/get", "{:,.0f}"),
            Column("cpu_vs_minimal", "CPU vs minimal threads", "{}"),
            Column("note", "note", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

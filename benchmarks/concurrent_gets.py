"""Scenario 7: 200 concurrent gets at 5 ms RTT, on threads and on asyncio.

Each sample is a few bursts of 200 gets (different users, all in flight at once),
through the same proxy, by seven contenders:

* ``UserRepository(cache=None).get`` on 50 threads (the layer's default pool of 50);
* ``AsyncUserRepository(cache=None).get`` under ``asyncio.gather``;
* ``AsyncUserRepository(cache=None, coalesce=True).get`` under ``gather``: gets of one
  event-loop tick go out as BatchGetItem chunks of 100 (issue 25);
* raw botocore ``get_item`` on 50 threads, its pool sized to 50 connections;
* aiobotocore ``get_item`` under ``asyncio.gather``, its pool sized to 50 too;
* the minimal client (`benchmarks.minimal`) on 50 threads and under ``gather``.

Throughput is gets per second of wall time; client CPU per get is the process's
CPU time (every thread; the engine and the proxy run elsewhere) over the gets. Each
row's CPU is set against its floor: the minimal client on the same 50 threads for
threaded rows, the minimal async client under ``gather`` for async rows. Requests
per burst are counted by the layer's `Metrics`, in a pass of their own.
Targets: (issue 12) the async layer at least 1.5x aiobotocore's throughput, the
layer on threads at least 2x raw botocore's; (issue 25) the layer's CPU per get at
most 1.3x its floor's, on threads and under ``gather``, and coalesced gets at least
3x aiobotocore's throughput and 1.5x the async layer's without coalescing.
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
COALESCED = "AsyncUserRepository(coalesce=True).get, gather"
RAW = "botocore get_item, 50 threads"
AIO = "aiobotocore get_item, gather"
MINIMAL = "minimal client, 50 threads"
MINIMAL_ASYNC = "minimal async client, gather"
ORDER = (LAYER, LAYER_ASYNC, COALESCED, RAW, AIO, MINIMAL, MINIMAL_ASYNC)
ASYNC_ROWS = frozenset({LAYER_ASYNC, COALESCED, AIO, MINIMAL_ASYNC})
NOT_BUILT = "async layer: not built yet"
NO_COALESCE = "coalesce=True: not available yet"


def floor_of(name: str) -> str:
    """The floor a row's CPU is set against: the minimal client of the same concurrency."""
    return MINIMAL_ASYNC if name in ASYNC_ROWS else MINIMAL


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


def _coalescing_layer() -> tuple[Any, str]:
    """``AsyncUserRepository(coalesce=True)`` if the layer takes the option, else (None, why)."""
    try:
        from portchops_models.aio import AsyncUserRepository

        return AsyncUserRepository(cache=None, metrics=Metrics(), coalesce=True), ""
    except (ImportError, TypeError) as err:
        return None, f"{NO_COALESCE} ({type(err).__name__}: {err})"
    except Exception as err:  # a half-built option: say so, measure nothing
        return None, f"coalesce=True: not usable yet ({type(err).__name__}: {err})"


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
        coalescing, why_not_coalesced = _coalescing_layer()
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
        if coalescing is not None:
            contenders[COALESCED] = gathered(coalescing.get, keys)
        requests: dict[str, float] = {}
        try:
            for name, repo in ((LAYER_ASYNC, async_layer), (COALESCED, coalescing)):
                if name in contenders:
                    try:
                        contenders[name]()
                        repo.metrics.reset()
                        contenders[name]()
                        requests[name] = repo.metrics.snapshot()["requests"] / bursts
                    except Exception as err:  # a half-built layer: say so, measure nothing
                        failed = f"failed ({type(err).__name__}: {err})"
                        if name == LAYER_ASYNC:
                            why_not = f"async layer: {failed}"
                        else:
                            why_not_coalesced = f"coalesce=True: {failed}"
                        del contenders[name]
            layer.metrics.reset()
            contenders[LAYER]()
            requests[LAYER] = layer.metrics.snapshot()["requests"] / bursts
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
            note = why_not_coalesced if name == COALESCED else why_not
            rows.append({"contender": name, "floor": floor_of(name), "note": note or NOT_BUILT})
            continue
        gets_per_s = Spread.of(rate[name])
        per_get = Spread.of(cpu[name])
        rows.append(
            {
                "contender": name,
                "gets_per_s": gets_per_s.median,
                "gets_per_s_range": f"{gets_per_s.low:,.0f}-{gets_per_s.high:,.0f}",
                "cpu_us_per_get": per_get.median * 1e6,
                "floor": floor_of(name),
                "cpu_vs_floor": ratio(cpu[name], cpu[floor_of(name)]).times(),
                "requests_per_burst": requests.get(name),
                "found": found[name],
                "note": "",
            }
        )

    def measured(a: str, b: str, metric: dict[str, list[float]]) -> Spread | None:
        return ratio(metric[a], metric[b]) if a in samples and b in samples else None

    def target(
        name: str, spread: Spread | None, limit: float, op: str, floor: str, why: str, source: str
    ) -> Target:
        return Target(
            name,
            spread.median if spread else None,
            limit,
            op,
            spread=spread.range if spread else None,
            note="" if spread else (why or NOT_BUILT),
            source=source,
            floor=floor,
        )

    n = len(keys)
    coalesced_why = why_not_coalesced if async_layer is not None else why_not
    targets = [
        target(
            f"{n} concurrent gets: async layer, throughput",
            measured(LAYER_ASYNC, AIO, rate),
            1.5,
            ">=",
            AIO,
            why_not,
            "#12",
        ),
        target(
            f"{n} concurrent gets: layer on threads, throughput",
            measured(LAYER, RAW, rate),
            2.0,
            ">=",
            RAW,
            "",
            "#12",
        ),
        target(
            "client CPU per get: layer on 50 threads",
            measured(LAYER, MINIMAL, cpu),
            1.3,
            "<=",
            MINIMAL,
            "",
            "#25",
        ),
        target(
            "client CPU per get: async layer under gather",
            measured(LAYER_ASYNC, MINIMAL_ASYNC, cpu),
            1.3,
            "<=",
            MINIMAL_ASYNC,
            why_not,
            "#25",
        ),
        target(
            f"{n} concurrent gets: coalesced, throughput",
            measured(COALESCED, AIO, rate),
            3.0,
            ">=",
            AIO,
            why_not_coalesced or why_not,
            "#25",
        ),
        target(
            f"{n} concurrent gets: coalesced vs uncoalesced, throughput",
            measured(COALESCED, LAYER_ASYNC, rate),
            1.5,
            ">=",
            LAYER_ASYNC,
            coalesced_why,
            "#25",
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
            "Async layer CPU per get vs the threaded minimal client (the floor issue 12 "
            f"used): {ratio(cpu[LAYER_ASYNC], cpu[MINIMAL]).times()}."
        )
    else:
        notes.append(why_not)
    if requests:
        counted = ", ".join(f"{name} {count:g}" for name, count in requests.items())
        notes.append(f"Requests per burst of {n} gets, counted by the layer's Metrics: {counted}.")
    if COALESCED not in samples:
        notes.append(why_not_coalesced or why_not)
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
            Column("floor", "floor", "{}"),
            Column("cpu_vs_floor", "CPU vs floor", "{}"),
            Column("requests_per_burst", "requests/burst", "{:,.0f}"),
            Column("note", "note", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

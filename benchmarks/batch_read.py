"""Scenario 2: batch reads of 100, 1,000 and 10,000 keys at 5 ms RTT.

Contenders, over the same keys and the same proxy, at each size N:

* ``UserRepository.batch_get`` with the cache off (typed ``User`` objects out);
* plain PynamoDB ``Model.batch_get`` (it sends its chunks one after the other);
* raw botocore ``batch_get_item``, the chunks of 100 fanned out by hand over a thread
  pool, one thread and one pooled connection per chunk up to 50 (the ideal fan-out
  with botocore's own parser);
* the minimal client (`benchmarks.minimal`), fanned out the same way: the floor.

Wall and client CPU (the whole process: every thread) are medians of interleaved
rounds, with ranges. Peak memory is measured in a separate pass per contender and
size, under ``tracemalloc`` (the peak growth while the call runs, its result
included).

Targets: at 1,000 keys at least 2.5x faster than PynamoDB and within 1.15x of the
botocore fan-out's wall; issue 12's: peak memory at 10,000 keys at most 1.5x
PynamoDB's; issue 25's: CPU at 1,000 and 10,000 keys at most 1.5x the minimal
client's fan-out, judged on the worst round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from portchops_models import UserRepository
from portchops_models.metrics import Metrics
from portchops_models.testing.faultproxy import Faults

from .common import (
    FANOUT,
    RTT,
    USERS_TABLE,
    Column,
    RemoteProxy,
    ScenarioResult,
    Target,
    interleaved,
    median,
    peak_growth,
    plain_models,
    ratio,
    raw_client,
    use_layer,
)
from .context import Bench
from .minimal import MinimalClient

OURS = "UserRepository.batch_get"
PYNAMO = "PynamoDB Model.batch_get"
IDEAL = "botocore + thread pool (ideal fan-out)"
MINIMAL = "minimal client + thread pool"
ORDER = (OURS, PYNAMO, IDEAL, MINIMAL)
CHUNK = 100
MIB = 1024 * 1024


def _chunk_keys(keys: list[str]) -> list[list[dict[str, Any]]]:
    return [[{"userId": {"S": k}} for k in keys[i : i + CHUNK]] for i in range(0, len(keys), CHUNK)]


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    sizes = scale.batch_sizes
    all_keys = bench.users(max(sizes))
    small, middle, large = sizes[0], sizes[len(sizes) // 2], sizes[-1]
    rows: list[dict[str, Any]] = []
    per_size: dict[int, dict[str, Any]] = {}
    with (
        RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=2) as proxy,
        ThreadPoolExecutor(max_workers=FANOUT, thread_name_prefix="bench-fanout") as pool,
    ):
        endpoint = proxy.endpoint_url
        use_layer(endpoint)
        client = raw_client(endpoint, pool=FANOUT)
        minimal = MinimalClient(endpoint, pool=FANOUT)
        plain_user, _ = plain_models(endpoint)
        repo = UserRepository(cache=None, metrics=Metrics())

        def botocore_chunk(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            request: dict[str, Any] = {USERS_TABLE: {"Keys": chunk}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(USERS_TABLE, []))
                request = response.get("UnprocessedKeys") or {}
            return items

        def minimal_chunk(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return minimal.batch_get_chunk(USERS_TABLE, chunk)

        for n, rounds in zip(sizes, scale.batch_rounds, strict=True):
            keys = all_keys[:n]
            chunks = _chunk_keys(keys)

            def fanned(
                fetch: Callable[[list[dict[str, Any]]], list[Any]],
                chunks: list[list[dict[str, Any]]] = chunks,
            ) -> Callable[[], Any]:
                def read() -> list[Any]:
                    return [item for items in pool.map(fetch, chunks) for item in items]

                return read

            contenders: dict[str, Callable[[], Any]] = {
                OURS: lambda keys=keys: repo.batch_get(keys),
                PYNAMO: lambda keys=keys: list(plain_user.batch_get(keys)),
                IDEAL: fanned(botocore_chunk),
                MINIMAL: fanned(minimal_chunk),
            }
            counts = {name: len(fn()) for name, fn in contenders.items()}
            samples = interleaved(contenders, rounds, warmup=0)  # the count above warmed up
            memory = {name: peak_growth(fn)[0] for name, fn in contenders.items()}
            wall = {name: [s.wall for s in runs] for name, runs in samples.items()}
            cpu = {name: [s.proc_cpu for s in runs] for name, runs in samples.items()}
            per_size[n] = {"wall": wall, "cpu": cpu, "memory": memory, "counts": counts}
            for name in ORDER:
                w, c = median(wall[name]), median(cpu[name])
                rows.append(
                    {
                        "contender": name,
                        "keys": n,
                        "items": counts[name],
                        "wall_ms": w * 1e3,
                        "client_cpu_ms": c * 1e3,
                        "cpu_vs_minimal": ratio(cpu[name], cpu[MINIMAL]).times(),
                        "speedup_vs_pynamodb": ratio(wall[PYNAMO], wall[name]).median,
                        "peak_mib": memory[name] / MIB,
                        "memory_vs_pynamodb": memory[name] / memory[PYNAMO],
                    }
                )
        minimal.close()

    mid = per_size[middle]
    speedup = ratio(mid["wall"][PYNAMO], mid["wall"][OURS])
    vs_ideal = ratio(mid["wall"][OURS], mid["wall"][IDEAL])
    cpu_targets = []
    for n in sizes[len(sizes) // 2 :]:
        cpu_vs_min = ratio(per_size[n]["cpu"][OURS], per_size[n]["cpu"][MINIMAL])
        cpu_targets.append(
            Target(
                f"batch_get {n:,}: client CPU",
                cpu_vs_min.median,
                1.5,
                "<=",
                spread=cpu_vs_min.range,
                source="#25",
                floor=MINIMAL,
            )
        )
    big = per_size[large]["memory"]
    targets = [
        Target(
            f"batch read {middle:,}: speed-up",
            speedup.median,
            2.5,
            ">=",
            spread=speedup.range,
            floor=PYNAMO,
        ),
        Target(
            f"batch read {middle:,}: wall",
            vs_ideal.median,
            1.15,
            "<=",
            spread=vs_ideal.range,
            floor=IDEAL,
        ),
        *cpu_targets,
        Target(
            f"batch_get {large:,}: peak memory",
            big[OURS] / big[PYNAMO],
            1.5,
            "<=",
            source="#12",
            floor=PYNAMO,
        ),
    ]
    notes = [
        f"Rounds per size {dict(zip(sizes, scale.batch_rounds, strict=True))}, interleaved; "
        "medians and (min-max) ranges across rounds; GC on. Client CPU is "
        "time.process_time() of the client process (every thread); the engine and the "
        "proxy run in processes of their own.",
        f"Fan-outs: one thread and one pooled connection per chunk of {CHUNK}, at most "
        f"{FANOUT} (the layer's default pool). Peak memory: one run per contender and size "
        "under tracemalloc, apart from the timed rounds.",
        f"At {small:,} keys (one request) the layer's CPU is "
        f"{ratio(per_size[small]['cpu'][OURS], per_size[small]['cpu'][MINIMAL]).times()} the "
        f"minimal client's; at {large:,}, "
        f"{ratio(per_size[large]['cpu'][OURS], per_size[large]['cpu'][MINIMAL]).times()}.",
    ]
    for n, data in per_size.items():
        if len(set(data["counts"].values())) != 1:
            notes.append(f"At {n:,} keys contenders returned different counts: {data['counts']}")
    return ScenarioResult(
        key="batch_read",
        title=f"2. Batch reads of {' / '.join(f'{n:,}' for n in sizes)} keys (5 ms RTT)",
        setup={
            "rtt_ms": RTT * 1e3,
            "sizes": list(sizes),
            "rounds": list(scale.batch_rounds),
            "threads": FANOUT,
        },
        columns=[
            Column("contender", "contender", "{}"),
            Column("keys", "keys", "{:,}"),
            Column("wall_ms", "wall ms", "{:.1f}"),
            Column("client_cpu_ms", "client CPU ms", "{:.1f}"),
            Column("cpu_vs_minimal", "CPU vs minimal", "{}"),
            Column("speedup_vs_pynamodb", "speed-up vs PynamoDB", "{:.2f}x"),
            Column("peak_mib", "peak MiB", "{:.2f}"),
            Column("memory_vs_pynamodb", "memory vs PynamoDB", "{:.2f}x"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"middle": middle, "large": large},
    )

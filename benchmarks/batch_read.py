"""Scenario 2: a batch read of 1,000 keys at 5 ms RTT.

Contenders, over the same keys and the same proxy:

* raw botocore, the 10 chunks of 100 keys one after the other;
* an ideal fan-out written by hand with raw botocore and a thread pool (10 threads,
  one per chunk, pool and connections warm): the floor for this engine;
* plain PynamoDB ``Model.batch_get`` (it sends its chunks one after the other);
* ``UserRepository.batch_get`` with the cache off (typed ``User`` objects out).

Targets: at least 2.5x faster than PynamoDB, and within 1.15x of the ideal fan-out.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
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
    raw_client,
    use_layer,
)
from .context import Bench

SERIAL = "botocore, serial chunks"
IDEAL = "botocore + thread pool (ideal fan-out)"
PYNAMO = "PynamoDB Model.batch_get"
OURS = "UserRepository.batch_get"
CHUNK = 100


def _chunk_keys(keys: list[str]) -> list[list[dict[str, Any]]]:
    return [[{"userId": {"S": k}} for k in keys[i : i + CHUNK]] for i in range(0, len(keys), CHUNK)]


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    keys = bench.user_ids[: scale.batch_keys]
    threads = (len(keys) + CHUNK - 1) // CHUNK
    with (
        RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=2) as proxy,
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ideal") as pool,
    ):
        endpoint = proxy.endpoint_url
        use_layer(endpoint)
        client = raw_client(endpoint, pool=threads)
        plain_user, _ = plain_models(endpoint)
        repo = UserRepository(cache=None, metrics=Metrics())

        def fetch(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            request: dict[str, Any] = {USERS_TABLE: {"Keys": chunk}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(USERS_TABLE, []))
                request = response.get("UnprocessedKeys") or {}
            return items

        def serial() -> int:
            return sum(len(fetch(chunk)) for chunk in _chunk_keys(keys))

        def ideal() -> int:
            return sum(len(items) for items in pool.map(fetch, _chunk_keys(keys)))

        def pynamo() -> int:
            return len(list(plain_user.batch_get(keys)))

        def ours() -> int:
            return len(repo.batch_get(keys))

        contenders = {SERIAL: serial, IDEAL: ideal, PYNAMO: pynamo, OURS: ours}
        counts = {name: fn() for name, fn in contenders.items()}
        samples = interleaved(contenders, scale.batch_rounds)

    wall = {name: median([s.wall for s in runs]) for name, runs in samples.items()}
    cpu = {name: median([s.proc_cpu for s in runs]) for name, runs in samples.items()}
    rows = [
        {
            "contender": name,
            "items": counts[name],
            "wall_ms": wall[name] * 1e3,
            "client_cpu_ms": cpu[name] * 1e3,
            "vs_ideal": wall[name] / wall[IDEAL],
            "speedup_vs_pynamodb": wall[PYNAMO] / wall[name],
        }
        for name in (SERIAL, IDEAL, PYNAMO, OURS)
    ]
    targets = [
        Target("batch read: speed-up vs PynamoDB", wall[PYNAMO] / wall[OURS], 2.5, ">="),
        Target("batch read: wall vs ideal fan-out", wall[OURS] / wall[IDEAL], 1.15, "<="),
    ]
    notes = [
        f"{scale.batch_rounds} interleaved rounds; median wall per batch of {len(keys)} keys. "
        "Client CPU is time.process_time() of the client process (every thread); the engine "
        "and the proxy run in processes of their own.",
    ]
    if len(set(counts.values())) != 1:
        notes.append(f"Contenders returned different item counts: {counts}")
    return ScenarioResult(
        key="batch_read",
        title="2. Batch read of 1,000 keys (5 ms RTT)",
        setup={
            "rtt_ms": RTT * 1e3,
            "keys": len(keys),
            "threads": threads,
            "rounds": scale.batch_rounds,
        },
        columns=[
            Column("contender", "contender", "{}"),
            Column("wall_ms", "wall ms", "{:.1f}"),
            Column("client_cpu_ms", "client CPU ms", "{:.1f}"),
            Column("vs_ideal", "vs ideal", "{:.2f}x"),
            Column("speedup_vs_pynamodb", "speed-up vs PynamoDB", "{:.2f}x"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

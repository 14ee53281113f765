"""Scenario 3: client CPU of a typed query of 1,000 items in one partition.

The engine (dynalite) runs in its own process and is called directly (no added
latency), so ``time.thread_time()`` of the calling thread is the client's work only:
building the request, botocore's HTTP and parsing, and turning items into objects.

Contenders: the botocore paginator (plain dicts out, the reference), plain PynamoDB
``Model.query`` (models out) and ``UserProgressRepository.iter_query`` (typed
``UserProgress`` out). Target: the layer's CPU at most 1.3x the botocore paginator's.
"""

from __future__ import annotations

import time

from portchops_models import UserProgress, UserProgressRepository
from portchops_models.metrics import Metrics

from .common import (
    PROGRESS_TABLE,
    Column,
    ScenarioResult,
    Target,
    interleaved,
    median,
    plain_models,
    raw_client,
    use_layer,
)
from .context import Bench

PAGINATOR = "botocore query paginator (dicts)"
PYNAMO = "PynamoDB Model.query"
OURS = "UserProgressRepository.iter_query"
PARTITION = "q-user"


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    n = scale.query_items
    endpoint = bench.engine_url
    use_layer(endpoint)
    repo = UserProgressRepository(cache=None, metrics=Metrics())
    repo.batch_save(
        UserProgress(user_id=PARTITION, lesson_id=f"lesson-{i:05d}", score=i % 100, attempts=i % 7)
        for i in range(n)
    )
    client = raw_client(endpoint)
    paginator = client.get_paginator("query")
    _, plain_progress = plain_models(endpoint)

    def botocore_pages() -> int:
        count = 0
        for page in paginator.paginate(
            TableName=PROGRESS_TABLE,
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": PARTITION}},
        ):
            count += len(page["Items"])
        return count

    def pynamo() -> int:
        return sum(1 for _ in plain_progress.query(PARTITION))

    def ours() -> int:
        return sum(1 for _ in repo.iter_query(PARTITION))

    contenders = {PAGINATOR: botocore_pages, PYNAMO: pynamo, OURS: ours}
    counts = {name: fn() for name, fn in contenders.items()}
    samples = interleaved(contenders, scale.query_rounds, warmup=2)
    cpu = {name: median([s.cpu for s in runs]) for name, runs in samples.items()}
    wall = {name: median([s.wall for s in runs]) for name, runs in samples.items()}
    rows = [
        {
            "contender": name,
            "items": counts[name],
            "cpu_ms": cpu[name] * 1e3,
            "cpu_us_per_item": cpu[name] / max(counts[name], 1) * 1e6,
            "wall_ms": wall[name] * 1e3,
            "cpu_vs_paginator": cpu[name] / cpu[PAGINATOR],
        }
        for name in (PAGINATOR, PYNAMO, OURS)
    ]
    notes = [
        f"{scale.query_rounds} interleaved rounds; median CPU of the calling thread "
        "(time.thread_time) per full query; dynalite called directly, no added latency.",
    ]
    if len(set(counts.values())) != 1:
        notes.append(f"Contenders returned different item counts: {counts}")
    return ScenarioResult(
        key="query_cpu",
        title="3. Query of 1,000 items in one partition: client CPU",
        setup={"rtt_ms": 0.0, "items": n, "rounds": scale.query_rounds},
        columns=[
            Column("contender", "contender", "{}"),
            Column("cpu_ms", "client CPU ms", "{:.1f}"),
            Column("cpu_us_per_item", "CPU µs/item", "{:.1f}"),
            Column("wall_ms", "wall ms", "{:.1f}"),
            Column("cpu_vs_paginator", "CPU vs paginator", "{:.2f}x"),
        ],
        rows=rows,
        targets=[Target("query: CPU vs botocore paginator", cpu[OURS] / cpu[PAGINATOR], 1.3, "<=")],
        notes=notes,
        seconds=time.perf_counter() - started,
    )

"""Scenario 3: client CPU of a query of 1,000, 10,000 and 50,000 items in one partition.

The engine (dynalite) runs in its own process and is called directly (no added
latency), so ``time.thread_time()`` of the calling thread is the client's work only:
building the request, HTTP and parsing, and turning items into objects.

Contenders at each size: the botocore paginator (plain dicts out), plain PynamoDB
``Model.query`` (models out), ``UserProgressRepository.iter_query`` (typed
``UserProgress`` out) and the minimal client (`benchmarks.minimal`: one plain dict
per item), the floor. Targets: the layer's CPU at 1,000 items at most 1.3x the
paginator's, and (issue 25) at 10,000 and 50,000 items at most 1.5x the minimal
client's, judged on the worst round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from portchops_models import UserProgressRepository
from portchops_models.metrics import Metrics

from .common import (
    PROGRESS_TABLE,
    Column,
    ScenarioResult,
    Spread,
    Target,
    interleaved,
    plain_models,
    ratio,
    raw_client,
    use_layer,
)
from .context import Bench
from .minimal import MinimalClient

PAGINATOR = "botocore query paginator (dicts)"
PYNAMO = "PynamoDB Model.query"
OURS = "UserProgressRepository.iter_query"
MINIMAL = "minimal client (dicts)"
ORDER = (OURS, PYNAMO, PAGINATOR, MINIMAL)


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    sizes = scale.query_sizes
    partitions = {n: bench.partition(n) for n in sizes}
    endpoint = bench.engine_url
    use_layer(endpoint)
    repo = UserProgressRepository(cache=None, metrics=Metrics())
    client = raw_client(endpoint)
    paginator = client.get_paginator("query")
    minimal = MinimalClient(endpoint, pool=1)
    _, plain_progress = plain_models(endpoint)
    rows: list[dict[str, Any]] = []
    cpu_by_size: dict[int, dict[str, list[float]]] = {}
    mismatched: list[str] = []
    for n, rounds in zip(sizes, scale.query_rounds, strict=True):
        partition = partitions[n]

        def botocore_pages(partition: str = partition) -> int:
            count = 0
            for page in paginator.paginate(
                TableName=PROGRESS_TABLE,
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": partition}},
            ):
                count += len(page["Items"])
            return count

        contenders: dict[str, Callable[[], int]] = {
            OURS: lambda p=partition: sum(1 for _ in repo.iter_query(p)),
            PYNAMO: lambda p=partition: sum(1 for _ in plain_progress.query(p)),
            PAGINATOR: botocore_pages,
            MINIMAL: lambda p=partition: sum(1 for _ in minimal.query(PROGRESS_TABLE, "userId", p)),
        }
        counts = {name: fn() for name, fn in contenders.items()}
        if len(set(counts.values())) != 1:
            mismatched.append(f"{n:,} items: {counts}")
        samples = interleaved(contenders, rounds, warmup=0)  # the count above warmed up
        cpu = {name: [s.cpu for s in runs] for name, runs in samples.items()}
        cpu_by_size[n] = cpu
        for name in ORDER:
            c = Spread.of(cpu[name])
            rows.append(
                {
                    "contender": name,
                    "items": counts[name],
                    "cpu_ms": c.median * 1e3,
                    "cpu_us_per_item": c.median / max(counts[name], 1) * 1e6,
                    "cpu_vs_minimal": ratio(cpu[name], cpu[MINIMAL]).times(),
                    "cpu_vs_paginator": ratio(cpu[name], cpu[PAGINATOR]).times(),
                }
            )
    minimal.close()
    first, middle = sizes[0], sizes[len(sizes) // 2]
    vs_paginator = ratio(cpu_by_size[first][OURS], cpu_by_size[first][PAGINATOR])
    floor_targets = []
    for n in sizes[len(sizes) // 2 :]:
        vs_minimal = ratio(cpu_by_size[n][OURS], cpu_by_size[n][MINIMAL])
        floor_targets.append(
            Target(
                f"query {n:,}: CPU",
                vs_minimal.median,
                1.5,
                "<=",
                spread=vs_minimal.range,
                source="#25",
                floor=MINIMAL,
            )
        )
    notes = [
        f"Rounds per size {dict(zip(sizes, scale.query_rounds, strict=True))}, interleaved; "
        "median CPU of the calling thread (time.thread_time) per full query, with "
        "(min-max) ranges of the per-round ratios; dynalite called directly, no added "
        "latency; GC on.",
        *(f"Contenders returned different item counts at {m}" for m in mismatched),
    ]
    return ScenarioResult(
        key="query_cpu",
        title=f"3. Query of {' / '.join(f'{n:,}' for n in sizes)} items of one partition: CPU",
        setup={"rtt_ms": 0.0, "sizes": list(sizes), "rounds": list(scale.query_rounds)},
        columns=[
            Column("contender", "contender", "{}"),
            Column("items", "items", "{:,}"),
            Column("cpu_ms", "client CPU ms", "{:,.1f}"),
            Column("cpu_us_per_item", "CPU µs/item", "{:.1f}"),
            Column("cpu_vs_minimal", "CPU vs minimal", "{}"),
            Column("cpu_vs_paginator", "CPU vs paginator", "{}"),
        ],
        rows=rows,
        targets=[
            Target(
                f"query {first:,}: CPU",
                vs_paginator.median,
                1.3,
                "<=",
                spread=vs_paginator.range,
                floor=PAGINATOR,
            ),
            *floor_targets,
        ],
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"first": first, "middle": middle},
    )

"""Scenario 6: streaming a 50,000-item partition with ``iter_query``.

A partition of 50,000 ``UserProgress`` rows (written with ``batch_save`` straight
to dynalite, shared with scenario 3) is read three ways under ``tracemalloc``, each
time reporting the peak growth of traced memory over what was allocated before:

* one page (``query()``, DynamoDB's 1 MB page): the unit of "a few pages";
* ``iter_query`` consumed item by item (nothing kept): the streaming case;
* ``list(iter_query(...))``: everything held at once, for comparison.

Target: streaming's peak growth stays within 3 pages, whatever the partition's size.
"""

from __future__ import annotations

import time
from typing import Any

from portchops_models import UserProgress, UserProgressRepository
from portchops_models.metrics import Metrics

from .common import Column, ScenarioResult, Target, peak_growth, use_layer
from .context import Bench

PAGES_ALLOWED = 3


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    n = bench.scale.stream_items
    t0 = time.perf_counter()
    partition = bench.partition(n)  # shared with the query scenario: written once per run
    write_seconds = time.perf_counter() - t0
    use_layer(bench.engine_url)
    repo = UserProgressRepository(cache=None, metrics=Metrics())

    def one_page() -> int:
        return len(repo.query(partition).items)

    def stream() -> int:
        count = 0
        for _ in repo.iter_query(partition):
            count += 1
        return count

    def hold_all() -> list[UserProgress]:
        return list(repo.iter_query(partition))

    stream()  # warm up: connections, botocore's caches
    page_peak, page_seconds, page_items = peak_growth(one_page)
    repo.metrics.reset()
    stream_peak, stream_seconds, streamed = peak_growth(stream)
    pages = repo.metrics.snapshot()["operations"]["Query"]["requests"]
    list_peak, list_seconds, held = peak_growth(hold_all)
    held_count = len(held)
    del held

    mib = 1024 * 1024

    def row(name: str, items: int, peak: int, seconds: float) -> dict[str, Any]:
        return {
            "contender": name,
            "items": items,
            "peak_mib": peak / mib,
            "seconds": seconds,
            "vs_one_page": peak / page_peak,
        }

    rows = [
        row("query(): one page", page_items, page_peak, page_seconds),
        row("iter_query, streamed", streamed, stream_peak, stream_seconds),
        row("list(iter_query(...))", held_count, list_peak, list_seconds),
    ]
    targets = [
        Target(
            "streaming: peak growth in pages",
            stream_peak / page_peak,
            PAGES_ALLOWED,
            "<=",
            unit=" pages",
            floor="query(): one page",
        ),
        Target(
            "streaming: items streamed", streamed, n, ">=", unit=" items", floor="the partition"
        ),
    ]
    bounded = stream_peak <= PAGES_ALLOWED * page_peak
    notes = [
        f"{n:,} items (seeded in {write_seconds:.1f} s, or before by scenario 3); "
        f"read in {pages} pages of about {page_items:,} items (tracemalloc on while reading).",
        f"{'bounded' if bounded else 'NOT bounded'}: streaming peaked at "
        f"{stream_peak / mib:.1f} MiB = {stream_peak / page_peak:.1f} pages, against "
        f"{list_peak / mib:.1f} MiB ({list_peak / stream_peak:.0f}x more) to hold every item.",
    ]
    return ScenarioResult(
        key="streaming",
        title=f"6. Streaming {n:,} items with iter_query: peak memory",
        setup={"items": n, "pages": pages, "page_items": page_items},
        columns=[
            Column("contender", "read", "{}"),
            Column("items", "items", "{:,}"),
            Column("peak_mib", "peak growth MiB", "{:.1f}"),
            Column("vs_one_page", "vs one page", "{:.2f}x"),
            Column("seconds", "seconds", "{:.2f}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"bounded": bounded, "write_seconds": write_seconds},
    )

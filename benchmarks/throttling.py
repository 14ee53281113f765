"""Scenario 5: a throttling storm during a bulk write.

``UserProgressRepository.batch_save`` writes 10,000 items (at least 400
BatchWriteItem requests of 25) through a proxy that answers 20% of BatchWriteItem
requests with ``ProvisionedThroughputExceededException`` (seeded draws). Every
other request reaches dynalite.

Targets: every item stored (counted at the engine afterwards with a COUNT query),
and requests sent (counted at the proxy) at most 1.5x the minimum of 400. The time
is reported, with the retries and the retry budget left.
"""

from __future__ import annotations

import math
import time
from typing import Any

from portchops_models import UserProgress, UserProgressRepository
from portchops_models.errors import PortChopsError
from portchops_models.limits import BATCH_WRITE_MAX
from portchops_models.metrics import Metrics
from portchops_models.retry import RetryBudget
from portchops_models.testing.faultproxy import Faults

from .common import (
    PROGRESS_TABLE,
    Column,
    RemoteProxy,
    ScenarioResult,
    Target,
    raw_client,
    use_layer,
)
from .context import Bench

THROTTLE = 0.2
LATENCY = 0.001
PARTITION = "storm-user"


class WatchedBudget(RetryBudget):
    """The default retry budget, recording its low-water mark and the retries it refused."""

    __slots__ = ("denied", "low")

    def __init__(self) -> None:
        super().__init__()
        self.low = self.capacity
        self.denied = 0

    def try_acquire(self, cost: int) -> bool:
        granted = super().try_acquire(cost)
        self.low = min(self.low, self.available)
        self.denied += not granted
        return granted


def count_partition(engine_url: str, partition: str) -> int:
    """Items stored in one partition, counted at the engine itself (no proxy)."""
    client = raw_client(engine_url)
    total = 0
    for page in client.get_paginator("query").paginate(
        TableName=PROGRESS_TABLE,
        KeyConditionExpression="userId = :u",
        ExpressionAttributeValues={":u": {"S": partition}},
        Select="COUNT",
    ):
        total += page["Count"]
    return total


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    n = bench.scale.storm_items
    minimum = math.ceil(n / BATCH_WRITE_MAX)
    faults = Faults(throttle=THROTTLE, latency=LATENCY, operations=frozenset({"BatchWriteItem"}))
    items = [
        UserProgress(user_id=PARTITION, lesson_id=f"lesson-{i:05d}", score=50) for i in range(n)
    ]
    outcome = "ok"
    with RemoteProxy(bench.engine_url, faults=faults, seed=5) as proxy:
        use_layer(proxy.endpoint_url)
        repo = UserProgressRepository(cache=None, metrics=Metrics())
        # The default policy, with a budget of the default size that reports its low point.
        budget = WatchedBudget()
        repo = UserProgressRepository(
            cache=None, metrics=Metrics(), retry=repo.retry.with_(budget=budget)
        )
        proxy.reset_stats()
        t0 = time.perf_counter()
        try:
            written = repo.batch_save(items)
        except PortChopsError as err:
            written = 0
            outcome = f"{type(err).__name__}: {err}"
        elapsed = time.perf_counter() - t0
        stats = proxy.stats
    snap = repo.metrics.snapshot()
    stored = count_partition(bench.engine_url, PARTITION)
    requests = stats.by_operation.get("BatchWriteItem", 0)
    row: dict[str, Any] = {
        "contender": "UserProgressRepository.batch_save",
        "items": n,
        "stored": stored,
        "requests": requests,
        "throttled": stats.throttled,
        "requests_vs_min": requests / minimum,
        "seconds": elapsed,
        "retries": snap["retries"],
        "budget_left": budget.available,
        "budget_low": budget.low,
        "budget_denied": budget.denied,
    }
    targets = [
        Target("storm: items stored", stored, n, ">=", unit=" items", note=outcome),
        Target("storm: requests vs minimum", requests / minimum, 1.5, "<="),
    ]
    notes = [
        f"{THROTTLE:.0%} of BatchWriteItem requests throttled by the proxy (seeded), "
        f"{LATENCY * 1e3:.0f} ms latency on them; minimum = ceil({n}/25) = {minimum} requests.",
        f"batch_save returned {written} ({outcome}). The default retry budget "
        f"({budget.capacity} tokens, {budget.retry_cost} a retry, refunded on success) fell to "
        f"{budget.low} at its lowest, refused {budget.denied} retries and ended with "
        f"{budget.available}.",
    ]
    return ScenarioResult(
        key="throttling",
        title="5. Throttling storm: batch_save of 10,000 items, 20% throttled",
        setup={"items": n, "throttle": THROTTLE, "latency_ms": LATENCY * 1e3, "minimum": minimum},
        columns=[
            Column("contender", "contender", "{}"),
            Column("stored", "stored", "{:,}"),
            Column("requests", "requests", "{:,}"),
            Column("throttled", "throttled", "{:,}"),
            Column("requests_vs_min", "vs minimum", "{:.2f}x"),
            Column("retries", "retries", "{:,}"),
            Column("budget_low", "budget low", "{:,}"),
            Column("seconds", "seconds", "{:.2f}"),
        ],
        rows=[row],
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

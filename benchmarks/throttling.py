"""Scenario 5: a throttling storm during a bulk write, at 5 ms RTT.

Each contender writes 10,000 ``UserProgress`` items (at least 400 BatchWriteItem
requests of 25) through a proxy that answers 20% of BatchWriteItem requests with
``ProvisionedThroughputExceededException`` (seeded draws) and delays every one by
5 ms; every other request reaches dynalite. The contenders:

* ``UserProgressRepository.batch_save`` (the default retry policy and budget; chunks
  fanned out on the layer's pool of 50);
* raw botocore with its own retries (a default client: DynamoDB's legacy retry mode,
  10 attempts), ``batch_write_item`` per chunk of 25 on 50 threads, unprocessed items
  resubmitted;
* plain PynamoDB ``Model.batch_write()`` (its own client and retries, chunks one
  after the other, as PynamoDB sends them; one round only: its client backs off in
  botocore's standard mode, up to 1 s and doubling, so a round takes about a minute);
* the minimal client on 50 threads with a simple retry loop (8 attempts, capped
  exponential backoff with full jitter) and unprocessed items resubmitted.

Each round every contender writes a fresh partition; the items stored are counted at
the engine afterwards (a COUNT query, no proxy), the requests at the proxy. Reported
per contender: wall time, items not stored, requests and throttled answers. Targets
(the layer): every item stored, and requests at most 1.5x the minimum of 400.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from portchops_models import UserProgress, UserProgressRepository
from portchops_models.dynamo.limits import BATCH_WRITE_MAX
from portchops_models.errors import PortChopsError
from portchops_models.metrics import Metrics
from portchops_models.retry import RetryBudget
from portchops_models.testing.faultproxy import Faults

from .common import (
    FANOUT,
    PROGRESS_TABLE,
    RTT,
    Column,
    RemoteProxy,
    ScenarioResult,
    Spread,
    Target,
    plain_models,
    raw_client,
    use_layer,
)
from .context import Bench
from .minimal import MinimalClient, MinimalError

THROTTLE = 0.2
OURS = "UserProgressRepository.batch_save"
RAW = "botocore + its retries, 50 threads"
PYNAMO = "PynamoDB batch_write"
MINIMAL = "minimal client + retry loop, 50 threads"
ORDER = (OURS, RAW, PYNAMO, MINIMAL)
TAGS = {OURS: "layer", RAW: "botocore", PYNAMO: "pynamodb", MINIMAL: "minimal"}
#: PynamoDB's client backs off in botocore's "standard" mode (a random delay of up to
#: 1 s, doubling): about 80 throttled requests in a row make one round last a minute.
PYNAMO_ROUNDS = 1
MINIMAL_ATTEMPTS = 8
MINIMAL_BASE, MINIMAL_CAP = 0.025, 1.0


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


def _chunks(puts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [puts[i : i + BATCH_WRITE_MAX] for i in range(0, len(puts), BATCH_WRITE_MAX)]


def _raw_puts(partition: str, n: int) -> list[dict[str, Any]]:
    """The same items as the layer writes, as BatchWriteItem put requests."""
    return [
        {"PutRequest": {"Item": item.serialize()}}
        for item in (
            UserProgress(user_id=partition, lesson_id=f"lesson-{i:05d}", score=50) for i in range(n)
        )
    ]


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    n = bench.scale.storm_items
    rounds = bench.scale.storm_rounds
    minimum = math.ceil(n / BATCH_WRITE_MAX)
    faults = Faults(throttle=THROTTLE, latency=RTT, operations=frozenset({"BatchWriteItem"}))
    budget = WatchedBudget()
    jitter = random.Random(5)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ORDER}
    with (
        RemoteProxy(bench.engine_url, faults=faults, seed=5) as proxy,
        ThreadPoolExecutor(max_workers=FANOUT, thread_name_prefix="bench-storm") as pool,
    ):
        endpoint = proxy.endpoint_url
        use_layer(endpoint)
        default = UserProgressRepository(cache=None, metrics=Metrics())
        # The default policy, with a budget of the default size that reports its low point.
        repo = UserProgressRepository(
            cache=None, metrics=Metrics(), retry=default.retry.with_(budget=budget)
        )
        client = raw_client(endpoint, pool=FANOUT)
        minimal = MinimalClient(endpoint, pool=FANOUT)
        _, plain_progress = plain_models(endpoint)

        def layer(partition: str) -> Callable[[], str]:
            items = [
                UserProgress(user_id=partition, lesson_id=f"lesson-{i:05d}", score=50)
                for i in range(n)
            ]

            def write() -> str:
                try:
                    repo.batch_save(items)
                except PortChopsError as err:
                    return f"{type(err).__name__}: {err}"
                return "ok"

            return write

        def botocore_writes(partition: str) -> Callable[[], str]:
            chunks = _chunks(_raw_puts(partition, n))

            def chunk(puts: list[dict[str, Any]]) -> str:
                request: dict[str, Any] = {PROGRESS_TABLE: puts}
                try:
                    while request:
                        answer = client.batch_write_item(RequestItems=request)
                        request = answer.get("UnprocessedItems") or {}
                except (ClientError, BotoCoreError) as err:
                    return type(err).__name__
                return "ok"

            return lambda: _outcome(pool.map(chunk, chunks))

        def pynamo(partition: str) -> Callable[[], str]:
            now = datetime.now(UTC)
            items = [
                plain_progress(
                    partition, f"lesson-{i:05d}", score=50, updated_at=now, status="started"
                )
                for i in range(n)
            ]

            def write() -> str:
                try:
                    with plain_progress.batch_write() as batch:
                        for item in items:
                            batch.save(item)
                except PynamoDBException as err:
                    return type(err).__name__
                return "ok"

            return write

        def minimal_writes(partition: str) -> Callable[[], str]:
            chunks = _chunks(_raw_puts(partition, n))

            def chunk(puts: list[dict[str, Any]]) -> str:
                pending = puts
                failures = 0
                while pending:
                    try:
                        answer = minimal.call(
                            "BatchWriteItem", {"RequestItems": {PROGRESS_TABLE: pending}}
                        )
                    except MinimalError as err:
                        if not err.retryable:
                            return err.code
                        left = pending
                    else:
                        left = answer.get("UnprocessedItems", {}).get(PROGRESS_TABLE, [])
                        if len(left) < len(pending):
                            failures = 0  # progress: start the backoff again
                    if not left:
                        return "ok"
                    failures += 1
                    if failures >= MINIMAL_ATTEMPTS:
                        return "gave up"
                    time.sleep(jitter.random() * min(MINIMAL_CAP, MINIMAL_BASE * 2**failures))
                    pending = left
                return "ok"

            return lambda: _outcome(pool.map(chunk, chunks))

        makers = {OURS: layer, RAW: botocore_writes, PYNAMO: pynamo, MINIMAL: minimal_writes}
        for r in range(rounds):
            order = ORDER[r % len(ORDER) :] + ORDER[: r % len(ORDER)]
            for name in order:
                if name == PYNAMO and r >= PYNAMO_ROUNDS:
                    continue
                partition = f"storm-{TAGS[name]}-{r}"
                write = makers[name](partition)
                proxy.reset_stats()
                t0 = time.perf_counter()
                outcome = write()
                wall = time.perf_counter() - t0
                stats = proxy.stats
                runs[name].append(
                    {
                        "partition": partition,
                        "wall": wall,
                        "outcome": outcome,
                        "requests": stats.by_operation.get("BatchWriteItem", 0),
                        "throttled": stats.throttled,
                    }
                )
        minimal.close()
    for name in ORDER:
        for run_ in runs[name]:
            run_["stored"] = count_partition(bench.engine_url, run_["partition"])

    rows: list[dict[str, Any]] = []
    for name in ORDER:
        wall = Spread.of([x["wall"] for x in runs[name]])
        lost = sum(n - x["stored"] for x in runs[name])
        requests = statistics.median(x["requests"] for x in runs[name])
        outcomes = sorted({x["outcome"] for x in runs[name]})
        rows.append(
            {
                "contender": name,
                "seconds": wall.median,
                "seconds_range": f"{wall.low:.2f}-{wall.high:.2f}",
                "not_stored": lost,
                "requests": requests,
                "throttled": statistics.median(x["throttled"] for x in runs[name]),
                "requests_vs_min": requests / minimum,
                "outcome": "; ".join(outcomes),
            }
        )
    ours = runs[OURS]
    stored = min(x["stored"] for x in ours)
    requests_vs_min = Spread.of([x["requests"] / minimum for x in ours])
    snap = repo.metrics.snapshot()
    walls = {name: [x["wall"] for x in runs[name]] for name in ORDER}
    targets = [
        Target(
            "storm: items stored (fewest of any round)",
            stored,
            n,
            ">=",
            unit=" items",
            floor="every item written",
            note="; ".join(sorted({x["outcome"] for x in ours})),
        ),
        Target(
            "storm: requests vs minimum",
            requests_vs_min.median,
            1.5,
            "<=",
            spread=requests_vs_min.range,
            floor="ceil(items / 25) requests",
        ),
    ]
    notes = [
        f"{THROTTLE:.0%} of BatchWriteItem requests throttled by the proxy (seeded), "
        f"{RTT * 1e3:.0f} ms latency on each; minimum = ceil({n:,}/25) = {minimum} requests; "
        f"{rounds} round(s), the order rotating; medians and (min-max) ranges; "
        "'not stored' adds up every round's missing items, counted at the engine.",
        "Wall vs the layer: "
        + ", ".join(
            f"{name} {statistics.median(walls[name]) / statistics.median(walls[OURS]):.2f}x"
            for name in ORDER
            if name != OURS
        )
        + ".",
        f"The layer's default retry budget ({budget.capacity} tokens, {budget.retry_cost} a "
        f"retry, refunded on success) fell to {budget.low} at its lowest, refused "
        f"{budget.denied} retries and ended with {budget.available}; {snap['retries']} retries "
        "in all.",
    ]
    return ScenarioResult(
        key="throttling",
        title=f"5. Throttling storm: batch writes of {n:,} items, 20% throttled, 5 ms RTT",
        setup={
            "items": n,
            "throttle": THROTTLE,
            "latency_ms": RTT * 1e3,
            "minimum": minimum,
            "rounds": rounds,
        },
        columns=[
            Column("contender", "contender", "{}"),
            Column("seconds", "wall s", "{:.2f}"),
            Column("seconds_range", "range", "{}"),
            Column("not_stored", "not stored", "{:,}"),
            Column("requests", "requests", "{:,.0f}"),
            Column("throttled", "throttled", "{:,.0f}"),
            Column("requests_vs_min", "vs minimum", "{:.2f}x"),
            Column("outcome", "outcome", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"walls": walls},
    )


def _outcome(results: Any) -> str:
    """``ok``, or the distinct failures of the chunks that gave up."""
    failed = sorted({r for r in results if r != "ok"})
    return "ok" if not failed else "failed: " + ", ".join(failed)

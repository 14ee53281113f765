"""Scenario 8: the default cache on a skewed key distribution, at 5 ms RTT.

A service's reads are not spread evenly: a few users are read often, most rarely.
Here gets are drawn from 5,000 users with a Zipf-like law (the k-th most popular
user is read with a weight of 1/k), the same seeded sequences for both contenders:

* ``UserRepository()``: the cache as shipped (``cache_maxsize`` 500 entries,
  ``cache_ttl_seconds`` 300 s: a tenth of the keys);
* ``UserRepository(cache=None)``: every get goes to the table.

The cached repository is warmed by one untimed sequence and keeps its cache across
rounds, as a running service does. Reported: the hit rate (cache hits over gets, from
the repository's metrics) and the mean latency of a get, against the cache off.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from portchops_models import UserRepository
from portchops_models.metrics import Metrics
from portchops_models.testing.faultproxy import Faults

from .common import (
    RTT,
    Column,
    RemoteProxy,
    ScenarioResult,
    Spread,
    interleaved,
    ratio,
    use_layer,
)
from .context import Bench

CACHED = "UserRepository(), default cache"
OFF = "UserRepository(cache=None)"
EXPONENT = 1.0  # Zipf's s: weight of the k-th most popular key is 1 / k**s


def zipf_sequences(keys: list[str], length: int, count: int, *, seed: int = 8) -> list[list[str]]:
    """``count`` seeded sequences of ``length`` keys, the k-th key drawn with weight 1/k**s."""
    cumulative = list(itertools.accumulate(1.0 / (k**EXPONENT) for k in range(1, len(keys) + 1)))
    rng = random.Random(seed)
    return [rng.choices(keys, cum_weights=cumulative, k=length) for _ in range(count)]


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    keys = bench.users(scale.cache_keys)
    sequences = zipf_sequences(keys, scale.cache_gets, scale.cache_rounds + 1)
    with RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=8) as proxy:
        settings = use_layer(proxy.endpoint_url)
        cached = UserRepository(metrics=Metrics())
        off = UserRepository(cache=None, metrics=Metrics())
        latencies: dict[str, list[float]] = {CACHED: [], OFF: []}
        hit_rates: list[float] = []

        def reader(name: str, repo: UserRepository) -> Callable[[], None]:
            todo: Iterator[list[str]] = itertools.cycle(sequences)

            def read() -> None:
                sequence = next(todo)
                before = repo.metrics.snapshot()
                total = 0.0
                for key in sequence:
                    t0 = time.perf_counter()
                    repo.get(key)
                    total += time.perf_counter() - t0
                latencies[name].append(total / len(sequence))
                if repo.cache is not None:
                    after = repo.metrics.snapshot()
                    hits = after["cache_hits"] - before["cache_hits"]
                    hit_rates.append(hits / len(sequence))

            return read

        samples = interleaved(
            {CACHED: reader(CACHED, cached), OFF: reader(OFF, off)}, scale.cache_rounds
        )
    # the first sequence of each contender was the warm-up (interleaved's, untimed)
    mean = {name: values[1:] for name, values in latencies.items()}
    rates = Spread.of(hit_rates[1:])
    vs_off = ratio(mean[CACHED], mean[OFF])
    rows: list[dict[str, Any]] = []
    for name in (CACHED, OFF):
        m = Spread.of(mean[name])
        rows.append(
            {
                "contender": name,
                "gets": scale.cache_gets,
                "hit_rate": rates.median if name == CACHED else 0.0,
                "hit_range": f"{rates.low:.1%}-{rates.high:.1%}" if name == CACHED else "-",
                "mean_ms": m.median * 1e3,
                "mean_range": f"{m.low * 1e3:.2f}-{m.high * 1e3:.2f}",
                "vs_off": vs_off.times() if name == CACHED else "1.00x",
                "wall_s": statistics.median(s.wall for s in samples[name]),
            }
        )
    notes = [
        f"{len(keys):,} users, Zipf-like draws (s = {EXPONENT:g}), {scale.cache_gets:,} "
        f"sequential gets per round, {scale.cache_rounds} interleaved rounds after one "
        f"warm-up sequence each; cache {settings.cache_maxsize} entries, TTL "
        f"{settings.cache_ttl_seconds:g} s (the defaults); GC on.",
        f"Mean latency with the cache: {vs_off.times()} that of the cache off, "
        f"at a hit rate of {rates.median:.1%}.",
    ]
    return ScenarioResult(
        key="cache_skew",
        title=f"8. The default cache on skewed reads of {len(keys):,} users (5 ms RTT)",
        setup={
            "rtt_ms": RTT * 1e3,
            "keys": len(keys),
            "gets": scale.cache_gets,
            "rounds": scale.cache_rounds,
            "zipf_s": EXPONENT,
            "cache_maxsize": settings.cache_maxsize,
            "cache_ttl_seconds": settings.cache_ttl_seconds,
        },
        columns=[
            Column("contender", "contender", "{}"),
            Column("gets", "gets/round", "{:,}"),
            Column("hit_rate", "hit rate", "{:.1%}"),
            Column("hit_range", "range", "{}"),
            Column("mean_ms", "mean ms/get", "{:.3f}"),
            Column("mean_range", "range", "{}"),
            Column("vs_off", "vs cache off", "{}"),
        ],
        rows=rows,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"hit_rate": rates.median, "latency_vs_off": vs_off.median},
    )

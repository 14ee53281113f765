"""Scenario 15: async under load, 500 tasks on the default pool of 50, through faults.

A mix of calls (70% ``get``, 15% ``batch_get`` of 50 keys, 15% ``query`` of a
50-item partition, ``limit=20``; every repository with ``cache=None``, so every
call reaches the wire) runs for a fixed time through a `FaultProxy` in front of
dynalite, with 5 ms RTT and faults drawn per request (5% throttled, 2% 5xx, 1%
connections reset, 1% answers lost after the engine applied them), by:

* 500 asyncio tasks on ``AsyncUserRepository`` / ``AsyncUserProgressRepository``
  (the default pool of 50 connections), each starting its next call as soon as
  the last one returns;
* 32 threads on the sync repositories, the same way;
* the 500 tasks again with no fault (RTT only), where nothing but the wait for a
  connection can make one call slower than another.

Reported per run and operation: calls per second, p50/p99/max latency, calls
that ended in `CallTimeout` or another error, and the process's resident memory
(``/proc/self/statm``) before the run, its peak during it and after it (the
tasks gone, a garbage collection done).

The queue ahead of a call is the calls already in flight when it starts; it
drains in ``in_flight / calls_per_second`` seconds. Targets (issue 25): the
async run's throughput at least the threaded one's, its p99 (every operation's)
at most twice the median time the queue ahead of a call takes to drain, no
`CallTimeout`, and the memory after the run within 15% of before.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from portchops_models import UserProgressRepository, UserRepository
from portchops_models.errors import CallTimeout
from portchops_models.metrics import Metrics
from portchops_models.testing.faultproxy import Faults

from .common import RTT, Column, RemoteProxy, ScenarioResult, Target, ratio, use_layer
from .context import Bench

TASKS = 500
THREADS = 32
BATCH_KEYS = 50
PARTITION = 50
QUERY_LIMIT = 20
#: the operations of the mix and their shares
MIX = (("get", 0.70), ("batch_get", 0.15), ("query", 0.15))
FAULTS = Faults(latency=RTT, throttle=0.05, server_error=0.02, drop=0.01, lost_answer=0.01)
CALM = Faults(latency=RTT)
ASYNC_FAULTS = f"{TASKS} async tasks, faults"
THREADED = f"{THREADS} threads, faults"
ASYNC_CALM = f"{TASKS} async tasks, no fault"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """The process's resident set, in MB (``/proc/self/statm``, second field)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


@dataclass
class Run:
    """What one run measured: latencies per operation, queue depths, errors, memory."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ahead: list[int] = field(default_factory=list)
    timeouts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    in_flight: int = 0

    @property
    def calls(self) -> int:
        return (
            sum(len(v) for v in self.latencies.values()) + self.timeouts + sum(self.errors.values())
        )

    def start(self) -> int:
        """Note a call starting; the calls in flight ahead of it."""
        ahead = self.in_flight
        self.in_flight += 1
        self.ahead.append(ahead)
        return ahead

    def end(self, op: str, seconds: float, err: BaseException | None) -> None:
        self.in_flight -= 1
        if err is None:
            self.latencies.setdefault(op, []).append(seconds)
        elif isinstance(err, CallTimeout):
            self.timeouts += 1
        else:
            name = type(err).__name__
            self.errors[name] = self.errors.get(name, 0) + 1


def _pick(rng: random.Random) -> str:
    draw = rng.random()
    edge = 0.0
    for op, share in MIX:
        edge += share
        if draw < edge:
            return op
    return MIX[-1][0]


class _Sampler:
    """The peak resident set, sampled every 50 ms on a thread of its own."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def _finish(run: Run, sampler: _Sampler, started: float) -> Run:
    run.seconds = time.perf_counter() - started
    run.rss_peak = sampler.peak
    gc.collect()
    run.rss_after = rss_mb()
    return run


def async_run(users: list[str], partition: str, seconds: float, seed: int) -> Run:
    """`TASKS` tasks on the async repositories for `seconds`, on a fresh event loop."""
    from portchops_models.aio import AsyncUserProgressRepository, AsyncUserRepository

    gc.collect()
    run = Run(rss_before=rss_mb())
    user_repo = AsyncUserRepository(cache=None, metrics=Metrics())
    progress = AsyncUserProgressRepository(cache=None, metrics=Metrics())

    async def worker(n: int, stop_at: float) -> None:
        rng = random.Random(seed * 1000 + n)
        while time.perf_counter() < stop_at:
            op = _pick(rng)
            call: Awaitable[Any]
            if op == "get":
                call = user_repo.get(rng.choice(users))
            elif op == "batch_get":
                call = user_repo.batch_get(rng.sample(users, BATCH_KEYS))
            else:
                call = progress.query(partition, limit=QUERY_LIMIT)
            run.start()
            t0 = time.perf_counter()
            err: BaseException | None = None
            try:
                await call
            except Exception as caught:
                err = caught
            run.end(op, time.perf_counter() - t0, err)

    async def main() -> None:
        await user_repo.get(users[0])  # the loop's session opened
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(worker(n, stop_at) for n in range(TASKS)))

    with _Sampler() as sampler:
        started = time.perf_counter()
        asyncio.run(main())
    return _finish(run, sampler, started)


def threaded_run(users: list[str], partition: str, seconds: float, seed: int) -> Run:
    """`THREADS` threads on the sync repositories for `seconds`."""
    gc.collect()
    run = Run(rss_before=rss_mb())
    user_repo = UserRepository(cache=None, metrics=Metrics())
    progress = UserProgressRepository(cache=None, metrics=Metrics())
    lock = threading.Lock()

    def worker(n: int, stop_at: float) -> None:
        rng = random.Random(seed * 1000 + n)
        while time.perf_counter() < stop_at:
            op = _pick(rng)
            with lock:
                run.start()
            t0 = time.perf_counter()
            err: BaseException | None = None
            try:
                if op == "get":
                    user_repo.get(rng.choice(users))
                elif op == "batch_get":
                    user_repo.batch_get(rng.sample(users, BATCH_KEYS))
                else:
                    progress.query(partition, limit=QUERY_LIMIT)
            except Exception as caught:
                err = caught
            with lock:
                run.end(op, time.perf_counter() - t0, err)

    user_repo.get(users[0])
    with _Sampler() as sampler, ThreadPoolExecutor(THREADS, thread_name_prefix="bench-load") as ex:
        started = time.perf_counter()
        stop_at = started + seconds
        list(ex.map(lambda n: worker(n, stop_at), range(THREADS)))
    return _finish(run, sampler, started)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _merge(runs: list[Run]) -> Run:
    """One run's worth of figures from several rounds (latencies pooled, times added)."""
    merged = Run(rss_before=runs[0].rss_before, rss_after=runs[-1].rss_after)
    for one in runs:
        merged.seconds += one.seconds
        merged.ahead.extend(one.ahead)
        merged.timeouts += one.timeouts
        merged.rss_peak = max(merged.rss_peak, one.rss_peak)
        for op, values in one.latencies.items():
            merged.latencies.setdefault(op, []).extend(values)
        for name, count in one.errors.items():
            merged.errors[name] = merged.errors.get(name, 0) + count
    return merged


def _rows(name: str, run: Run) -> tuple[list[dict[str, Any]], float, float]:
    """One row for every call and one per operation; (rows, calls/s, median drain s)."""
    rate = run.calls / run.seconds
    drain = statistics.median(run.ahead) / rate if run.ahead else 0.0
    every = [s for v in run.latencies.values() for s in v]
    rows = []
    for op, values in [("all", every), *sorted(run.latencies.items())]:
        rows.append(
            {
                "contender": name if op == "all" else f"  {op}",
                "calls_per_s": (len(values) / run.seconds) if op != "all" else rate,
                "p50_ms": _pct(values, 0.5) * 1e3,
                "p99_ms": _pct(values, 0.99) * 1e3,
                "max_ms": max(values, default=float("nan")) * 1e3,
                "drain_ms": drain * 1e3 if op == "all" else float("nan"),
                "timeouts": run.timeouts if op == "all" else "",
                "errors": (", ".join(f"{k} {v}" for k, v in run.errors.items()) or "0")
                if op == "all"
                else "",
                "rss": (
                    f"{run.rss_before:.0f} / {run.rss_peak:.0f} / {run.rss_after:.0f}"
                    if op == "all"
                    else ""
                ),
            }
        )
    return rows, rate, drain


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    quick = bench.scale.point_ops < 300
    seconds, rounds = (4.0, 2) if quick else (8.0, 3)
    users = bench.users(1000)
    partition = bench.partition(PARTITION)
    rounds_of: dict[str, list[Run]] = {THREADED: [], ASYNC_FAULTS: [], ASYNC_CALM: []}
    with RemoteProxy(bench.engine_url, faults=FAULTS, seed=25) as proxy:
        use_layer(proxy.endpoint_url)
        for r in range(rounds):  # interleaved, the order alternating: the machine drifts
            order = (THREADED, ASYNC_FAULTS) if r % 2 == 0 else (ASYNC_FAULTS, THREADED)
            for name in order:
                contender = threaded_run if name == THREADED else async_run
                rounds_of[name].append(contender(users, partition, seconds, 2 * r + 1))
        proxy.faults = CALM
        rounds_of[ASYNC_CALM].append(async_run(users, partition, seconds, 99))
    use_layer(bench.engine_url)
    runs = {name: _merge(each) for name, each in rounds_of.items()}
    throughput = ratio(
        [one.calls / one.seconds for one in rounds_of[ASYNC_FAULTS]],
        [one.calls / one.seconds for one in rounds_of[THREADED]],
    )
    first_async = rounds_of[ASYNC_FAULTS][0]
    last_async = rounds_of[ASYNC_CALM][-1]

    rows: list[dict[str, Any]] = []
    rates: dict[str, float] = {}
    drains: dict[str, float] = {}
    for name in (ASYNC_FAULTS, THREADED, ASYNC_CALM):
        more, rates[name], drains[name] = _rows(name, runs[name])
        rows.extend(more)
    loaded = runs[ASYNC_FAULTS]
    every = [s for v in loaded.latencies.values() for s in v]
    worst_p99 = max((_pct(v, 0.99) for v in loaded.latencies.values()), default=float("nan"))
    drain = drains[ASYNC_FAULTS]
    calm = runs[ASYNC_CALM]
    calm_worst = max((_pct(v, 0.99) for v in calm.latencies.values()), default=float("nan"))
    targets = [
        Target(
            f"{TASKS} async tasks vs {THREADS} threads, faults: throughput",
            throughput.median,
            1.0,
            ">=",
            spread=throughput.range,
            source="#25",
        ),
        Target(
            "async, faults: p99 of every call / twice the median drain of the queue ahead",
            _pct(every, 0.99) / (2 * drain) if drain else None,
            1.0,
            "<=",
            note=f"p99 {_pct(every, 0.99) * 1e3:,.0f} ms, drain {drain * 1e3:,.0f} ms",
            source="#25",
        ),
        Target(
            "async, faults: worst operation's p99 / twice the median drain",
            worst_p99 / (2 * drain) if drain else None,
            1.0,
            "<=",
            source="#25",
        ),
        Target(
            "async, no fault: worst operation's p99 / twice the median drain",
            calm_worst / (2 * drains[ASYNC_CALM]) if drains[ASYNC_CALM] else None,
            1.0,
            "<=",
            source="#25",
        ),
        Target(
            "async, faults: calls ended in CallTimeout",
            float(loaded.timeouts),
            0.0,
            "<=",
            unit="",
            source="#25",
        ),
        Target(
            "async: resident memory after the last async run / before the first",
            last_async.rss_after / first_async.rss_before,
            1.15,
            "<=",
            note=f"{first_async.rss_before:.0f} MB before, "
            f"{max(one.rss_peak for one in rounds_of[ASYNC_FAULTS]):.0f} peak, "
            f"{last_async.rss_after:.0f} after",
            source="#25",
        ),
    ]
    notes = [
        f"{rounds} interleaved rounds of {seconds:g} s per run (the no-fault run once); "
        f"{TASKS} tasks / {THREADS} threads each start the next call as "
        f"soon as the last returns; mix {', '.join(f'{op} {s:.0%}' for op, s in MIX)}; "
        f"batch_get of {BATCH_KEYS} keys; query of a {PARTITION}-item partition, "
        f"limit {QUERY_LIMIT}; cache=None; RTT {RTT * 1e3:g} ms; faults per request: "
        "throttle 5%, 5xx 2%, reset 1%, lost answer 1%.",
        "drain: the calls in flight when a call starts (its median) over the run's calls per "
        "second. rss: MB before / peak / after (after a gc.collect()), of the first and the "
        "last round; throughput judged on the rounds' ratios.",
    ]
    return ScenarioResult(
        key="load",
        title=f"15. Async under load: {TASKS} tasks on {50} connections, through faults",
        setup={
            "seconds": seconds,
            "rounds": rounds,
            "tasks": TASKS,
            "threads": THREADS,
            "rtt_ms": RTT * 1e3,
        },
        columns=[
            Column("contender", "run / operation", "{}"),
            Column("calls_per_s", "calls/s", "{:,.0f}"),
            Column("p50_ms", "p50 ms", "{:,.0f}"),
            Column("p99_ms", "p99 ms", "{:,.0f}"),
            Column("max_ms", "max ms", "{:,.0f}"),
            Column("drain_ms", "drain ms", "{:,.0f}"),
            Column("timeouts", "CallTimeout", "{}"),
            Column("errors", "other errors", "{}"),
            Column("rss", "RSS MB before/peak/after", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

"""The harness shared by the scenarios: engine, proxy, contenders' clients, timing, results.

* The engine is dynalite in its own process (node): it answers in about a millisecond,
  keeps connections alive and does not share the GIL or the CPU clock with the client.
* The network is a `FaultProxy` on loopback, also in a process of its own (a spawned child
  driven over a pipe), so its threads do not compete for the client's GIL either.
* Every contender of a scenario uses the same endpoint (the proxy) and the same data.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

import botocore.session
from botocore.config import Config
from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from portchops_models.settings import Settings, configure
from portchops_models.testing.engine import DynaliteEngine
from portchops_models.testing.faultproxy import Faults, ProxyStats

REGION = "us-east-1"
PREFIX = "bench-"
USERS_TABLE = f"{PREFIX}users"
PROGRESS_TABLE = f"{PREFIX}user-progress"
RTT = 0.005  # seconds of latency the proxy adds to every request (one round trip)
#: threads and pooled connections of every fan-out contender (the layer's default pool)
FANOUT = 50


# ---------------------------------------------------------------------------- results


#: How a target with per-round values is judged (printed with every target).
WORST = "worst round"
MEDIAN_IN_RANGE = "median, range inside"


@dataclass
class Target:
    """One target: ``value`` (a median) compared with ``limit``.

    ``spread`` is the (low, high) of the value across interleaved rounds. With a
    spread, a target is judged by its ``rule``: `WORST` (the worst round, the high
    end for ``<=`` and the low end for ``>=``, must be within the limit: costs against
    a floor) or `MEDIAN_IN_RANGE` (the median within the limit and the whole range
    too: speed-ups and throughput). Either way a range that crosses the limit fails.
    ``floor`` names what the value is measured against (e.g. "AsyncMinimalClient,
    gather"), ``source`` where the target comes from ("#12" for issue 12's, "docs"
    for the page's older rows), and a ``value`` of None means the contender could
    not be measured (``note`` says why): that is never a pass.
    """

    name: str
    value: float | None
    limit: float
    op: str  # "<=" or ">="
    unit: str = "x"
    note: str = ""
    spread: tuple[float, float] | None = None
    source: str = "docs"
    floor: str = ""
    rule: str = ""

    def __post_init__(self) -> None:
        if not self.rule:
            self.rule = WORST if self.op == "<=" else MEDIAN_IN_RANGE

    @property
    def judged(self) -> float | None:
        """The number held against the limit: the worst round under `WORST`, else the
        worse of the median and the range's far end (the range must sit inside too)."""
        if self.value is None:
            return None
        if self.spread is None:
            return self.value
        worst = max(self.spread) if self.op == "<=" else min(self.spread)
        if self.rule == WORST:
            return worst
        return max(self.value, worst) if self.op == "<=" else min(self.value, worst)

    @property
    def passed(self) -> bool:
        judged = self.judged
        if judged is None:
            return False
        return judged <= self.limit if self.op == "<=" else judged >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "judged": self.judged, "passed": self.passed}


@dataclass
class Column:
    key: str
    header: str
    fmt: str = "{:.2f}"


@dataclass
class ScenarioResult:
    """What a scenario measured: one row per contender, the targets, notes."""

    key: str
    title: str
    setup: dict[str, Any]
    columns: list[Column]
    rows: list[dict[str, Any]]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "setup": self.setup,
            "columns": [dataclasses.asdict(c) for c in self.columns],
            "rows": self.rows,
            "targets": [t.as_dict() for t in self.targets],
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "extra": self.extra,
        }


def machine_info() -> dict[str, Any]:
    import botocore
    import pynamodb

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "botocore": botocore.__version__,
        "pynamodb": pynamodb.__version__,
    }


# ---------------------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Spread:
    """The median of per-round values and their range (lowest, highest)."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    @property
    def range(self) -> tuple[float, float]:
        return (self.low, self.high)

    def text(self, fmt: str = "{:.2f}") -> str:
        """``1.23 (1.10-1.40)``."""
        return f"{fmt.format(self.median)} ({fmt.format(self.low)}-{fmt.format(self.high)})"

    def times(self) -> str:
        """A ratio's cell: ``1.23x (1.10-1.40)``."""
        return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f})"


def ratio(a: Sequence[float], b: Sequence[float]) -> Spread:
    """Round-by-round ratios ``a[i] / b[i]`` of two contenders of the same interleaved run."""
    return Spread.of([x / y for x, y in zip(a, b, strict=True) if y > 0])


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # seconds of CPU of the calling thread (time.thread_time)
    proc_cpu: float  # seconds of CPU of the whole client process (every thread)


def measure(fn: Callable[[], Any]) -> Sample:
    """Run ``fn`` once; wall, thread CPU and process CPU.

    The garbage collector stays on while timing, as in a service: the objects a
    contender allocates cost what they cost, collections included. A collection
    before each sample keeps one contender's garbage from being collected in the
    next one's time.
    """
    gc.collect()
    p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
    fn()
    w1, t1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
    return Sample(wall=w1 - w0, cpu=t1 - t0, proc_cpu=p1 - p0)


def peak_growth(fn: Callable[[], Any]) -> tuple[int, float, Any]:
    """(peak traced bytes above the start, seconds, fn's result) of one call of ``fn``.

    Under ``tracemalloc``, which slows Python down a lot: never mixed with timing.
    The result is still referenced at the peak, so what a call returns counts.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, seconds, result


def interleaved(
    contenders: dict[str, Callable[[], Any]], rounds: int, *, warmup: int = 1
) -> dict[str, list[Sample]]:
    """Run every contender once per round, rotating the order each round.

    Each contender runs ``warmup`` times before the first round (connections open,
    caches of botocore and PynamoDB filled), untimed.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    names = list(contenders)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(measure(contenders[name]))
    return samples


# ---------------------------------------------------------------------------- engine and proxy


@contextmanager
def dynalite() -> Iterator[DynaliteEngine]:
    with DynaliteEngine() as engine:
        yield engine


def _serve_proxy(pipe: Pipe, upstream: str, faults: Faults, seed: int) -> None:
    """The proxy process: start a FaultProxy, report its URL, obey the pipe."""
    from portchops_models.testing.faultproxy import FaultProxy

    with FaultProxy(upstream=upstream, faults=faults, seed=seed) as proxy:
        pipe.send(proxy.endpoint_url)
        while True:
            try:
                command, arg = pipe.recv()
            except EOFError:
                return
            if command == "stats":
                pipe.send(proxy.stats)
            elif command == "reset":
                proxy.reset_stats()
                pipe.send(None)
            elif command == "faults":
                proxy.faults = arg
                pipe.send(None)
            elif command == "stop":
                pipe.send(None)
                return


class RemoteProxy:
    """A `FaultProxy` in a child process, with the same small interface.

    ``endpoint_url``, ``stats`` (a `ProxyStats`), ``reset_stats()`` and a ``faults``
    setter. Its connection threads run under the child's GIL, not the client's.
    """

    def __init__(self, upstream: str, *, faults: Faults | None = None, seed: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve_proxy,
            args=(child, upstream, faults or Faults(), seed),
            daemon=True,
            name="bench-proxy",
        )
        self._proc.start()
        child.close()
        self.endpoint_url: str = self._pipe.recv()
        self._faults = faults or Faults()

    def _ask(self, command: str, arg: Any = None) -> Any:
        self._pipe.send((command, arg))
        return self._pipe.recv()

    @property
    def stats(self) -> ProxyStats:
        stats: ProxyStats = self._ask("stats")
        return stats

    def reset_stats(self) -> None:
        self._ask("reset")

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._ask("faults", faults)
        self._faults = faults

    def stop(self) -> None:
        if self._proc.is_alive():
            with suppress(EOFError, BrokenPipeError, OSError):
                self._ask("stop")
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
        self._pipe.close()

    def __enter__(self) -> RemoteProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- contenders' clients


def raw_client(endpoint_url: str, *, pool: int = 10) -> Any:
    """A plain botocore DynamoDB client, built the documented way (default config)."""
    session = botocore.session.get_session()
    return session.create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(max_pool_connections=pool),
    )


def use_layer(endpoint_url: str, **overrides: Any) -> Settings:
    """Point portchops_models at ``endpoint_url`` (tables prefixed ``bench-``)."""
    return configure(endpoint_url=endpoint_url, table_prefix=PREFIX, **overrides)


def plain_models(endpoint_url: str) -> tuple[type[Model], type[Model]]:
    """Plain PynamoDB models (not our BaseModel) over the same tables, built the usual way.

    PynamoDB builds its own botocore client from ``Meta``, as an app would without us.
    """

    class PlainUser(Model):
        class Meta:
            table_name = USERS_TABLE
            host = endpoint_url
            region = REGION
            aws_access_key_id = "x"
            aws_secret_access_key = "x"

        user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
        email = UnicodeAttribute()
        name = UnicodeAttribute()
        created_at = UTCDateTimeAttribute(attr_name="createdAt")
        updated_at = UTCDateTimeAttribute(attr_name="updatedAt")
        version = VersionAttribute()

    class PlainProgress(Model):
        class Meta:
            table_name = PROGRESS_TABLE
            host = endpoint_url
            region = REGION
            aws_access_key_id = "x"
            aws_secret_access_key = "x"

        user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
        lesson_id = UnicodeAttribute(range_key=True, attr_name="lessonId")
        status = UnicodeAttribute(default="started")
        score = NumberAttribute(default=0)
        attempts = NumberAttribute(default=0)
        completed_at = UTCDateTimeAttribute(null=True, attr_name="completedAt")
        updated_at = UTCDateTimeAttribute(attr_name="updatedAt")
        ttl = TTLAttribute(null=True)

    return PlainUser, PlainProgress

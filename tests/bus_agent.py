"""A second app process for the bus tests: reads users through a cached repository.

Run as ``python -m tests.bus_agent`` with ``PORTCHOPS_ENDPOINT_URL``, ``PORTCHOPS_TABLE_PREFIX``
and ``PORTCHOPS_CACHE_BUS_URL`` set. It answers one JSON line per command line on stdin:

- ``read UID`` -> ``{"name": str | null, "hit": bool}`` (hit: served from the cache)
- ``read-all UID...`` -> ``{"names": [...], "hits": int}``
- ``watch UID`` -> arm a watcher; ``evicted SECONDS`` -> ``{"at": epoch | null}``, the wall
  clock when the bus evicted that key here
- ``state serving|down SECONDS`` -> ``{"ok": bool}``: wait until the bus is up / down
- ``metrics`` -> the bus counters of this process
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from portchops_models import UserRepository
from portchops_models.cache import bus, coherence
from portchops_models.repository import default_metrics
from portchops_models.settings import Settings, current_settings

ROOT = Path(__file__).resolve().parents[1]
WAIT = 15.0  # safety net for waits on real events; nothing asserts on it


class Watcher:
    """Registered beside the caches: notes when the bus evicts one key."""

    def __init__(self) -> None:
        self.key: Hashable | None = None
        self.at: float | None = None
        self.event = threading.Event()
        self.cleared = threading.Event()

    def arm(self, key: Hashable) -> None:
        self.key, self.at = key, None
        self.event.clear()

    def invalidate(self, item_keys: Iterable[Hashable]) -> None:
        if self.key is not None and self.key in list(item_keys):
            self.at = time.time()
            self.event.set()

    def drop(self) -> None:
        """Everything dropped (the bus was lost, resubscribed, or asked for it)."""
        self.cleared.set()


def main() -> None:
    repo = UserRepository()
    watcher = Watcher()
    coherence.register(watcher, current_settings().table_name("users"))
    live = bus.current()
    assert live is not None, "PORTCHOPS_CACHE_BUS_URL is not set"
    ready = live.wait_serving(timeout=30)
    reply({"ready": ready})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        if command == "read":
            reply(read(repo, args[0]))
        elif command == "read-all":
            results = [read(repo, user_id) for user_id in args]
            names = [result["name"] for result in results]
            reply({"names": names, "hits": sum(bool(result["hit"]) for result in results)})
        elif command == "watch":
            watcher.arm(args[0])
            reply({"ok": True})
        elif command == "evicted":
            watcher.event.wait(float(args[0]))
            reply({"at": watcher.at})
        elif command == "state":
            reply({"ok": live.wait_serving(args[0] == "serving", timeout=float(args[1]))})
        elif command == "metrics":
            snap = default_metrics().snapshot()
            keys = ("invalidations_received", "bus_reconnects", "write_to_eviction_p99_ms")
            reply({key: snap[key] for key in keys})  # type: ignore[literal-required]
        elif command == "quit":
            break


def read(repo: UserRepository, user_id: str) -> dict[str, object]:
    cache = repo.cache
    assert cache is not None
    hits = cache.info().hits
    user = repo.find(user_id)
    return {"name": None if user is None else user.name, "hit": cache.info().hits > hits}


def reply(body: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


class Agent:
    """Process B: ``tests/bus_agent.py`` in a child process, driven line by line."""

    def __init__(self, settings: Settings) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTCHOPS_")},
            "PORTCHOPS_ENDPOINT_URL": str(settings.endpoint_url),
            "PORTCHOPS_TABLE_PREFIX": settings.table_prefix,
            "PORTCHOPS_CACHE_BUS_URL": str(settings.cache_bus_url),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bus_agent"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.recv() == {"ready": True}

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the agent exited"
        body: dict[str, Any] = json.loads(line)
        return body

    def ask(self, *words: object) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        return self.recv()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.ask_quietly("quit")
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def ask_quietly(self, *words: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()


if __name__ == "__main__":
    main()

"""Scenario 16: a cache hit against a dictionary, and against a loopback miss.

What a hit can cost at best is a dictionary lookup plus handing out an object the
caller may mutate without touching what the cache holds. The floor here is exactly
that: ``cachetools.TTLCache`` (the same size and TTL as the default cache) holding
decoded ``User`` models, a lookup and a ``copy.copy`` of the model per get. The
contenders, over the same 500 users:

* ``UserRepository().get``, every get a hit on the default cache (filled once);
* ``AsyncUserRepository().get``, the same, awaited one after the other;
* the floor above;
* ``UserRepository(cache=None).get`` straight to dynalite on loopback (no proxy, no
  added latency): the cheapest miss there is.

Wall per get of the calling thread's loop (hits are CPU work), interleaved rounds,
GC on. Targets (issue 25): a hit, sync and async, within 3x of the floor (judged on
the worst round), and a loopback miss at least 200x a hit's time (median and whole
range).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import cachetools

from portchops_models import User, UserRepository
from portchops_models.metrics import Metrics

from .common import Column, ScenarioResult, Spread, Target, interleaved, ratio, use_layer
from .concurrent_gets import _async_layer
from .context import Bench

HIT = "UserRepository.get, cache hit"
ASYNC_HIT = "AsyncUserRepository.get, cache hit"
FLOOR = "cachetools.TTLCache lookup + copy.copy"
MISS = "UserRepository(cache=None).get, loopback miss"
ORDER = (HIT, ASYNC_HIT, FLOOR, MISS)


def _async_cached() -> tuple[Any, str]:
    """``AsyncUserRepository()`` with the default cache, or (None, why not)."""
    layer, why_not = _async_layer()
    if layer is None:
        return None, why_not
    from portchops_models.aio import AsyncUserRepository

    return AsyncUserRepository(metrics=Metrics()), ""


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    settings = use_layer(bench.engine_url)
    hit_keys = bench.user_ids[: settings.cache_maxsize]
    miss_keys = bench.user_ids[: scale.point_ops]
    warm = UserRepository(metrics=Metrics())
    cold = UserRepository(cache=None, metrics=Metrics())
    floor: cachetools.TTLCache[tuple[str, None], User] = cachetools.TTLCache(
        maxsize=settings.cache_maxsize, ttl=settings.cache_ttl_seconds
    )
    for key in hit_keys:
        floor[(key, None)] = warm.get(key)  # fills both caches
    loop = asyncio.new_event_loop()
    async_warm, why_not = _async_cached()

    def hits() -> None:
        for _ in range(scale.hit_passes):
            for key in hit_keys:
                warm.get(key)

    def floor_hits() -> None:
        for _ in range(scale.hit_passes):
            for key in hit_keys:
                copy.copy(floor[(key, None)])

    def misses() -> None:
        for key in miss_keys:
            cold.get(key)

    async def async_hits() -> None:
        for _ in range(scale.hit_passes):
            for key in hit_keys:
                await async_warm.get(key)

    contenders: dict[str, Callable[[], Any]] = {HIT: hits, FLOOR: floor_hits, MISS: misses}
    if async_warm is not None:
        try:
            for key in hit_keys:
                loop.run_until_complete(async_warm.get(key))
            contenders[ASYNC_HIT] = lambda: loop.run_until_complete(async_hits())
        except Exception as err:  # a half-built layer: say so, measure nothing
            why_not = f"async layer: failed ({type(err).__name__}: {err})"
    try:
        samples = interleaved(contenders, scale.point_rounds)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())  # closes the layer's session
        loop.close()
    hits_per_round = len(hit_keys) * scale.hit_passes
    ops = {HIT: hits_per_round, ASYNC_HIT: hits_per_round, FLOOR: hits_per_round}
    ops[MISS] = len(miss_keys)
    wall = {name: [s.wall / ops[name] for s in runs] for name, runs in samples.items()}
    rows: list[dict[str, Any]] = []
    for name in ORDER:
        if name not in wall:
            rows.append({"contender": name, "note": why_not})
            continue
        per_get = Spread.of(wall[name])
        rows.append(
            {
                "contender": name,
                "gets": ops[name],
                "us_per_get": per_get.median * 1e6,
                "range": f"{per_get.low * 1e6:,.2f}-{per_get.high * 1e6:,.2f}",
                "floor": FLOOR,
                "vs_floor": ratio(wall[name], wall[FLOOR]).times(),
                "note": "",
            }
        )

    def against(a: str, b: str) -> Spread | None:
        return ratio(wall[a], wall[b]) if a in wall and b in wall else None

    targets = []
    for name, label in ((HIT, "cache hit"), (ASYNC_HIT, "async cache hit")):
        measured = against(name, FLOOR)
        targets.append(
            Target(
                f"{label}: wall per get",
                measured.median if measured else None,
                3.0,
                "<=",
                spread=measured.range if measured else None,
                note="" if measured else why_not,
                source="#25",
                floor=FLOOR,
            )
        )
    speedup = ratio(wall[MISS], wall[HIT])
    targets.append(
        Target(
            "cache hit: speed-up",
            speedup.median,
            200,
            ">=",
            spread=speedup.range,
            source="#25",
            floor=MISS,
        )
    )
    notes = [
        f"{scale.point_rounds} interleaved rounds: {hits_per_round:,} hits ({scale.hit_passes} "
        f"passes over {len(hit_keys)} keys) and {len(miss_keys)} misses per round; wall per "
        "get of the calling thread's loop; medians and (min-max) ranges; GC on.",
        f"Caches: the default policy ({settings.cache_maxsize} entries, "
        f"{settings.cache_ttl_seconds:g} s) and a TTLCache of the same size and TTL; the "
        "miss goes to dynalite directly (no proxy, no added latency).",
    ]
    if ASYNC_HIT not in wall:
        notes.append(why_not)
    return ScenarioResult(
        key="cache_hit",
        title="16. Cache hit vs a dictionary and a loopback miss",
        setup={"keys": len(hit_keys), "passes": scale.hit_passes, "rounds": scale.point_rounds},
        columns=[
            Column("contender", "contender", "{}"),
            Column("gets", "gets/round", "{:,}"),
            Column("us_per_get", "wall µs/get", "{:,.2f}"),
            Column("range", "range", "{}"),
            Column("floor", "floor", "{}"),
            Column("vs_floor", "vs floor", "{}"),
            Column("note", "note", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
    )

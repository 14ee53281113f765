"""The async half of `ItemCache`: single-flight loads per event loop, tested directly.

No engine: the loaders are coroutines of the test, gated by events, so each interleaving
is forced rather than hoped for.
"""

from __future__ import annotations

import asyncio

import pytest

from portchops_models.cache import CachePolicy, ItemCache


def _cache() -> ItemCache[str, str]:
    return ItemCache(CachePolicy(maxsize=10, ttl=60.0))


def test_concurrent_misses_on_one_loop_run_one_loader() -> None:
    cache = _cache()
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # let the others arrive and wait for this load
        return "ada"

    async def scenario() -> list[str | None]:
        return await asyncio.gather(*(cache.aget_or_load("u1", None, loader) for _ in range(50)))

    assert asyncio.run(scenario()) == ["ada"] * 50
    assert calls == 1
    assert (cache.hits, cache.misses) == (49, 1)


def test_a_load_begun_before_an_invalidation_is_neither_joined_nor_stored() -> None:
    cache = _cache()

    async def scenario() -> tuple[str | None, str | None, str | None]:
        gate = asyncio.Event()  # holds the old load until the new one is done

        async def old() -> str:
            await gate.wait()
            return "stale"

        async def new() -> str:
            return "fresh"

        first = asyncio.create_task(cache.aget_or_load("u1", None, old))
        await asyncio.sleep(0)  # the old load is in flight
        cache.invalidate(["u1"])  # a write landed meanwhile
        second = await cache.aget_or_load("u1", None, new)  # not joined to the old load
        gate.set()
        first_value = await first
        third = await cache.aget_or_load("u1", None, old)  # served: the fresh value
        return first_value, second, third

    assert asyncio.run(scenario()) == ("stale", "fresh", "fresh")


def test_a_failing_loader_caches_nothing_and_a_waiter_loads_again() -> None:
    cache = _cache()
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise ConnectionError("lost")
        return "ada"

    async def scenario() -> list[object]:
        return await asyncio.gather(
            cache.aget_or_load("u1", None, flaky),
            cache.aget_or_load("u1", None, flaky),
            return_exceptions=True,
        )

    first, second = asyncio.run(scenario())
    assert isinstance(first, ConnectionError)
    assert second == "ada"
    assert attempts == 2
    assert len(cache) == 1


def test_each_event_loop_has_flights_of_its_own() -> None:
    cache = _cache()

    async def load(value: str) -> str:
        return value

    assert asyncio.run(cache.aget_or_load("u1", None, lambda: load("a"))) == "a"
    cache.clear()
    assert asyncio.run(cache.aget_or_load("u1", None, lambda: load("b"))) == "b"


@pytest.mark.parametrize("open_", [True, False])
def test_a_closed_gate_serves_nothing_from_the_cache(open_: bool) -> None:
    cache: ItemCache[str, str] = ItemCache(CachePolicy(), gate=lambda: open_)
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        return "ada"

    async def scenario() -> None:
        await cache.aget_or_load("u1", None, loader)
        await cache.aget_or_load("u1", None, loader)

    asyncio.run(scenario())
    assert calls == (1 if open_ else 2)

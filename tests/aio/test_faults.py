"""The async repositories under the fault proxy, on moto and on dynalite.

Throttles, 5xx, dropped connections and partial batches are retried by the same
loop as the sync API; lost answers do not double a write; a silent endpoint ends
each call within ``call_timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from portchops_models import CallTimeout, ThrottledError, User, UserProgress, configure
from portchops_models.aio import AsyncUserProgressRepository, AsyncUserRepository
from portchops_models.metrics import Metrics
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry


@pytest.fixture
def faulty(any_tables: Settings, engine_url: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of each engine in turn; settings point at it."""
    with FaultProxy(upstream=engine_url, seed=5) as running:
        configure(any_tables, endpoint_url=running.endpoint_url)
        yield running


def test_batches_complete_under_throttles_5xx_drops_and_partial_batches(
    faulty: FaultProxy,
) -> None:
    users = AsyncUserRepository(cache=None, retry=fast_retry(max_attempts=30))
    items = [User(user_id=f"u{i:04}", email=f"{i}@x.io", name=f"N{i}") for i in range(600)]
    faulty.faults = Faults(unprocessed=0.3, throttle=0.1, server_error=0.02, drop=0.01)

    async def scenario() -> list[User]:
        assert await users.batch_save(items) == 600
        return await users.batch_get([u.user_id for u in reversed(items)])

    got = asyncio.run(scenario())
    faulty.faults = Faults()
    assert faulty.stats.throttled > 0
    assert faulty.stats.unprocessed_keys > 0
    assert faulty.stats.unprocessed_items > 0
    assert [u.user_id for u in got] == [u.user_id for u in reversed(items)]
    assert all(u.name == f"N{int(u.user_id[1:])}" for u in got)


def test_counters_count_once_under_lost_answers(faulty: FaultProxy) -> None:
    progress = AsyncUserProgressRepository(cache=None, retry=fast_retry())
    faulty.faults = Faults(lost_answer=0.2, operations=frozenset({"UpdateItem"}))

    async def scenario() -> UserProgress:
        for n in range(60):
            await progress.record_attempt("u1", "l1", 40 + n % 50)
        return await progress.get("u1", "l1", consistent=True)

    row = asyncio.run(scenario())
    assert faulty.stats.lost_answers > 0
    assert row.attempts == 60


def test_a_permanent_throttle_gives_up_after_max_attempts(faulty: FaultProxy) -> None:
    metrics = Metrics()
    users = AsyncUserRepository(cache=None, retry=fast_retry(max_attempts=4), metrics=metrics)
    faulty.faults = Faults(throttle=1.0)
    with pytest.raises(ThrottledError) as info:
        asyncio.run(users.get("u1"))
    assert info.value.attempts == 4
    assert faulty.stats.throttled == 4
    assert metrics.snapshot()["throttled_requests"] == 4


def test_a_silent_endpoint_ends_each_call_within_its_timeout(faulty: FaultProxy) -> None:
    configure(current_connection().settings, call_timeout=2.0)
    users = AsyncUserRepository(cache=None)
    faulty.faults = Faults(hang=1.0)
    start = time.monotonic()
    with pytest.raises(CallTimeout):
        asyncio.run(users.get("u1"))
    elapsed = time.monotonic() - start
    assert elapsed < 4.0, f"took {elapsed:.2f}s"


def test_fifty_concurrent_gets_through_the_proxy_send_one_getitem(faulty: FaultProxy) -> None:
    users = AsyncUserRepository()

    async def scenario() -> set[str]:
        await users.save(User(user_id="hot", email="h@x.io", name="Hot"))
        faulty.reset_stats()
        got = await asyncio.gather(*(users.get("hot") for _ in range(50)))
        return {u.name for u in got}

    assert asyncio.run(scenario()) == {"Hot"}
    assert [r.operation for r in faulty.seen].count("GetItem") == 1

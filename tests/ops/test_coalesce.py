"""Coalesced point reads (``coalesce=True``) answer exactly as separate reads do.

Every test runs through the fault proxy in front of moto: concurrent gets of distinct keys
(present, missing, expired, projected) return what separate gets return while the proxy
hands back partial batches and throttles, with fewer requests on the wire; a bad key, a
failed request or a deadline fails only the gets it concerns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portchops_models import (
    CallTimeout,
    InvalidRequest,
    ItemNotFound,
    Projection,
    ThrottledError,
    UserProgress,
    UserProgressRepository,
    configure,
)
from portchops_models.aio import AsyncUserProgressRepository
from portchops_models.cache import CachePolicy
from portchops_models.metrics import Metrics
from portchops_models.settings import current_settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry

Key = tuple[str, str]
PRESENT = [("u1", f"l{i:03}") for i in range(170)]
EXPIRED: Key = ("u1", "old")
MISSING = [("u2", f"m{i:03}") for i in range(29)]
KEYS = [*PRESENT, EXPIRED, *MISSING]  # 200 distinct keys


class Score(Projection[UserProgress]):
    status: str
    score: float


@pytest.fixture
def rows(proxy: FaultProxy) -> FaultProxy:
    """170 rows, one expired row (written behind the layer), counters zeroed."""
    progress = UserProgressRepository(cache=None)
    progress.batch_save(
        [
            UserProgress(user_id=u, lesson_id=lid, status="started", score=i)
            for i, (u, lid) in enumerate(PRESENT)
        ]
    )
    past = datetime.now(UTC) - timedelta(hours=1)
    stale = UserProgress(user_id=EXPIRED[0], lesson_id=EXPIRED[1], ttl=past).serialize()
    current_connection().call("PutItem", {"TableName": UserProgress.table_name(), "Item": stale})
    proxy.reset_stats()
    return proxy


def plain(found: object) -> object:
    """A result in comparable form: a model's attributes, a projection, None or an error."""
    if isinstance(found, UserProgress):
        return found.attribute_values
    if isinstance(found, BaseException):
        return type(found)
    return found


async def gather_finds(
    repo: AsyncUserProgressRepository, keys: Sequence[Key], **options: Any
) -> list[object]:
    got = await asyncio.gather(
        *(repo.find(*key, **options) for key in keys), return_exceptions=True
    )
    return [plain(g) for g in got]


def operations(proxy: FaultProxy) -> list[str]:
    return [r.operation for r in proxy.seen]


# ---------------------------------------------------------------------- async


def test_200_async_gets_match_separate_gets_under_partial_batches_and_throttles(
    rows: FaultProxy,
) -> None:
    separate = AsyncUserProgressRepository(cache=None)
    metrics = Metrics()
    coalesced = AsyncUserProgressRepository(
        cache=None, coalesce=True, metrics=metrics, retry=fast_retry(max_attempts=30)
    )
    expected = asyncio.run(gather_finds(separate, KEYS))
    assert operations(rows).count("GetItem") == 200
    assert expected.count(None) == 30  # the missing keys and the expired row
    rows.reset_stats()
    rows.faults = Faults(unprocessed=0.5, throttle=0.2, operations=frozenset({"BatchGetItem"}))

    got = asyncio.run(gather_finds(coalesced, KEYS))

    rows.faults = Faults()
    assert got == expected
    stats = rows.stats
    assert stats.unprocessed_keys > 0
    assert stats.throttled > 0
    assert stats.by_operation.get("GetItem", 0) == 0
    assert stats.requests < 200
    by_operation = metrics.snapshot()["operations"]
    assert "GetItem" not in by_operation
    assert by_operation["BatchGetItem"]["requests"] == stats.requests


def test_gets_raising_item_not_found_and_projected_gets_match(rows: FaultProxy) -> None:
    separate = AsyncUserProgressRepository(cache=None)
    coalesced = AsyncUserProgressRepository(
        cache=None, coalesce=True, retry=fast_retry(max_attempts=30)
    )

    async def gets(repo: AsyncUserProgressRepository) -> list[object]:
        got = await asyncio.gather(
            *(repo.get(*key, projection=Score) for key in KEYS), return_exceptions=True
        )
        return [plain(g) for g in got]

    expected = asyncio.run(gets(separate))
    rows.reset_stats()
    rows.faults = Faults(unprocessed=0.5, operations=frozenset({"BatchGetItem"}))
    got = asyncio.run(gets(coalesced))
    rows.faults = Faults()
    assert got == expected
    assert expected.count(ItemNotFound) == 30
    assert all(isinstance(g, Score) for g in expected if g is not ItemNotFound)
    assert set(operations(rows)) == {"BatchGetItem"}
    projections = {
        r.payload["RequestItems"][UserProgress.table_name()].get(  # type: ignore[index]
            "ProjectionExpression"
        )
        for r in rows.seen
    }
    assert None not in projections
    assert len(projections) == 1


def test_a_bad_key_fails_alone(rows: FaultProxy) -> None:
    coalesced = AsyncUserProgressRepository(cache=None, coalesce=True)
    keys: list[Any] = [*PRESENT[:20], ("u1", ""), *PRESENT[20:40]]

    got = asyncio.run(gather_finds(coalesced, keys))

    assert got[20] is InvalidRequest
    assert [g["lesson_id"] for g in got if isinstance(g, dict)] == [k[1] for k in PRESENT[:40]]
    assert operations(rows) == ["BatchGetItem"]


def test_a_failed_request_fails_only_the_gets_it_carried(rows: FaultProxy) -> None:
    separate = UserProgressRepository(cache=None)
    expected = [plain(separate.find(*key)) for key in PRESENT]
    coalesced = AsyncUserProgressRepository(
        cache=None, coalesce=True, retry=fast_retry(max_attempts=1)
    )
    rows.faults = Faults(throttle=0.5, operations=frozenset({"BatchGetItem"}))

    async def tries() -> list[list[object]]:  # 170 keys a try: two batches, 100 and 70
        return [await gather_finds(coalesced, PRESENT) for _ in range(12)]

    outcomes = asyncio.run(tries())

    rows.faults = Faults()
    answered = failed = 0
    for got in outcomes:
        for part in (slice(0, 100), slice(100, 170)):  # each batch answers, or fails, whole
            if got[part] == expected[part]:
                answered += 1
            else:
                assert set(got[part]) == {ThrottledError}
                failed += 1
    assert answered > 0
    assert failed > 0


def test_consistent_gets_use_consistent_read(rows: FaultProxy) -> None:
    coalesced = AsyncUserProgressRepository(coalesce=True)

    got = asyncio.run(gather_finds(coalesced, PRESENT[:50], consistent=True))

    assert [g["score"] for g in got if isinstance(g, dict)] == list(range(50))
    [request] = rows.seen
    assert request.operation == "BatchGetItem"
    assert request.payload["RequestItems"][UserProgress.table_name()]["ConsistentRead"] is True  # type: ignore[index]
    assert coalesced.cache is not None
    assert len(coalesced.cache) == 0  # bypassed, as before


def test_cached_gets_coalesce_their_misses_and_fill_the_cache(rows: FaultProxy) -> None:
    metrics = Metrics()
    coalesced = AsyncUserProgressRepository(
        cache=CachePolicy(maxsize=1000, ttl=300.0), coalesce=True, metrics=metrics
    )
    twice = [*KEYS, *KEYS]  # each key asked twice in the same tick: one load per key

    async def scenario() -> tuple[list[object], list[object]]:
        return await gather_finds(coalesced, twice), await gather_finds(coalesced, KEYS)

    first, second = asyncio.run(scenario())

    assert first[:200] == first[200:] == second
    snap = metrics.snapshot()
    # missing keys are not cached (no negative_ttl): the second round reads them again
    assert snap["cache_misses"] == 230
    assert snap["cache_hits"] == 370
    assert operations(rows) == ["BatchGetItem"] * 3


def test_each_get_keeps_its_deadline(rows: FaultProxy) -> None:
    configure(current_settings(), call_timeout=0.5)
    coalesced = AsyncUserProgressRepository(cache=None, coalesce=True)
    rows.faults = Faults(hang=1.0)

    got = asyncio.run(gather_finds(coalesced, PRESENT[:30]))

    rows.faults = Faults()
    assert set(got) == {CallTimeout}


def test_off_by_default(rows: FaultProxy) -> None:
    repo = AsyncUserProgressRepository(cache=None)

    got = asyncio.run(gather_finds(repo, PRESENT[:20]))

    assert len(got) == 20
    assert operations(rows) == ["GetItem"] * 20


def test_a_lone_get_is_a_getitem(rows: FaultProxy) -> None:
    coalesced = AsyncUserProgressRepository(cache=None, coalesce=True)

    got = asyncio.run(coalesced.get(*PRESENT[3]))

    assert got.score == 3
    assert operations(rows) == ["GetItem"]


# ---------------------------------------------------------------------- sync


def in_threads(fn: Callable[[Key], object], keys: Sequence[Key], threads: int) -> list[object]:
    start = threading.Barrier(threads)

    def call(key: Key) -> object:
        try:
            return plain(fn(key))
        except Exception as err:
            return plain(err)

    def worker(index: int) -> list[tuple[int, object]]:
        start.wait()
        return [(i, call(keys[i])) for i in range(index, len(keys), threads)]

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(worker, range(threads)))
    return [got for _, got in sorted(pair for part in parts for pair in part)]


def test_sync_gets_across_threads_match_separate_gets(rows: FaultProxy) -> None:
    separate = UserProgressRepository(cache=None)
    expected = [plain(separate.find(*key)) for key in KEYS]
    coalesced = UserProgressRepository(cache=None, coalesce=True, retry=fast_retry(max_attempts=30))
    rows.reset_stats()
    rows.faults = Faults(unprocessed=0.5, throttle=0.2, operations=frozenset({"BatchGetItem"}))

    got = in_threads(lambda key: coalesced.find(*key), KEYS, 32)

    rows.faults = Faults()
    assert got == expected
    assert rows.stats.requests < 200
    assert rows.stats.by_operation.get("BatchGetItem", 0) > 0


def test_sync_cached_and_projected_gets(rows: FaultProxy) -> None:
    separate = UserProgressRepository(cache=None)
    expected = [plain(separate.find(*key, projection=Score)) for key in KEYS]
    coalesced = UserProgressRepository(coalesce=True, retry=fast_retry())

    got = in_threads(lambda key: coalesced.find(*key, projection=Score), KEYS, 16)
    rows.reset_stats()
    again = [plain(coalesced.find(*key, projection=Score)) for key in KEYS]

    assert got == again == expected
    # what the coalesced loads found is cached; the 30 absent keys are read again (one
    # thread: GetItem each), as without coalescing
    assert rows.stats.by_operation == {"GetItem": 30}


def test_sync_bad_key_and_lone_get(rows: FaultProxy) -> None:
    coalesced = UserProgressRepository(cache=None, coalesce=True)
    with pytest.raises(InvalidRequest):
        coalesced.get("u1", "")
    assert coalesced.get(*PRESENT[5]).score == 5
    assert operations(rows) == ["GetItem"]


@pytest.fixture(autouse=True)
def _no_leftover_faults(proxy: FaultProxy) -> Iterator[None]:
    yield
    proxy.faults = Faults()

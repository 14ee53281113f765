"""The async repositories over HTTP, on moto and on dynalite: every method, each policy.

Each test runs its own ``asyncio.run`` (a fresh event loop), so the async API is
also shown to work under any loop, one after another.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from portchops_models import (
    ConditionFailed,
    InvalidRequest,
    ItemNotFound,
    Projection,
    User,
    UserProgress,
    UserRepository,
)
from portchops_models.aio import (
    AsyncRepository,
    AsyncUserProgressRepository,
    AsyncUserRepository,
)
from portchops_models.metrics import Metrics
from portchops_models.settings import Settings
from portchops_models.tables import create_table
from portchops_models.transport.connection import current_connection
from tests.lesson_model import Lesson

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class UserCard(Projection[User]):
    user_id: str
    name: str


class AsyncLessons(AsyncRepository[Lesson, tuple[str, int]]):
    model = Lesson


def _user(i: int) -> User:
    return User(user_id=f"u{i}", email=f"{i}@x.io", name=f"N{i}")


def test_point_reads_and_writes(any_tables: Settings) -> None:
    users = AsyncUserRepository()

    async def scenario() -> None:
        saved = await users.save(_user(1))
        assert saved.version == 1
        assert (await users.get("u1")).name == "N1"
        assert (await users.find("nobody")) is None
        assert await users.exists("u1")
        assert not await users.exists("nobody")
        card = await users.get("u1", projection=UserCard)
        assert card == UserCard(user_id="u1", name="N1")
        with pytest.raises(ItemNotFound):
            await users.get("nobody")
        updated = await users.update("u1", name="Ada")
        assert (updated.name, updated.version) == ("Ada", 2)
        assert (await users.get("u1")).name == "Ada"  # the update invalidated the cache
        with pytest.raises(ConditionFailed):
            await users.save(saved)  # a stale copy (version 1)
        await users.delete("u1")
        assert await users.find("u1") is None
        assert (await users.get_by_email("1@x.io")) is None

    run(scenario())


def test_batches_queries_counts_and_scans(any_tables: Settings) -> None:
    progress = AsyncUserProgressRepository()

    async def scenario() -> None:
        rows = [
            UserProgress(user_id="u1", lesson_id=f"l{i:03}", status="started") for i in range(30)
        ]
        assert await progress.batch_save(rows) == 30
        keys = [("u1", f"l{i:03}") for i in reversed(range(35))]
        got = await progress.batch_get(keys)
        assert [r.lesson_id for r in got] == [f"l{i:03}" for i in reversed(range(30))]
        page = await progress.query("u1", limit=7)
        assert len(page.items) == 7
        assert page.cursor is not None
        nxt = await progress.query("u1", limit=7, cursor=page.cursor)
        assert nxt.items[0].lesson_id == "l007"
        streamed = [r.lesson_id async for r in progress.iter_query("u1", page_size=4)]
        assert streamed == [f"l{i:03}" for i in range(30)]
        prefixed = await progress.query("u1", lesson_prefix="l00")
        assert len(prefixed.items) == 10
        assert await progress.count("u1") == 30
        first = await progress.scan_page(limit=5)
        assert len(first.items) == 5
        scanned = sorted([r.lesson_id async for r in progress.scan(segments=3)])
        assert scanned == [f"l{i:03}" for i in range(30)]
        assert await progress.batch_delete(keys) == 35
        assert await progress.count("u1") == 0

    run(scenario())


def test_domain_helpers(any_tables: Settings) -> None:
    progress = AsyncUserProgressRepository()
    users = AsyncUserRepository()

    async def scenario() -> None:
        await users.save(_user(2))
        found = await users.get_by_email("2@x.io", projection=UserCard)
        assert found == UserCard(user_id="u2", name="N2")
        await progress.record_attempt("u2", "l1", 40)
        row = await progress.record_attempt("u2", "l1", 90)
        assert (row.attempts, row.status) == (2, "completed")
        assert (await progress.get("u2", "l1")).attempts == 2
        assert (await progress.find(("u2", "l1"))) is not None
        assert await progress.exists("u2", "l1")
        done = await progress.completed("u2")
        assert [r.lesson_id for r in done.items] == ["l1"]
        bumped = await progress.update("u2", "l1", add_attempts=3, score=10.0)
        assert (bumped.attempts, bumped.score) == (5, 10.0)
        await progress.delete("u2", "l1")
        assert not await progress.exists("u2", "l1")
        with pytest.raises(InvalidRequest):
            await progress.update("u2", "l1")

    run(scenario())


def test_expired_rows_are_hidden(any_tables: Settings) -> None:
    progress = AsyncUserProgressRepository()
    past = datetime.now(UTC) - timedelta(hours=1)
    # Written behind the layer (every write through it slides the TTL into the future).
    stale = UserProgress(user_id="u3", lesson_id="old", ttl=past).serialize()
    current_connection().call("PutItem", {"TableName": UserProgress.table_name(), "Item": stale})

    async def scenario() -> None:
        assert await progress.find("u3", "old") is None
        assert (await progress.query("u3")).items == []
        assert await progress.batch_get([("u3", "old")]) == []
        assert await progress.count("u3") == 0
        row = await progress.record_attempt("u3", "old", 50)  # a fresh row, not a revival
        assert row.attempts == 1

    run(scenario())


def test_bad_input_is_a_typed_error(any_tables: Settings) -> None:
    users = AsyncUserRepository()
    progress = AsyncUserProgressRepository()

    async def scenario() -> None:
        with pytest.raises(InvalidRequest, match="user_id"):
            await users.get(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest):
            await progress.query("u1", cursor="not-a-cursor")
        with pytest.raises(InvalidRequest):
            await users.batch_get("u1")
        with pytest.raises(InvalidRequest):
            await progress.query("u1", lesson_prefix="l", between=("a", "b"))

    run(scenario())


def test_the_generic_async_repository(any_tables: Settings) -> None:
    create_table(Lesson)
    lessons = AsyncLessons()

    async def scenario() -> None:
        await lessons.batch_save(
            [
                Lesson(
                    course_id="py",
                    position=i,
                    title=f"T{i}",
                    level="advanced" if i > 5 else "basic",
                )
                for i in range(10)
            ]
        )
        assert (await lessons.get(("py", 3))).title == "T3"
        middle = await lessons.query("py", Lesson.position.between(2, 4))
        assert [x.position for x in middle.items] == [2, 3, 4]
        advanced = await lessons.query("advanced", index=Lesson.by_level)
        assert len(advanced.items) == 4
        updated = await lessons.update(("py", 1), [Lesson.views.add(5)])
        assert updated.views == 5
        with pytest.raises(InvalidRequest, match="no-such-index"):
            await lessons.query("py", index="no-such-index")

    run(scenario())


def test_sync_and_async_see_each_others_writes(any_tables: Settings) -> None:
    metrics = Metrics()
    users = AsyncUserRepository(metrics=metrics)
    sync_users = UserRepository()

    async def read_name() -> str:
        return (await users.get("u5")).name

    sync_users.save(_user(5))
    assert run(read_name()) == "N5"
    sync_users.update("u5", name="Renamed")
    assert run(read_name()) == "Renamed"  # the async cache was invalidated by the sync write
    assert metrics.snapshot()["requests"] >= 2


def test_concurrent_gets_of_one_key_send_one_getitem(any_tables: Settings) -> None:
    UserRepository().save(_user(6))
    metrics = Metrics()
    users = AsyncUserRepository(metrics=metrics)

    async def scenario() -> list[User]:
        return await asyncio.gather(*(users.get("u6") for _ in range(50)))

    got = run(scenario())
    assert {u.name for u in got} == {"N6"}
    assert metrics.snapshot()["operations"]["GetItem"]["requests"] == 1
    assert users.cache is not None
    assert users.cache.info().hits == 49


def test_the_async_api_needs_no_http_library_beyond_the_standard_one(tables: Settings) -> None:
    script = (
        "import asyncio, sys\n"
        "sys.modules['aiohttp'] = None  # not installed: importing it fails\n"
        "from portchops_models import User\n"
        "from portchops_models.aio import AsyncUserRepository\n"
        "async def main() -> None:\n"
        "    users = AsyncUserRepository(cache=None)\n"
        "    await users.save(User(user_id='nohttp', email='n@example.com', name='N'))\n"
        "    print((await users.get('nohttp')).name)\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "PORTCHOPS_ENDPOINT_URL": tables.endpoint_url or "",
        "PORTCHOPS_TABLE_PREFIX": tables.table_prefix,
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "N"

"""Pins the async repositories' types with `assert_type`, for the built-in models and an
app's own model. Checked by `mypy --strict`; the coroutines are never run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import assert_type

from portchops_models import Page, Projection, User, UserProgress
from portchops_models.aio import (
    AsyncRepository,
    AsyncTransaction,
    AsyncUserProgressRepository,
    AsyncUserRepository,
    read_transaction,
)
from tests.lesson_model import Lesson, LessonCard


class UserName(Projection[User]):
    user_id: str
    name: str


class ProgressScore(Projection[UserProgress]):
    lesson_id: str
    score: float


class AsyncLessons(AsyncRepository[Lesson, tuple[str, int]]):
    model = Lesson


async def users() -> None:
    repo = AsyncUserRepository()
    assert_type(await repo.get("u1"), User)
    assert_type(await repo.get("u1", projection=UserName), UserName)
    assert_type(await repo.find("u1"), User | None)
    assert_type(await repo.find("u1", consistent=True, projection=UserName), UserName | None)
    assert_type(await repo.exists("u1"), bool)
    assert_type(await repo.batch_get(["u1", "u2"]), list[User])
    assert_type(await repo.batch_get(["u1"], projection=UserName), list[UserName])
    assert_type(await repo.batch_get(["u1"], consistent=True), list[User])
    assert_type(await repo.batch_get(["u1"], consistent=True, projection=UserName), list[UserName])
    assert_type(await repo.get_by_email("a@x.io"), User | None)
    assert_type(await repo.get_by_email("a@x.io", projection=UserName), UserName | None)
    assert_type(await repo.update("u1", name="Ada"), User)
    assert_type(await repo.save(User(user_id="u1", email="a@x.io", name="A")), User)
    assert_type(await repo.delete("u1"), None)
    assert_type(await AsyncUserRepository(coalesce=True).find("u1"), User | None)
    assert_type(await repo.batch_save([User(user_id="u1", email="a", name="A")]), int)
    assert_type(await repo.batch_delete(["u1"]), int)
    assert_type(repo.scan(segments=4), AsyncIterator[User])
    assert_type(await repo.scan_page(limit=10), Page[User])
    assert_type(repo.scan(index=User.email_index), AsyncIterator[User])
    assert_type(await repo.scan_page(index="email-index", projection=UserName), Page[UserName])


async def progress() -> None:
    repo = AsyncUserProgressRepository()
    assert_type(await repo.get("u1", "l1"), UserProgress)
    assert_type(await repo.get(("u1", "l1"), projection=ProgressScore), ProgressScore)
    assert_type(await repo.find("u1", "l1"), UserProgress | None)
    assert_type(await repo.get(("u1", "l1")), UserProgress)
    assert_type(await repo.get("u1", lesson_id="l1", projection=ProgressScore), ProgressScore)
    assert_type(await repo.find(("u1", "l1"), consistent=True), UserProgress | None)
    assert_type(await repo.exists("u1", "l1"), bool)
    assert_type(await repo.exists(("u1", "l1")), bool)
    assert_type(await repo.delete("u1", "l1"), None)
    assert_type(await repo.delete(("u1", "l1")), None)
    assert_type(await repo.update(("u1", "l1"), [UserProgress.attempts.add(1)]), UserProgress)
    assert_type(await repo.batch_get([("u1", "l1")], consistent=True), list[UserProgress])
    assert_type(repo.iter_query("u1", limit=10, page_size=5), AsyncIterator[UserProgress])
    assert_type(repo.scan(index="completed-index"), AsyncIterator[UserProgress])
    assert_type(await repo.query("u1", lesson_prefix="py-"), Page[UserProgress])
    assert_type(await repo.query("u1", projection=ProgressScore), Page[ProgressScore])
    assert_type(repo.iter_query("u1", page_size=50), AsyncIterator[UserProgress])
    assert_type(repo.iter_query("u1", projection=ProgressScore), AsyncIterator[ProgressScore])
    assert_type(await repo.completed("u1"), Page[UserProgress])
    assert_type(await repo.record_attempt("u1", "l1", 88.0), UserProgress)
    assert_type(await repo.update("u1", "l1", score=1.0), UserProgress)
    assert_type(await repo.count("u1"), int)
    async for row in repo.iter_query("u1"):
        assert_type(row, UserProgress)


async def lessons() -> None:
    repo = AsyncLessons()
    key = ("py", 1)
    assert_type(await repo.get(key), Lesson)
    assert_type(await repo.get(key, projection=LessonCard), LessonCard)
    assert_type(await repo.query("py", Lesson.position.between(2, 8)), Page[Lesson])
    assert_type(await repo.query("advanced", index=Lesson.by_level), Page[Lesson])
    assert_type(repo.iter_query("py", projection=LessonCard), AsyncIterator[LessonCard])
    assert_type(repo.iter_query("py", limit=5, page_size=2), AsyncIterator[Lesson])
    assert_type(await repo.batch_get([key], consistent=True), list[Lesson])
    assert_type(
        await repo.batch_get([key], consistent=True, projection=LessonCard), list[LessonCard]
    )
    assert_type(repo.scan(index=Lesson.by_level, projection=LessonCard), AsyncIterator[LessonCard])
    assert_type(await repo.scan_page(index="by-level", limit=3), Page[Lesson])
    assert_type(await repo.update(key, [Lesson.views.add(1)]), Lesson)
    assert_type(await repo.count("py"), int)


async def transactions() -> None:
    async with AsyncTransaction() as tx:
        assert_type(tx.client_request_token, str)
        tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
    assert_type(await AsyncTransaction().commit(), None)
    pair = await read_transaction((User, "u1"), (UserProgress, ("u1", "l1")))
    assert_type(pair, tuple[User | None, UserProgress | None])
    assert_type(await AsyncUserProgressRepository().complete_lesson("u1", "l1", 90), UserProgress)

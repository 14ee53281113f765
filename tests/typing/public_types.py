"""Pins the public types with `assert_type`; checked by `mypy --strict` in `make test`.

The functions are never called: mypy reading them is the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

from portchops_models import (
    CachePolicy,
    EndpointUnreachable,
    Metrics,
    Page,
    Projection,
    RetryPolicy,
    Settings,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
    configure,
)
from portchops_models.metrics import MetricsSnapshot


class UserSummary(Projection[User]):
    user_id: str
    email: str
    name: str


class LessonScore(Projection[UserProgress]):
    lesson_id: str
    score: float


def users() -> None:
    repo = UserRepository()
    assert_type(repo.get("u1"), User)
    assert_type(repo.get("u1", consistent=True), User)
    assert_type(repo.get("u1", projection=UserSummary), UserSummary)
    assert_type(repo.find("u1"), User | None)
    assert_type(repo.find("u1", projection=UserSummary), UserSummary | None)
    assert_type(repo.batch_get(["u1", "u2"]), list[User])
    assert_type(repo.batch_get(["u1"], projection=UserSummary), list[UserSummary])
    assert_type(repo.get_by_email("a@example.com"), User | None)
    assert_type(repo.save(User(user_id="u1")), User)
    assert_type(repo.update("u1", name="Ada"), User)
    assert_type(repo.batch_save([User(user_id="u1")]), int)
    assert_type(repo.scan(segments=4), Iterator[User])
    assert_type(repo.scan(projection=UserSummary), Iterator[UserSummary])
    assert_type(repo.scan_page(), Page[User])
    assert_type(repo.batch_get(["u1"], consistent=True), list[User])
    assert_type(repo.batch_get(["u1"], consistent=True, projection=UserSummary), list[UserSummary])
    assert_type(repo.scan(index="email-index"), Iterator[User])
    assert_type(repo.scan_page(index=User.email_index, projection=UserSummary), Page[UserSummary])
    assert_type(repo.get("u1").email, str)
    assert_type(UserSummary.from_raw({"userId": {"S": "u1"}}), UserSummary)


def progress() -> None:
    repo = UserProgressRepository(cache=None, retry=RetryPolicy(max_attempts=3), metrics=Metrics())
    assert_type(repo.get("u1", "l1"), UserProgress)
    assert_type(repo.get("u1", "l1", projection=LessonScore), LessonScore)
    assert_type(repo.find("u1", "l1"), UserProgress | None)
    assert_type(repo.get(("u1", "l1")), UserProgress)
    assert_type(repo.get("u1", lesson_id="l1", consistent=True), UserProgress)
    assert_type(repo.get(key=("u1", "l1"), projection=LessonScore), LessonScore)
    assert_type(repo.find(("u1", "l1"), projection=LessonScore), LessonScore | None)
    assert_type(repo.exists("u1", "l1"), bool)
    assert_type(repo.exists(("u1", "l1"), consistent=True), bool)
    assert_type(repo.delete("u1", "l1"), None)
    assert_type(repo.delete(("u1", "l1"), condition=UserProgress.attempts < 3), None)
    assert_type(repo.delete(UserProgress(user_id="u1", lesson_id="l1")), None)
    assert_type(repo.update("u1", "l1", score=90.0, add_attempts=1), UserProgress)
    assert_type(repo.update(("u1", "l1"), [UserProgress.attempts.add(1)]), UserProgress)
    assert_type(repo.update(("u1", "l1"), status="completed"), UserProgress)
    assert_type(repo.query("u1"), Page[UserProgress])
    assert_type(repo.query("u1", limit=7, cursor=None, newest_first=True), Page[UserProgress])
    assert_type(repo.query("u1", projection=LessonScore), Page[LessonScore])
    assert_type(repo.query("u1").items, list[UserProgress])
    assert_type(repo.query("u1").cursor, str | None)
    assert_type(repo.iter_query("u1"), Iterator[UserProgress])
    assert_type(repo.iter_query("u1", projection=LessonScore), Iterator[LessonScore])
    assert_type(repo.iter_query("u1", limit=10, page_size=5), Iterator[UserProgress])
    assert_type(repo.iter_query("u1", lesson_prefix="py-", limit=3), Iterator[UserProgress])
    assert_type(repo.completed("u1"), Page[UserProgress])
    assert_type(repo.record_attempt("u1", "l1", 88.0), UserProgress)
    assert_type(repo.batch_get([("u1", "l1")]), list[UserProgress])
    assert_type(repo.batch_get([("u1", "l1")], consistent=True), list[UserProgress])
    assert_type(repo.scan(index=UserProgress.completed_index), Iterator[UserProgress])
    assert_type(repo.scan_page(index="completed-index", limit=5), Page[UserProgress])
    assert_type(repo.batch_delete([("u1", "l1")]), int)


def policies() -> None:
    assert_type(configure(endpoint_url="http://127.0.0.1:8000"), Settings)
    assert_type(CachePolicy(maxsize=10, ttl=1.0).maxsize, int)
    assert_type(Metrics().snapshot(), MetricsSnapshot)
    assert_type(Metrics().snapshot()["cache_hits"], int)
    assert_type(UserRepository(cache=CachePolicy()).metrics, Metrics)
    assert_type(UserRepository(coalesce=True).get("u1"), User)
    try:
        UserRepository().get("u1")
    except EndpointUnreachable as err:
        assert_type(err.attempts, int)
        assert_type(err.outstanding, int)
        assert_type(err.code, str | None)

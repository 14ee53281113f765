"""Repository mechanics on both engines: reads, batches, pages, writes, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from portchops_models import (
    ConditionFailed,
    InvalidRequest,
    ItemNotFound,
    Projection,
    TableNotFound,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.settings import Settings, configure
from portchops_models.testing.engine import DynaliteEngine
from portchops_models.transport.connection import current_connection
from tests.conftest import _configure_with_tables


class UserSummary(Projection[User]):
    user_id: str
    email: str
    name: str


class ProgressStatus(Projection[UserProgress]):
    lesson_id: str
    status: str
    ttl: datetime


def _users(n: int, start: int = 0) -> list[User]:
    return [
        User(user_id=f"u{i:04d}", email=f"u{i}@example.com", name=f"User {i}")
        for i in range(start, start + n)
    ]


def test_get_find_and_item_not_found(any_tables: Settings) -> None:
    repo = UserRepository()
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    assert repo.get("u1").email == "a@example.com"
    assert repo.get("u1", consistent=True).name == "Ada"
    assert repo.find("missing") is None
    with pytest.raises(ItemNotFound) as info:
        repo.get("missing")
    assert info.value.key == "missing"


def test_projection_with_reserved_words(any_tables: Settings) -> None:
    users = UserRepository(cache=None)
    users.save(User(user_id="u1", email="a@example.com", name="Ada"))
    summary = users.get("u1", projection=UserSummary)
    assert summary == UserSummary(user_id="u1", email="a@example.com", name="Ada")
    progress = UserProgressRepository(cache=None)
    progress.save(UserProgress(user_id="u1", lesson_id="l1", status="started"))
    row = progress.get("u1", "l1", projection=ProgressStatus)
    assert (row.lesson_id, row.status) == ("l1", "started")
    assert row.ttl > datetime.now(UTC)
    page = progress.query("u1", projection=ProgressStatus)
    assert [r.status for r in page.items] == ["started"]


def test_batch_get_250_keys_with_duplicates_and_missing_keeps_order(
    any_tables: Settings,
) -> None:
    repo = UserRepository(cache=None)
    assert repo.batch_save(_users(200)) == 200
    keys = [f"u{i:04d}" for i in range(249, -1, -1)]  # 200 present, 50 missing, reversed
    keys += ["u0005", "u0100", "u0249"]  # duplicates
    got = repo.batch_get(keys)
    expected = [f"u{i:04d}" for i in range(199, -1, -1)]
    assert [u.user_id for u in got] == expected
    summaries = repo.batch_get(keys[:60], projection=UserSummary)
    assert [s.user_id for s in summaries] == expected[:10]
    assert all(isinstance(s, UserSummary) for s in summaries)
    assert repo.batch_get([]) == []


def test_query_paged_with_limit_7_through_100_items(any_tables: Settings) -> None:
    repo = UserProgressRepository()
    repo.batch_save(UserProgress(user_id="u1", lesson_id=f"l-{i:03d}") for i in range(100))
    repo.batch_save(UserProgress(user_id="u2", lesson_id=f"l-{i:03d}") for i in range(5))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = repo.query("u1", limit=7, cursor=cursor)
        pages += 1
        assert len(page.items) <= 7
        seen.extend(row.lesson_id for row in page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [f"l-{i:03d}" for i in range(100)]
    assert pages in (15, 16)  # the last full page may be followed by an empty one


def test_query_sort_conditions_and_newest_first(any_tables: Settings) -> None:
    repo = UserProgressRepository()
    lessons = [f"a-{i}" for i in range(5)] + [f"b-{i}" for i in range(5)]
    repo.batch_save(UserProgress(user_id="u1", lesson_id=lesson) for lesson in lessons)
    prefixed = repo.query("u1", lesson_prefix="b-")
    assert [r.lesson_id for r in prefixed.items] == [f"b-{i}" for i in range(5)]
    between = repo.query("u1", between=("a-3", "b-1"), newest_first=True)
    assert [r.lesson_id for r in between.items] == ["b-1", "b-0", "a-4", "a-3"]
    streamed = list(repo.iter_query("u1", page_size=3, newest_first=True))
    assert [r.lesson_id for r in streamed] == sorted(lessons, reverse=True)
    with pytest.raises(InvalidRequest):
        repo.query("u1", lesson_prefix="a", between=("a", "b"))
    with pytest.raises(InvalidRequest):
        repo.query("u1", between=("z", "a"))


def test_tampered_and_foreign_cursors_are_rejected(any_tables: Settings) -> None:
    repo = UserProgressRepository()
    repo.batch_save(UserProgress(user_id=u, lesson_id=f"l{i:02d}") for u in "ab" for i in range(10))
    cursor = repo.query("a", limit=3).cursor
    assert cursor is not None
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (flipped, cursor[:-4], "not-a-cursor", "", cursor + "x"):
        with pytest.raises(InvalidRequest):
            repo.query("a", limit=3, cursor=bad)
    with pytest.raises(InvalidRequest, match="different query"):
        repo.query("b", limit=3, cursor=cursor)
    with pytest.raises(InvalidRequest):
        UserRepository().scan_page(cursor=cursor)


def test_optimistic_locking_conflict(any_tables: Settings) -> None:
    repo = UserRepository(cache=None)
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    first = repo.get("u1")
    second = repo.get("u1")
    first.name = "Ada L."
    repo.save(first)
    assert first.version == 2
    second.name = "Stale"
    with pytest.raises(ConditionFailed, match="version"):
        repo.save(second)
    assert repo.get("u1").name == "Ada L."
    duplicate = User(user_id="u1", email="b@example.com", name="New")
    with pytest.raises(ConditionFailed):
        repo.save(duplicate)  # a new item (no version) must not overwrite an existing one


def test_save_with_condition_and_delete(any_tables: Settings) -> None:
    repo = UserRepository()
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    user = repo.get("u1")
    user.name = "Changed"
    with pytest.raises(ConditionFailed):
        repo.save(user, condition=User.email == "other@example.com")
    repo.save(user, condition=User.email == "a@example.com")
    assert repo.get("u1").name == "Changed"
    with pytest.raises(ConditionFailed):
        repo.delete("u1", condition=User.name == "nope")
    repo.delete("u1")
    assert repo.find("u1") is None


def test_created_and_updated_at_are_maintained(any_tables: Settings) -> None:
    repo = UserRepository(cache=None)
    user = User(user_id="u1", email="a@example.com", name="Ada")
    created = user.created_at
    repo.save(user)
    first_update = repo.get("u1").updated_at
    again = repo.get("u1")
    repo.save(again)
    stored = repo.get("u1")
    assert stored.created_at == created
    assert stored.updated_at >= first_update


def test_every_progress_write_refreshes_ttl(any_tables: Settings) -> None:
    configure(any_tables, progress_ttl_hours=48)
    repo = UserProgressRepository(cache=None)
    row = UserProgress(user_id="u1", lesson_id="l1", ttl=datetime.now(UTC) + timedelta(minutes=5))
    repo.save(row)
    horizon = datetime.now(UTC) + timedelta(hours=47)
    assert repo.get("u1", "l1").ttl > horizon
    updated = repo.record_attempt("u1", "l2", 50)
    assert updated.ttl > horizon
    repo.batch_save([UserProgress(user_id="u1", lesson_id="l3", ttl=1)])
    assert repo.get("u1", "l3").ttl > horizon


def test_expired_items_are_left_out(any_tables: Settings) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    # Written behind the layer (every write through it slides the TTL into the future).
    stale = UserProgress(user_id="u1", lesson_id="old", ttl=past).serialize()
    current_connection().call("PutItem", {"TableName": UserProgress.table_name(), "Item": stale})
    UserProgress(user_id="u1", lesson_id="new").save()
    repo = UserProgressRepository()
    assert repo.find("u1", "old") is None
    with pytest.raises(ItemNotFound):
        repo.get("u1", "old")
    assert [r.lesson_id for r in repo.query("u1").items] == ["new"]
    assert [r.lesson_id for r in repo.batch_get([("u1", "old"), ("u1", "new")])] == ["new"]


@pytest.fixture
def atomic_tables(dynalite_engine: DynaliteEngine) -> Iterator[Settings]:
    """Tables on dynalite: moto's server applies a conditional UpdateItem on a copy of the
    item without a lock, so two concurrent updates of one item can lose one; dynalite,
    like DynamoDB, applies them one at a time."""
    yield from _configure_with_tables(dynalite_engine.endpoint_url)


def test_record_attempt_is_atomic_under_8_threads(atomic_tables: Settings) -> None:
    repo = UserProgressRepository()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                repo.record_attempt("u1", "l1", 40 + 5 * n + i)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    row = repo.get("u1", "l1", consistent=True)
    assert row.attempts == 80
    assert row.status == "completed"  # some attempt scored >= 70
    assert row.completed_at is not None


def test_completed_uses_the_sparse_index(any_tables: Settings) -> None:
    repo = UserProgressRepository()
    repo.record_attempt("u1", "l1", 90)
    repo.record_attempt("u1", "l2", 10)
    repo.record_attempt("u1", "l3", 75)
    repo.record_attempt("u1", "l3", 20)  # a later low score does not undo completion
    done = repo.completed("u1")
    assert sorted(r.lesson_id for r in done.items) == ["l1", "l3"]
    assert repo.get("u1", "l3").status == "completed"
    assert repo.get("u1", "l2").status == "started"


def test_get_by_email(any_tables: Settings) -> None:
    repo = UserRepository()
    repo.batch_save(_users(5))
    found = repo.get_by_email("u3@example.com")
    assert found is not None
    assert found.user_id == "u0003"
    assert repo.get_by_email("nobody@example.com") is None
    summary = repo.get_by_email("u2@example.com", projection=UserSummary)
    assert summary is not None
    assert summary.name == "User 2"


def test_batch_save_and_delete_any_number(any_tables: Settings) -> None:
    repo = UserRepository(cache=None)
    assert repo.batch_save(_users(60)) == 60
    assert len(list(repo.scan())) == 60
    assert repo.batch_delete([f"u{i:04d}" for i in range(30)] + ["u0001"]) == 30
    assert sorted(u.user_id for u in repo.scan()) == [f"u{i:04d}" for i in range(30, 60)]
    with pytest.raises(InvalidRequest, match="twice"):
        repo.batch_save(_users(2) + _users(1))


def test_parallel_scan_reads_everything_once(any_tables: Settings) -> None:
    repo = UserRepository(cache=None)
    repo.batch_save(_users(120))
    ids = [u.user_id for u in repo.scan(segments=4)]
    assert sorted(ids) == [f"u{i:04d}" for i in range(120)]
    summaries = list(repo.scan(segments=3, projection=UserSummary))
    assert len(summaries) == 120
    page = repo.scan_page(segment=1, total_segments=4, limit=5)
    assert len(page.items) <= 5
    with pytest.raises(InvalidRequest):
        repo.scan_page(segment=4, total_segments=4)


def test_update_increments_atomically(any_tables: Settings) -> None:
    repo = UserProgressRepository()
    repo.update("u1", "l1", add_attempts=2, score=10)
    row = repo.update("u1", "l1", add_attempts=3, status="completed")
    assert (row.attempts, row.score, row.status) == (5, 10, "completed")
    assert row.completed_at is not None
    with pytest.raises(InvalidRequest):
        repo.update("u1", "l1")
    with pytest.raises(InvalidRequest):
        repo.update("u1", "l1", status="done")


def test_missing_table_names_it_and_how_to_create(moto_engine: object) -> None:
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix="absent-")  # type: ignore[attr-defined]
    with pytest.raises(TableNotFound) as info:
        UserRepository().get("u1")
    assert "absent-users" in str(info.value)
    assert "portchops migrate up" in str(info.value)


@pytest.mark.parametrize(
    "key",
    ["", "x" * 2049, 42, None, ("u", "l")],
)
def test_bad_user_keys_raise_invalid_request(tables: Settings, key: object) -> None:
    with pytest.raises(InvalidRequest):
        UserRepository().get(key)  # type: ignore[arg-type]


def test_bad_progress_keys_and_items(tables: Settings) -> None:
    repo = UserProgressRepository()
    with pytest.raises(InvalidRequest):
        repo.get("u", "x" * 1025)
    with pytest.raises(InvalidRequest):
        repo.get("", "l")
    with pytest.raises(InvalidRequest, match="409600"):
        repo.save(UserProgress(user_id="u", lesson_id="l", status="s" * 410_000))
    with pytest.raises(InvalidRequest):
        repo.save(UserProgress(user_id="u", lesson_id="l", score=float("nan")))
    with pytest.raises(InvalidRequest):
        repo.record_attempt("u", "l", float("inf"))
    assert repo.find("u", "l") is None  # nothing was written


def test_cursor_secret_setting_lets_cursors_travel_between_processes(
    any_tables: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTCHOPS_CURSOR_SECRET", "shared-secret-for-all")
    settings = configure(endpoint_url=any_tables.endpoint_url, table_prefix=any_tables.table_prefix)
    assert settings.cursor_secret is not None
    assert "shared-secret-for-all" not in repr(settings)
    repo = UserProgressRepository()
    repo.batch_save(UserProgress(user_id="u1", lesson_id=f"l{i}") for i in range(5))
    cursor = repo.query("u1", limit=2).cursor
    assert cursor is not None
    configure(settings, cursor_secret="another-secret-value")
    with pytest.raises(InvalidRequest):
        repo.query("u1", limit=2, cursor=cursor)
    configure(settings)
    assert len(repo.query("u1", limit=2, cursor=cursor).items) == 2


def test_cache_is_invalidated_by_every_write(any_tables: Settings) -> None:
    from portchops_models import CachePolicy, Metrics

    metrics = Metrics()
    users = UserRepository(cache=CachePolicy(negative_ttl=60.0), metrics=metrics)
    assert users.find("u1") is None  # cached as absent
    users.save(User(user_id="u1", email="a@example.com", name="Ada"))
    assert users.get("u1").name == "Ada"
    users.batch_save([User(user_id="u1", email="a@example.com", name="Batch", version=1)])
    assert users.get("u1").name == "Batch"
    users.batch_delete(["u1"])
    assert users.find("u1") is None
    progress = UserProgressRepository(metrics=metrics)
    progress.record_attempt("u1", "l1", 10)
    assert progress.get("u1", "l1").attempts == 1
    progress.record_attempt("u1", "l1", 20)
    assert progress.get("u1", "l1").attempts == 2
    progress.update("u1", "l1", add_attempts=5)
    assert progress.get("u1", "l1").attempts == 7
    progress.delete("u1", "l1")
    assert progress.find("u1", "l1") is None
    assert metrics.snapshot()["cache_hits"] == 0  # every read after a write went to the table
    assert progress.find("u1", "l1") is None
    assert metrics.snapshot()["cache_misses"] >= 9


def test_condition_failures_name_the_key(any_tables: Settings) -> None:
    progress = UserProgressRepository()
    progress.record_attempt("u1", "l1", 10)
    with pytest.raises(ConditionFailed) as info:
        progress.delete("u1", "l1", condition=UserProgress.status == "completed")
    assert info.value.key == ("u1", "l1")
    with pytest.raises(ConditionFailed) as info:
        progress.update("u1", "l1", score=5, condition=UserProgress.attempts > 3)
    assert info.value.key == ("u1", "l1")
    assert "l1" in str(info.value)


def test_cache_maxsize_zero_turns_caching_off(any_tables: Settings) -> None:
    configure(any_tables, cache_maxsize=0)
    assert UserRepository().cache is None


def test_user_update_is_atomic_and_keeps_optimistic_locking(any_tables: Settings) -> None:
    repo = UserRepository()
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    stale = repo.get("u1")
    updated = repo.update("u1", name="Ada Lovelace")
    assert (updated.name, updated.email, updated.version) == ("Ada Lovelace", "a@example.com", 2)
    assert repo.get("u1").name == "Ada Lovelace"  # the cache was invalidated
    stale.email = "stale@example.com"
    with pytest.raises(ConditionFailed):
        repo.save(stale)
    with pytest.raises(ConditionFailed):
        repo.update("nobody", name="Ghost")  # update never creates a user
    assert repo.find("nobody") is None
    with pytest.raises(ConditionFailed):
        repo.update("u1", email="b@example.com", condition=User.name == "someone else")
    with pytest.raises(InvalidRequest):
        repo.update("u1")

"""The read API of issue 20, sync and async, on moto and on dynalite over HTTP.

``iter_query(limit=N)`` is a total and ``page_size=`` the page; ``batch_get(consistent=)``;
``scan(index=)``; the progress repositories' key forms. Every engine is fronted by a
`FaultProxy` that only records (no faults): what was sent is read from ``proxy.seen``.
Expired rows are written raw (TTL in the past): neither engine sweeps them, the layer
must leave them out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ClassVar, TypeVar

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex

from portchops_models import (
    BaseModel,
    InvalidRequest,
    Metrics,
    Projection,
    Repository,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.aio import AsyncRepository, AsyncUserProgressRepository, AsyncUserRepository
from portchops_models.settings import configure, current_settings
from portchops_models.testing.faultproxy import FaultProxy
from portchops_models.testing.plugin import PROXY_SEED, configured_tables
from portchops_models.transport.connection import current_connection
from tests.lesson_model import Lesson, LessonCard, LessonRepository

T = TypeVar("T")


class ByScore(LocalSecondaryIndex["Note"]):  # type: ignore[no-untyped-call]
    """LSI ``by-score``: one owner's notes by score."""

    class Meta:
        index_name = "by-score"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    score = NumberAttribute(range_key=True)


class ByTag(GlobalSecondaryIndex["Note"]):  # type: ignore[no-untyped-call]
    """Sparse GSI ``by-tag``: only the notes that have a tag."""

    class Meta:
        index_name = "by-tag"
        projection = AllProjection()

    tag = UnicodeAttribute(hash_key=True)
    slug = UnicodeAttribute(range_key=True)


class Note(BaseModel):
    """A model with a local and a (sparse) global index, for index scans."""

    base_table_name: ClassVar[str] = "notes"

    owner = UnicodeAttribute(hash_key=True)
    slug = UnicodeAttribute(range_key=True)
    score = NumberAttribute()
    tag = UnicodeAttribute(null=True)

    by_score = ByScore()
    by_tag = ByTag()


class NoteRepository(Repository[Note, tuple[str, str]]):
    model = Note


class AsyncNotes(AsyncRepository[Note, tuple[str, str]]):
    model = Note


class AsyncLessons(AsyncRepository[Lesson, tuple[str, int]]):
    model = Lesson


class UserCard(Projection[User]):
    user_id: str
    name: str


MODELS = (User, UserProgress, Lesson, Note)


@pytest.fixture
def proxy(engine_url: str) -> Iterator[FaultProxy]:
    """Fresh tables on each engine; the settings point at a recording proxy in front of it."""
    with (
        configured_tables(engine_url, MODELS) as settings,
        FaultProxy(upstream=engine_url, seed=PROXY_SEED) as running,
    ):
        configure(settings, endpoint_url=running.endpoint_url)
        yield running


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _sent(proxy: FaultProxy, operation: str) -> list[dict[str, Any]]:
    """The payloads of the `operation` requests the proxy saw (oldest first)."""
    return [r.payload or {} for r in proxy.seen if r.operation == operation]


def _table(model: type[BaseModel]) -> str:
    return current_settings().table_name(model.base_table_name)


def _put_raw(model: type[BaseModel], items: list[dict[str, Any]]) -> None:
    """Write raw items behind the repositories (no stamps, no sliding TTL)."""
    conn = current_connection()
    for item in items:
        conn.call("PutItem", {"TableName": _table(model), "Item": item})


PAST = int(time.time()) - 3600


def _seed_lessons(proxy: FaultProxy) -> None:
    """py 0..39: even positions live (level "b" at 2, 6, 10...), odd ones expired but
    stored; go 0..7 all live."""
    LessonRepository().batch_save(
        [
            Lesson(course_id="py", position=p, title=f"t{p}", level="ab"[p % 4 == 2])
            for p in range(0, 40, 2)
        ]
        + [Lesson(course_id="go", position=p, title=f"g{p}", level="a") for p in range(8)]
    )
    _put_raw(
        Lesson,
        [
            {
                "courseId": {"S": "py"},
                "position": {"N": str(p)},
                "title": {"S": "dead"},
                "level": {"S": "a"},
                "expiresAt": {"N": str(PAST)},
            }
            for p in range(1, 40, 2)
        ],
    )
    proxy.reset_stats()


def _positions(items: Any) -> list[int]:
    return [item.position for item in items]


def _limits(proxy: FaultProxy) -> list[int | None]:
    return [p.get("Limit") for p in _sent(proxy, "Query")]


# ---------------------------------------------------------------------- iter_query


def test_iter_query_limit_is_a_total_across_pages_and_skips_expired_rows(
    proxy: FaultProxy,
) -> None:
    _seed_lessons(proxy)
    repo = LessonRepository(cache=None)
    live = list(range(0, 40, 2))

    # Each page asks for min(page_size, still wanted): 4 evaluated, 2 of them live, so
    # 9 -> 7 -> 5 -> 3 wanted, then 3 (2 live), then 1 (expired: not counted), then 1.
    assert _positions(repo.iter_query("py", limit=9, page_size=4)) == live[:9]
    assert _limits(proxy) == [4, 4, 4, 3, 1, 1]

    # No page size: the first page asks for the total, later ones for what is missing
    # (expired rows evaluated do not count toward it).
    proxy.reset_stats()
    assert _positions(repo.iter_query("py", limit=3)) == live[:3]
    assert _limits(proxy) == [3, 1, 1]

    # A page never asks for more than are still wanted, and once the total was
    # yielded no page is requested, though the last one had a cursor.
    proxy.reset_stats()
    assert _positions(repo.iter_query("py", limit=4, page_size=8)) == live[:4]
    assert _limits(proxy) == [4, 2, 1]
    proxy.reset_stats()
    assert _positions(repo.iter_query("go", limit=4, page_size=2)) == [0, 1, 2, 3]
    assert _positions(repo.iter_query("go", limit=8, page_size=4)) == list(range(8))
    assert _limits(proxy) == [2, 2, 4, 4]

    # More than there is: every live row, pages until the last cursor.
    proxy.reset_stats()
    assert _positions(repo.iter_query("py", limit=100, page_size=15)) == live
    assert _limits(proxy) == [15, 15, 15]

    # Without limit: every row, page_size a page.
    proxy.reset_stats()
    assert _positions(repo.iter_query("py", page_size=16)) == live
    assert _limits(proxy) == [16, 16, 16]

    # Newest first and on an index, the total still holds.
    assert (
        _positions(repo.iter_query("py", newest_first=True, limit=5, page_size=3))
        == (live[::-1][:5])
    )
    by_level = repo.iter_query("b", index=Lesson.by_level, limit=4, page_size=2)
    assert _positions(by_level) == [p for p in live if p % 4 == 2][:4]
    cards = list(repo.iter_query("py", projection=LessonCard, limit=2))
    assert [c.position for c in cards] == live[:2]
    assert all(isinstance(c, LessonCard) for c in cards)


def test_iter_query_limit_with_a_filter_keeps_the_page_size(proxy: FaultProxy) -> None:
    _seed_lessons(proxy)
    repo = LessonRepository(cache=None)
    # Limit counts rows evaluated before the filter: a smaller last page would only
    # cost round trips, so every page asks for page_size and the surplus is dropped.
    found = repo.iter_query("py", filter_condition=Lesson.level == "b", limit=3, page_size=8)
    assert _positions(found) == [2, 6, 10]
    assert _limits(proxy) == [8, 8]
    proxy.reset_stats()
    assert _positions(repo.iter_query("py", None, Lesson.level == "b", limit=2)) == [2, 6]
    assert _limits(proxy) == [None]  # no page size: DynamoDB's own page, once


def test_query_limit_stays_one_page_of_evaluated_items(proxy: FaultProxy) -> None:
    _seed_lessons(proxy)
    repo = LessonRepository(cache=None)
    page = repo.query("py", limit=4)
    assert _positions(page) == [0, 2]  # 4 evaluated, 2 of them expired
    assert page.cursor is not None
    assert _positions(repo.query("py", limit=4, cursor=page.cursor)) == [4, 6]
    assert _limits(proxy) == [4, 4]


def test_progress_iter_query_limit_and_page_size(proxy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None)
    progress.batch_save([UserProgress(user_id="u1", lesson_id=f"l{i:02}") for i in range(0, 30, 3)])
    _put_raw(
        UserProgress,
        [
            {
                "userId": {"S": "u1"},
                "lessonId": {"S": f"l{i:02}"},
                "status": {"S": "started"},
                "ttl": {"N": str(PAST)},
            }
            for i in range(30)
            if i % 3
        ],
    )
    proxy.reset_stats()
    live = [f"l{i:02}" for i in range(0, 30, 3)]
    rows = progress.iter_query("u1", limit=4, page_size=5)
    assert [r.lesson_id for r in rows] == live[:4]
    # Limit = min(page_size, still wanted): l00..l03 hold 2 live rows, l04-l05 none,
    # l06-l07 one, l08 none, l09 the last (expired rows are evaluated, not counted).
    assert _limits(proxy) == [4, 2, 2, 1, 1]
    proxy.reset_stats()
    assert [r.lesson_id for r in progress.iter_query("u1", page_size=7)] == live
    assert _limits(proxy) == [7] * 5
    prefixed = progress.iter_query("u1", lesson_prefix="l1", limit=2)
    assert [r.lesson_id for r in prefixed] == ["l12", "l15"]
    # The old meaning of page_size is unchanged; limit is no longer a page size.
    assert len(list(progress.iter_query("u1", limit=1))) == 1


def test_iter_query_refuses_bad_limits_at_the_call(proxy: FaultProxy) -> None:
    bad: list[dict[str, Any]] = [
        {"limit": 0},
        {"limit": True},
        {"page_size": -1},
        {"page_size": "5"},
    ]
    for given in bad:
        (name,) = given
        with pytest.raises(InvalidRequest, match=f"{name} must be a positive int"):
            LessonRepository().iter_query("py", **given)
        with pytest.raises(InvalidRequest, match=f"{name} must be a positive int"):
            UserProgressRepository().iter_query("u1", **given)
        with pytest.raises(InvalidRequest, match=f"{name} must be a positive int"):
            AsyncUserProgressRepository().iter_query("u1", **given)
    assert proxy.seen == ()


def test_async_iter_query_limit_and_page_size(proxy: FaultProxy) -> None:
    _seed_lessons(proxy)
    lessons = AsyncLessons(cache=None)
    progress = AsyncUserProgressRepository(cache=None)
    live = list(range(0, 40, 2))

    async def scenario() -> None:
        got = [row.position async for row in lessons.iter_query("py", limit=9, page_size=4)]
        assert got == live[:9]
        assert _limits(proxy) == [4, 4, 4, 3, 1, 1]
        proxy.reset_stats()
        got = [row.position async for row in lessons.iter_query("py", page_size=16)]
        assert got == live
        assert _limits(proxy) == [16, 16, 16]
        proxy.reset_stats()
        filtered = lessons.iter_query("py", None, Lesson.level == "b", limit=3, page_size=8)
        assert [row.position async for row in filtered] == [2, 6, 10]
        assert _limits(proxy) == [8, 8]
        await progress.batch_save([UserProgress(user_id="u2", lesson_id=f"l{i}") for i in range(7)])
        proxy.reset_stats()
        rows = [r.lesson_id async for r in progress.iter_query("u2", limit=5, page_size=2)]
        assert rows == [f"l{i}" for i in range(5)]
        assert _limits(proxy) == [2, 2, 1]

    run(scenario())


# ---------------------------------------------------------------------- batch_get


def test_batch_get_consistent_sends_consistent_read_and_bypasses_the_cache(
    proxy: FaultProxy,
) -> None:
    metrics = Metrics()
    users = UserRepository(metrics=metrics)
    users.batch_save([User(user_id=f"u{i:03}", email=f"{i}@x.io", name="old") for i in range(150)])
    keys = [f"u{i:03}" for i in range(150)]
    assert {u.name for u in users.batch_get(keys)} == {"old"}  # fills the cache
    sent = _sent(proxy, "BatchGetItem")
    assert len(sent) == 2
    assert all("ConsistentRead" not in p["RequestItems"][_table(User)] for p in sent)

    # Changed behind the cache: a plain batch_get is served from it, sending nothing.
    conn = current_connection()
    for key in keys[:3]:
        conn.call(
            "UpdateItem",
            {
                "TableName": _table(User),
                "Key": {"userId": {"S": key}},
                "UpdateExpression": "SET #n = :v",
                "ExpressionAttributeNames": {"#n": "name"},
                "ExpressionAttributeValues": {":v": {"S": "new"}},
            },
        )
    proxy.reset_stats()
    assert [u.name for u in users.batch_get(keys[:3])] == ["old"] * 3
    assert _sent(proxy, "BatchGetItem") == []

    # A consistent batch_get reads every key from the table, each request consistent,
    # and neither counts as a cache hit or miss nor fills the cache.
    before = metrics.snapshot()
    fresh = users.batch_get(keys, consistent=True)
    assert [u.user_id for u in fresh] == keys
    assert [u.name for u in fresh[:4]] == ["new", "new", "new", "old"]
    sent = _sent(proxy, "BatchGetItem")
    assert len(sent) == 2
    assert sorted(len(p["RequestItems"][_table(User)]["Keys"]) for p in sent) == [50, 100]
    assert all(p["RequestItems"][_table(User)]["ConsistentRead"] is True for p in sent)
    after = metrics.snapshot()
    assert (after["cache_hits"], after["cache_misses"]) == (
        before["cache_hits"],
        before["cache_misses"],
    )
    card = users.batch_get(keys[:1], consistent=True, projection=UserCard)
    assert card == [UserCard(user_id="u000", name="new")]
    progress = UserProgressRepository(cache=None)
    progress.save(UserProgress(user_id="u1", lesson_id="l1"))
    proxy.reset_stats()
    assert [r.lesson_id for r in progress.batch_get([("u1", "l1")], consistent=True)] == ["l1"]
    (sent_progress,) = _sent(proxy, "BatchGetItem")
    assert sent_progress["RequestItems"][_table(UserProgress)]["ConsistentRead"] is True


def test_async_batch_get_consistent(proxy: FaultProxy) -> None:
    users = AsyncUserRepository()

    async def scenario() -> None:
        await users.batch_save(
            [User(user_id=f"a{i}", email=f"{i}@x.io", name="old") for i in range(3)]
        )
        assert [u.name for u in await users.batch_get(["a0", "a1"])] == ["old", "old"]
        await asyncio.to_thread(
            current_connection().call,
            "UpdateItem",
            {
                "TableName": _table(User),
                "Key": {"userId": {"S": "a0"}},
                "UpdateExpression": "SET #n = :v",
                "ExpressionAttributeNames": {"#n": "name"},
                "ExpressionAttributeValues": {":v": {"S": "new"}},
            },
        )
        proxy.reset_stats()
        assert [u.name for u in await users.batch_get(["a0"])] == ["old"]  # from the cache
        assert _sent(proxy, "BatchGetItem") == []
        got = await users.batch_get(["a0", "a1", "a9"], consistent=True)
        assert [(u.user_id, u.name) for u in got] == [("a0", "new"), ("a1", "old")]
        (sent,) = _sent(proxy, "BatchGetItem")
        assert sent["RequestItems"][_table(User)]["ConsistentRead"] is True
        lessons = AsyncLessons(cache=None)
        await lessons.save(Lesson(course_id="go", position=1, title="t", level="a"))
        got_lessons = await lessons.batch_get([("go", 1)], consistent=True, projection=LessonCard)
        assert got_lessons == [LessonCard(course_id="go", position=1, title="t")]

    run(scenario())


# ---------------------------------------------------------------------- scan(index=)


def _seed_notes(proxy: FaultProxy) -> None:
    """ada: 12 notes (every third tagged), bob: 3 untagged."""
    NoteRepository().batch_save(
        [
            Note(owner="ada", slug=f"n{i:02}", score=100 - i, tag="x" if i % 3 == 0 else None)
            for i in range(12)
        ]
        + [Note(owner="bob", slug=f"b{i}", score=i) for i in range(3)]
    )
    proxy.reset_stats()


def test_scan_of_a_global_and_a_local_index(proxy: FaultProxy) -> None:
    _seed_notes(proxy)
    notes = NoteRepository(cache=None)
    tagged = sorted(n.slug for n in notes.scan(index=Note.by_tag))  # sparse: tagged only
    assert tagged == ["n00", "n03", "n06", "n09"]
    (sent,) = _sent(proxy, "Scan")
    assert sent["IndexName"] == "by-tag"
    assert sorted(n.slug for n in notes.scan(index="by-tag", segments=3)) == tagged
    by_score = list(notes.scan(index=Note.by_score, filter_condition=Note.score >= 95))
    assert sorted(n.slug for n in by_score) == [f"n{i:02}" for i in range(6)]
    assert len(list(notes.scan(index="by-score"))) == 15
    assert len(list(notes.scan())) == 15
    assert all(p.get("IndexName") in ("by-tag", "by-score", None) for p in _sent(proxy, "Scan"))


def test_scan_page_of_an_index_pages_with_cursors_scoped_to_it(proxy: FaultProxy) -> None:
    _seed_notes(proxy)
    notes = NoteRepository(cache=None)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = notes.scan_page(index=Note.by_score, limit=4, cursor=cursor)
        seen += [n.slug for n in page]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted([f"n{i:02}" for i in range(12)] + ["b0", "b1", "b2"])
    assert pages >= 4
    first = notes.scan_page(index="by-score", limit=2)
    table_page = notes.scan_page(limit=2)
    assert first.cursor is not None
    assert table_page.cursor is not None
    proxy.reset_stats()
    with pytest.raises(InvalidRequest, match="cursor"):
        notes.scan_page(limit=2, cursor=first.cursor)  # an index cursor on the table
    with pytest.raises(InvalidRequest, match="cursor"):
        notes.scan_page(index=Note.by_tag, limit=2, cursor=first.cursor)  # another index
    with pytest.raises(InvalidRequest, match="cursor"):
        notes.scan_page(index=Note.by_score, limit=2, cursor=table_page.cursor)
    assert proxy.seen == ()
    rest = notes.scan_page(index=Note.by_score, limit=20, cursor=first.cursor)
    assert len(rest.items) == 13


def test_scan_of_an_unknown_index_names_it_and_sends_nothing(proxy: FaultProxy) -> None:
    notes = NoteRepository()
    for call in (
        lambda: notes.scan(index="nope"),
        lambda: notes.scan(index="nope", segments=4),
        lambda: notes.scan_page(index="nope"),
        lambda: UserRepository().scan(index=UserProgress.completed_index),
    ):
        with pytest.raises(InvalidRequest, match=r"no index .*(nope|completed-index)"):
            call()
    with pytest.raises(InvalidRequest, match="no index 'nope'"):
        run(AsyncNotes().scan_page(index="nope"))
    with pytest.raises(InvalidRequest, match="no index 'nope'"):
        AsyncNotes().scan(index="nope")
    assert proxy.seen == ()


def test_scan_of_the_sparse_progress_index_hides_expired_rows(proxy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None)
    progress.record_attempt("u1", "l1", 95)  # completed: in completed-index
    progress.record_attempt("u1", "l2", 10)  # started: not in it
    _put_raw(
        UserProgress,
        [
            {
                "userId": {"S": "u1"},
                "lessonId": {"S": "l3"},
                "status": {"S": "completed"},
                "completedAt": {"S": "2020-01-01T00:00:00.000000+0000"},
                "ttl": {"N": str(PAST)},
            }
        ],
    )
    assert [r.lesson_id for r in progress.scan(index=UserProgress.completed_index)] == ["l1"]
    assert [r.lesson_id for r in progress.scan_page(index="completed-index").items] == ["l1"]
    assert sorted(r.lesson_id for r in progress.scan()) == ["l1", "l2"]


def test_async_scan_of_an_index(proxy: FaultProxy) -> None:
    _seed_notes(proxy)
    notes = AsyncNotes(cache=None)

    async def scenario() -> None:
        tagged = sorted([n.slug async for n in notes.scan(index=Note.by_tag)])
        assert tagged == ["n00", "n03", "n06", "n09"]
        assert sorted([n.slug async for n in notes.scan(index="by-tag", segments=2)]) == tagged
        page = await notes.scan_page(index=Note.by_score, limit=5)
        assert len(page.items) == 5
        rest = await notes.scan_page(index=Note.by_score, limit=50, cursor=page.cursor)
        assert len(rest.items) == 10
        with pytest.raises(InvalidRequest, match="cursor"):
            await notes.scan_page(limit=5, cursor=page.cursor)
        assert {p.get("IndexName") for p in _sent(proxy, "Scan")} == {"by-tag", "by-score"}

    run(scenario())


# ---------------------------------------------------------------------- progress keys


def _lone_str_calls(progress: Any) -> list[Callable[[], Any]]:
    return [
        lambda: progress.get("u1"),
        lambda: progress.get("u1", projection=None),
        lambda: progress.find("u1"),
        lambda: progress.find("u1", consistent=True),
        lambda: progress.exists("u1"),
        lambda: progress.delete("u1"),
        lambda: progress.update("u1", score=90.0),
        lambda: progress.update("u1", [UserProgress.attempts.add(1)]),
    ]


def test_progress_refuses_a_lone_user_id_at_run_time(proxy: FaultProxy) -> None:
    progress = UserProgressRepository()
    progress.save(UserProgress(user_id="u1", lesson_id="l1"))
    proxy.reset_stats()
    for call in _lone_str_calls(progress):
        with pytest.raises(InvalidRequest, match="user_id, lesson_id"):
            call()
    assert proxy.seen == ()
    # Both key forms, and an instance for delete, still work.
    assert progress.get("u1", "l1").lesson_id == "l1"
    assert progress.get("u1", lesson_id="l1", consistent=True).lesson_id == "l1"
    assert progress.get(("u1", "l1")).lesson_id == "l1"
    assert progress.exists("u1", "l1")
    assert progress.exists(("u1", "l1"))
    assert progress.update("u1", "l1", add_attempts=2).attempts == 2
    assert progress.update(("u1", "l1"), [UserProgress.attempts.add(1)]).attempts == 3
    progress.delete("u1", "l1")
    assert progress.find(("u1", "l1")) is None
    row = progress.update(("u1", "l2"), score=50.0)
    progress.delete(row)
    assert not progress.exists("u1", "l2", consistent=True)


def test_async_progress_refuses_a_lone_user_id_at_run_time(proxy: FaultProxy) -> None:
    progress = AsyncUserProgressRepository()

    async def scenario() -> None:
        await progress.save(UserProgress(user_id="u1", lesson_id="l1"))
        proxy.reset_stats()
        for call in _lone_str_calls(progress):
            with pytest.raises(InvalidRequest, match="user_id, lesson_id"):
                await call()
        assert proxy.seen == ()
        assert (await progress.get("u1", "l1")).lesson_id == "l1"
        assert (await progress.get(("u1", "l1"), consistent=True)).lesson_id == "l1"
        assert await progress.exists("u1", lesson_id="l1")
        assert (await progress.update("u1", "l1", add_attempts=1)).attempts == 1
        await progress.delete(("u1", "l1"))
        assert await progress.find("u1", "l1") is None

    run(scenario())

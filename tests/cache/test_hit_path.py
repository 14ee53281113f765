"""The cache-hit path of `get`, `find` and `exists` (`portchops_models.ops.hits`), sync and
async, on moto over HTTP: a hit keeps every semantic of the whole path.

What a caller gets from a hit is its own object (mutating it, lists and maps included,
changes nothing the next hit returns); entries live for the cache TTL; expired items stay
hidden; projections hit as their own variant; every write through any repository or
transaction of the process evicts; a bus that is down means nothing is served;
``consistent=True`` bypasses; hits and misses are counted once each; an encrypted model's
cache holds ciphertext only.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)

from portchops_models import (
    BaseModel,
    InvalidRequest,
    ItemNotFound,
    Projection,
    Repository,
    TableNotFound,
    Transaction,
    configure,
)
from portchops_models.aio import AsyncRepository
from portchops_models.cache import CachePolicy, ItemCache, bus
from portchops_models.cache.store import MISSING
from portchops_models.metrics import Metrics
from portchops_models.models.attributes import ExpiryAttribute
from portchops_models.settings import Settings, current_settings
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.redis import RedisServer
from portchops_models.transport.connection import current_connection
from tests.bus_agent import WAIT
from tests.member_model import Member, MemberRepository


class Sizes(MapAttribute[str, Any]):
    """A typed map attribute with a list inside."""

    color = UnicodeAttribute()
    sizes = ListAttribute(of=NumberAttribute)  # type: ignore[var-annotated]


class Note(BaseModel):
    """A model with every kind of mutable value: list, typed map, raw map, set; and a TTL."""

    base_table_name: ClassVar[str] = "hit-notes"

    note_id = UnicodeAttribute(hash_key=True, attr_name="noteId")
    body = UnicodeAttribute()
    tags = ListAttribute(of=UnicodeAttribute, null=True)  # type: ignore[var-annotated]
    shape = Sizes(null=True)
    extra = MapAttribute[str, Any](null=True)
    labels = UnicodeSetAttribute(null=True)
    expires_at = ExpiryAttribute(null=True, attr_name="expiresAt")


class NoteCard(Projection[Note]):
    """A projection with a list (copied on each hit)."""

    note_id: str
    tags: list[str] | None = None


class NoteTitle(Projection[Note]):
    """A projection of immutable values only (shared: it is frozen)."""

    note_id: str
    body: str


class Notes(Repository[Note, str]):
    model = Note


class AsyncNotes(AsyncRepository[Note, str]):
    model = Note


class Face:
    """One repository seen through the sync or the async API, called the same way."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.repo: Any = (Notes if kind == "sync" else AsyncNotes)(**options)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.repo, name)(*args, **kwargs)
        return asyncio.run(result) if self.kind == "async" else result

    def get(self, key: str, **kwargs: Any) -> Any:
        return self._call("get", key, **kwargs)

    def find(self, key: str, **kwargs: Any) -> Any:
        return self._call("find", key, **kwargs)

    def exists(self, key: str, **kwargs: Any) -> Any:
        return self._call("exists", key, **kwargs)

    @property
    def cache(self) -> ItemCache[Any, Any]:
        cache: ItemCache[Any, Any] | None = self.repo.cache
        assert cache is not None
        return cache

    def counts(self) -> tuple[int, int]:
        """(hits, misses) as the metrics have them."""
        snap = self.repo.metrics.snapshot()
        return snap["cache_hits"], snap["cache_misses"]


@pytest.fixture
def notes(tables: Settings) -> Iterator[Notes]:
    """The Note table on moto (beside the `tables` ones); a writer without a cache."""
    create_table(Note)
    try:
        yield Notes(cache=None)
    finally:
        delete_table(Note.table_name())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _note(note_id: str = "n1", **values: Any) -> Note:
    fields: dict[str, Any] = {
        "body": "hello",
        "tags": ["a", "b"],
        "shape": Sizes(color="red", sizes=[1, 2]),
        "extra": {"nested": {"deep": ["x"]}, "n": 1},
        "labels": {"l1"},
    }
    fields.update(values)
    return Note(note_id=note_id, **fields)


def _put_behind_the_cache(item: dict[str, Any]) -> None:
    """A write the process's caches do not hear of (another writer, e.g. another region)."""
    current_connection().call("PutItem", {"TableName": Note.table_name(), "Item": item})


def _state(note: Note) -> dict[str, Any]:
    return {
        "body": note.body,
        "tags": list(note.tags or []),
        "shape": None if note.shape is None else (note.shape.color, list(note.shape.sizes)),
        "extra": None if note.extra is None else note.extra.as_dict(),
        "labels": set(note.labels or ()),
    }


# ---------------------------------------------------------------------- safe objects


def test_mutating_what_a_hit_returned_changes_nothing_the_next_hit_returns(
    notes: Notes, kind: str
) -> None:
    notes.save(_note())
    face = Face(kind, metrics=Metrics())
    first = face.get("n1")  # the miss fills the cache
    expected = _state(first)
    for _ in range(3):
        got = face.get("n1")
        assert _state(got) == expected
        got.body = "changed"
        got.tags.append("c")
        got.shape.color = "blue"
        got.shape.sizes.append(3)
        got.extra["nested"]["deep"].append("y")
        got.extra["n"] = 2
        got.labels.add("l2")
        found = face.find("n1")
        assert found is not got
        assert _state(found) == expected
        found.tags.clear()
    first.tags.append("from the miss")  # nor does what the miss returned
    assert _state(face.get("n1")) == expected
    assert face.counts() == (7, 1)


def test_a_projection_hit_is_its_own_variant_and_safe(notes: Notes, kind: str) -> None:
    notes.save(_note())
    face = Face(kind, metrics=Metrics())
    card = face.get("n1", projection=NoteCard)
    assert isinstance(card, NoteCard)
    assert card.tags == ["a", "b"]
    card.tags.append("c")  # frozen, but a list field can still be changed in place
    again = face.get("n1", projection=NoteCard)
    assert again.tags == ["a", "b"]
    assert again is not card
    title = face.get("n1", projection=NoteTitle)
    assert face.get("n1", projection=NoteTitle) == title
    with pytest.raises(ValueError, match="frozen"):
        title.body = "x"  # frozen: sharing it is safe
    model = face.get("n1")  # the whole item is another variant: a miss of its own
    assert isinstance(model, Note)
    assert face.counts() == (2, 3)
    assert face.exists("n1") is True  # a hit of the whole item
    assert face.counts() == (3, 3)


# ---------------------------------------------------------------------- lifetimes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_lasts_the_cache_ttl_then_the_table_is_read_again(notes: Notes, kind: str) -> None:
    notes.save(_note(body="v1"))
    clock = Clock()
    face = Face(kind, cache=CachePolicy(ttl=30.0, timer=clock), metrics=Metrics())
    assert face.get("n1").body == "v1"
    _put_behind_the_cache({"noteId": {"S": "n1"}, "body": {"S": "v2"}})
    clock.now += 29.0
    assert face.get("n1").body == "v1"  # a hit: the cache did not hear of the write
    assert face.exists("n1") is True
    clock.now += 2.0
    assert face.get("n1").body == "v2"  # the entry expired: read again
    assert face.counts() == (2, 2)


def test_an_expired_item_in_the_cache_is_never_served(notes: Notes, kind: str) -> None:
    face = Face(kind, metrics=Metrics())
    past = int(time.time()) - 60
    stale = {"noteId": {"S": "n1"}, "body": {"S": "old"}, "expiresAt": {"N": str(past)}}
    face.cache.put_many({"n1": stale}, None)  # as if cached while it was alive
    face.cache.put_many({"n1": stale}, NoteTitle)
    with pytest.raises(ItemNotFound):
        face.get("n1")
    assert face.find("n1") is None
    assert face.find("n1", projection=NoteTitle) is None
    assert face.exists("n1") is False
    future = datetime.now(UTC) + timedelta(hours=1)
    notes.save(_note("n2", expires_at=future))
    face.get("n2")
    assert face.get("n2").expires_at == future.replace(microsecond=0)


# ---------------------------------------------------------------------- coherence


def test_every_write_of_the_process_evicts_a_hit(notes: Notes, kind: str) -> None:
    face = Face(kind, metrics=Metrics())
    writes: list[tuple[str, Callable[[], object]]] = [
        ("saved", lambda: notes.save(_note(body="saved"))),
        ("updated", lambda: notes.update("n1", [Note.body.set("updated")])),
        ("batch", lambda: notes.batch_save([_note(body="batch")])),
        ("tx", lambda: _transaction_sets("tx")),
    ]
    notes.save(_note(body="first"))
    assert face.get("n1").body == "first"
    for body, write in writes:
        assert face.get("n1").body != body  # a hit of the value before
        write()
        assert face.get("n1").body == body
        assert face.get("n1").body == body  # and a hit again
    notes.delete("n1")
    assert face.find("n1") is None
    assert face.exists("n1") is False
    notes.save(_note(body="again"))
    assert face.get("n1").body == "again"
    notes.batch_delete(["n1"])
    with pytest.raises(ItemNotFound):
        face.get("n1")


def _transaction_sets(body: str) -> None:
    with Transaction() as tx:
        tx.update(Note, "n1", [Note.body.set(body)])


def test_while_the_bus_is_down_no_hit_is_served(
    bus_tables: Settings, redis_server: RedisServer, kind: str
) -> None:
    live = bus.current()
    assert live is not None
    create_table(Note)
    try:
        writer = Notes(cache=None)
        writer.save(_note(body="v1"))
        face = Face(kind, metrics=Metrics())
        face.get("n1")
        assert face.get("n1").body == "v1"
        assert face.counts() == (1, 1)
        redis_server.stop()
        assert live.wait_serving(False, timeout=WAIT)
        _put_behind_the_cache({"noteId": {"S": "n1"}, "body": {"S": "v2"}})
        assert face.get("n1").body == "v2"
        assert face.exists("n1") is True
        assert face.counts()[0] == 1  # not one hit while the bus was down
        assert len(face.cache) == 0
        redis_server.start()
        assert live.wait_serving(timeout=WAIT)
        face.get("n1")
        assert face.get("n1").body == "v2"
        assert face.counts()[0] == 2  # serving again
    finally:
        delete_table(Note.table_name())


def test_a_closed_gate_serves_nothing_even_with_entries_held() -> None:
    """The gate is asked on every hit, before the cache has been dropped."""
    open_ = [True]
    cache: ItemCache[str, dict[str, Any]] = ItemCache(gate=lambda: open_[0])
    cache.put_many({"k": {"a": {"S": "1"}}}, None)
    assert cache.serve("k", None, None) == {"a": {"S": "1"}}
    open_[0] = False
    assert cache.serve("k", None, None) is MISSING
    assert cache.serve("k", None, None, dict) is MISSING
    assert cache.info().hits == 1
    open_[0] = True
    assert cache.serve("k", None, lambda item: 0.0) is MISSING  # its until has passed
    assert cache.info().hits == 1


def test_what_a_hit_prepared_leaves_with_its_entry() -> None:
    """The decoded form is made once per stored value and never outlives it."""
    made: list[str] = []

    def prepare(item: dict[str, Any]) -> str:
        made.append(item["v"])
        return f"decoded {item['v']}"

    cache: ItemCache[str, dict[str, Any]] = ItemCache(CachePolicy(maxsize=2))
    cache.put_many({"k": {"v": "1"}}, None)
    assert [cache.serve("k", None, None, prepare) for _ in range(3)] == ["decoded 1"] * 3
    assert made == ["1"]
    cache.put_many({"k": {"v": "2"}}, None)  # replaced: prepared again
    assert cache.serve("k", None, None, prepare) == "decoded 2"
    cache.invalidate(["k"])
    assert cache.serve("k", None, None, prepare) is MISSING
    cache.put_many({"k": {"v": "3"}, "j": {"v": "j"}, "i": {"v": "i"}}, None)  # "k" evicted
    assert cache.serve("k", None, None, prepare) is MISSING
    assert cache.serve("i", None, None, prepare, keep=False) == "decoded i"
    assert cache.serve("i", None, None, prepare, keep=False) == "decoded i"
    assert made == ["1", "2", "i", "i"]
    assert len(cache._store.prepared) == 0  # nothing kept for gone entries, nor with keep=False


def test_ready_serves_only_a_kept_form_of_a_live_entry() -> None:
    """`ready` hands out what `serve` kept, while the entry, its until and the gate allow."""
    clock, open_ = Clock(), [True]
    hits: list[str] = []
    cache: ItemCache[str, dict[str, Any]] = ItemCache(
        CachePolicy(maxsize=4, ttl=10.0, timer=clock),
        on_hit=lambda: hits.append("hit"),
        gate=lambda: open_[0],
    )
    cache.put_many({"k": {"v": "1"}, "t": {"v": "t"}}, None)
    assert cache.ready("k", None) is MISSING  # nothing prepared yet
    assert cache.serve("k", None, None, lambda item: item["v"]) == "1"
    assert cache.serve("t", None, lambda item: time.time() + 3600, lambda item: item["v"]) == "t"
    assert cache.ready("k", None) == "1"
    assert cache.ready("t", None) == "t"
    assert (cache.info().hits, hits) == (4, ["hit", "hit"])  # on_hit: ready's hits only
    open_[0] = False
    assert cache.ready("k", None) is MISSING  # the gate is asked...
    assert cache.ready("k", None, False) == "1"  # ...unless the caller knows it is open
    open_[0] = True
    clock.now += 9.99
    assert cache.ready("k", None) == "1"
    clock.now += 0.01  # the entry's TTL has passed
    assert cache.ready("k", None) is MISSING
    assert cache.serve("k", None, None, lambda item: item["v"]) is MISSING
    cache.put_many({"k": {"v": "2"}}, None)  # stored again: nothing kept of the old value
    assert cache.ready("k", None) is MISSING
    assert cache.info().hits == 6
    cache.put_many({"gone": {"v": "g"}}, None)  # an item whose own TTL has passed
    assert cache.serve("gone", None, lambda item: time.time() - 1, lambda item: "g") is MISSING
    assert cache.ready("gone", None) is MISSING  # nothing kept of it
    assert cache.info().hits == 6


def test_hits_on_the_ready_path_keep_entries_recently_used() -> None:
    """Eviction takes the least recently used entry: a `ready` hit renews its entry."""
    cache: ItemCache[str, dict[str, Any]] = ItemCache(CachePolicy(maxsize=2))
    cache.put_many({"a": {"v": "a"}, "b": {"v": "b"}}, None)
    for key in ("a", "b"):
        cache.serve(key, None, None, lambda item: item["v"])
    assert cache.ready("a", None) == "a"  # "a" is now the most recently used
    cache.put_many({"c": {"v": "c"}}, None)  # evicts "b"
    assert cache.ready("a", None) == "a"
    assert cache.serve("b", None, None) is MISSING
    assert sorted(cache._store.recency) == [("a", None), ("c", None)]
    cache.clear()
    assert not cache._store.recency
    assert not cache._store.prepared


# ---------------------------------------------------------------------- bypass, counts


def test_consistent_reads_bypass_and_counts_are_exact(notes: Notes, kind: str) -> None:
    notes.save(_note(body="v1"))
    face = Face(kind, metrics=Metrics())
    assert face.get("n1").body == "v1"
    _put_behind_the_cache({"noteId": {"S": "n1"}, "body": {"S": "v2"}})
    assert face.get("n1", consistent=True).body == "v2"
    assert face.find("n1", consistent=True).body == "v2"
    assert face.exists("n1", consistent=True) is True
    assert face.counts() == (0, 1)  # consistent reads are not cache lookups
    assert face.get("n1").body == "v1"  # nor did they refill the cache
    assert face.find("absent") is None
    assert face.find("absent") is None  # not found is not cached: two misses
    assert face.counts() == (1, 3)
    assert (face.cache.info().hits, face.cache.info().misses) == (1, 3)


def test_hits_count_in_the_metrics_in_force(notes: Notes, kind: str) -> None:
    """The cheapest hits (a kept model) count in the metrics the repository has now."""
    notes.save(_note())
    face = Face(kind, metrics=Metrics())
    for _ in range(3):  # a miss, the hit that keeps the model, a hit on the kept model
        face.get("n1")
    assert face.counts() == (2, 1)
    face.repo.metrics = Metrics()
    face.get("n1")
    face.find("n1")
    assert face.counts() == (2, 0)
    assert face.cache.info().hits == 4


def test_not_found_cached_takes_the_whole_path(notes: Notes, kind: str) -> None:
    face = Face(kind, cache=CachePolicy(negative_ttl=60.0), metrics=Metrics())
    assert face.find("absent") is None
    with pytest.raises(ItemNotFound):
        face.get("absent")
    assert face.exists("absent") is False
    assert face.counts() == (2, 1)


def test_a_bad_key_or_projection_raises_as_before(notes: Notes, kind: str) -> None:
    notes.save(_note())
    face = Face(kind, metrics=Metrics())
    face.get("n1")
    with pytest.raises(InvalidRequest):
        face.get("")
    with pytest.raises(InvalidRequest):
        face.get(1)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        face.get("n1", projection=int)
    assert face.counts() == (0, 1)


def test_new_settings_are_never_answered_from_the_old_tables(notes: Notes, kind: str) -> None:
    notes.save(_note())
    face = Face(kind, metrics=Metrics())
    face.get("n1")
    face.get("n1")
    before = current_settings()
    configure(before, table_prefix=f"{before.table_prefix}other-")
    try:
        with pytest.raises(TableNotFound):
            face.get("n1")  # no hit from the old table's cache
    finally:
        configure(before)


# ---------------------------------------------------------------------- encrypted models


@pytest.fixture
def members(tables: Settings) -> Iterator[None]:
    key = base64.b64encode(os.urandom(32)).decode()
    configure(
        current_settings(),
        encryption_keys=f"k1={key}",
        encryption_lookup_key="lookup-key-for-hit-tests",
    )
    create_table(Member)
    try:
        yield
    finally:
        delete_table(Member.table_name())


def test_an_encrypted_models_cache_holds_ciphertext_only(members: None) -> None:
    MemberRepository(cache=None).save(Member(member_id="m1", email="ada@x.io", name="Ada"))
    repo = MemberRepository(metrics=Metrics())
    for _ in range(3):
        got = repo.get("m1")
        assert (got.email, got.name) == ("ada@x.io", "Ada")
        got.name = "changed"
    assert repo.metrics.snapshot()["cache_hits"] == 2
    assert repo.cache is not None
    found, _ = repo.cache.get_many(["m1"], None)
    held = found["m1"]
    assert held is not None
    assert "Ada" not in repr(held)  # the item as stored: ciphertext
    assert len(repo.cache._store.prepared) == 0  # no decoded plaintext kept beside it

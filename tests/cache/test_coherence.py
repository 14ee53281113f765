"""In-process coherence: every cache of a table hears every write made in the process."""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable

import pytest

from portchops_models import User, UserProgress, UserProgressRepository, UserRepository, configure
from portchops_models.cache import CachePolicy, ItemCache, coherence
from portchops_models.settings import Settings
from portchops_models.tables import create_table


def _user(user_id: str = "u1", name: str = "Ada") -> User:
    return User(user_id=user_id, email=f"{user_id}@example.com", name=name)


def _warm(repo: UserRepository, *user_ids: str) -> None:
    """Read the users through ``repo`` twice, so they are cached (second read is a hit)."""
    for user_id in user_ids:
        repo.find(user_id)
    hits = repo.cache.info().hits if repo.cache is not None else 0
    for user_id in user_ids:
        repo.find(user_id)
    assert repo.cache is not None
    assert repo.cache.info().hits == hits + len(user_ids)


def test_two_repositories_agree_after_save(tables: Settings) -> None:
    a, b = UserRepository(), UserRepository()
    a.save(_user(name="Ada"))
    _warm(b, "u1")
    fresh = a.get("u1")
    fresh.name = "Grace"
    a.save(fresh)
    assert b.get("u1").name == "Grace"


def test_two_repositories_agree_after_update(tables: Settings) -> None:
    a, b = UserRepository(), UserRepository()
    a.save(_user(name="Ada"))
    _warm(b, "u1")
    a.update("u1", name="Grace")
    assert b.get("u1").name == "Grace"


def test_two_repositories_agree_after_delete(tables: Settings) -> None:
    a, b = UserRepository(), UserRepository()
    a.save(_user())
    _warm(b, "u1")
    a.delete("u1")
    assert b.find("u1") is None


def test_two_repositories_agree_after_batch_save_and_batch_delete(tables: Settings) -> None:
    a, b = UserRepository(), UserRepository()
    ids = [f"u{i}" for i in range(30)]
    a.batch_save([_user(i, name="old") for i in ids])
    _warm(b, *ids)
    assert b.batch_get(ids)[0].name == "old"  # served from b's cache
    a.batch_save([_user(i, name="new") for i in ids])
    assert {u.name for u in b.batch_get(ids)} == {"new"}
    assert {b.get(i).name for i in ids} == {"new"}
    a.batch_delete(ids)
    assert b.batch_get(ids) == []
    assert all(b.find(i) is None for i in ids)


def test_a_repository_without_a_cache_still_evicts_the_others(tables: Settings) -> None:
    writer, reader = UserRepository(cache=None), UserRepository()
    writer.save(_user(name="Ada"))
    _warm(reader, "u1")
    writer.update("u1", name="Grace")
    assert reader.get("u1").name == "Grace"


def test_range_keys_and_progress_writes_evict(tables: Settings) -> None:
    a, b = UserProgressRepository(), UserProgressRepository()
    a.record_attempt("u1", "lesson-1", 40)
    assert b.get("u1", "lesson-1").attempts == 1
    assert b.get("u1", "lesson-1").attempts == 1  # cached
    a.record_attempt("u1", "lesson-1", 95)
    row = b.get("u1", "lesson-1")
    assert (row.attempts, row.status) == (2, "completed")


def test_writes_through_the_model_methods_evict(tables: Settings) -> None:
    repo = UserRepository()
    user = _user(name="Ada")
    user.save()
    _warm(repo, "u1")
    user.name = "Grace"
    user.save()
    assert repo.get("u1").name == "Grace"
    user.update(actions=[User.name.set("Hopper")])
    assert repo.get("u1").name == "Hopper"
    user.delete()
    assert repo.find("u1") is None


def test_model_batch_write_evicts(tables: Settings) -> None:
    repo = UserRepository()
    repo.batch_save([_user("u1", "old"), _user("u2", "old")])
    _warm(repo, "u1", "u2")
    with User.batch_write() as batch:
        batch.save(_user("u1", "new"))
        batch.delete(_user("u2"))
    assert repo.get("u1").name == "new"
    assert repo.find("u2") is None


def test_a_failed_write_evicts_too(tables: Settings) -> None:
    """Outcome unknown (here: a condition failed) still evicts: the cache re-reads."""
    a, b = UserRepository(), UserRepository()
    a.save(_user())
    _warm(b, "u1")
    misses = b.cache.info().misses if b.cache is not None else 0
    with pytest.raises(Exception, match="condition"):
        a.save(_user(), condition=User.user_id.does_not_exist())
    b.get("u1")
    assert b.cache is not None
    assert b.cache.info().misses == misses + 1


def test_the_registry_follows_the_table_prefix(tables: Settings) -> None:
    """Keyed by the real table name: after configure() a repository moves to the new table."""
    a, b = UserRepository(), UserRepository()
    a.save(_user(name="Ada"))
    _warm(b, "u1")
    assert b.cache in coherence.caches(tables.table_name("users"))
    other = configure(tables, table_prefix=tables.table_prefix + "x-")
    create_table(User)
    create_table(UserProgress)
    a.save(_user(name="Other"))
    assert b.get("u1").name == "Other"
    assert b.cache in coherence.caches(other.table_name("users"))
    assert b.cache not in coherence.caches(tables.table_name("users"))
    a.update("u1", name="Grace")
    assert b.get("u1").name == "Grace"


class Recorder:
    """Anything with ``invalidate(keys)`` can register, e.g. an async repository's cache."""

    def __init__(self) -> None:
        self.seen: list[list[Hashable]] = []

    def invalidate(self, item_keys: Iterable[Hashable]) -> None:
        self.seen.append(list(item_keys))


def test_any_object_with_invalidate_can_register() -> None:
    recorder = Recorder()
    coherence.register(recorder, "t-any")
    coherence.invalidate("t-any", iter([("u1", "l1"), ("u2", "l2")]))
    coherence.invalidate("t-other", ["x"])
    coherence.invalidate("t-any", [])  # nothing touched: nothing sent
    assert recorder.seen == [[("u1", "l1"), ("u2", "l2")]]
    coherence.drop_all()  # not Clearable: left alone
    coherence.unregister(recorder)
    coherence.invalidate("t-any", ["u3"])
    assert recorder.seen == [[("u1", "l1"), ("u2", "l2")]]


def test_registration_is_weak_and_moves() -> None:
    cache: ItemCache[str, str] = ItemCache(CachePolicy())
    coherence.register(cache, "t-a")
    coherence.register(cache, "t-a")
    assert coherence.caches("t-a") == [cache]
    coherence.register(cache, "t-b")
    assert coherence.caches("t-a") == []
    assert coherence.caches("t-b") == [cache]
    cache.get_or_load("k", None, lambda: "v")
    coherence.drop_all()
    assert len(cache) == 0
    del cache
    gc.collect()
    assert coherence.caches("t-b") == []


def test_a_closed_gate_serves_and_stores_nothing() -> None:
    """The hook the bus uses: while the gate is shut, every read goes to the loader."""
    state = {"open": True}
    cache: ItemCache[str, str] = ItemCache(CachePolicy(), gate=lambda: state["open"])
    assert cache.get_or_load("k", None, lambda: "v1") == "v1"
    state["open"] = False
    assert cache.get_or_load("k", None, lambda: "v2") == "v2"
    assert cache.get_many(["k"], None) == ({}, ["k"])
    with cache.begin(["k2"]) as token:
        cache.put_many({"k2": "x"}, None, token=token)
    cache.put_many({"k3": "y"}, None)
    state["open"] = True
    cache.drop()  # what the bus does before it opens the gate again
    assert cache.get_many(["k", "k2", "k3"], None) == ({}, ["k", "k2", "k3"])
    assert cache.get_or_load("k", None, lambda: "v3") == "v3"
    assert cache.get_or_load("k", None, lambda: "v4") == "v3"

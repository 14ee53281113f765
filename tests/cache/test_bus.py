"""The invalidation bus on a real Redis: across processes, while down, after a crash."""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from portchops_models import ConfigurationError, User, UserRepository, configure
from portchops_models.cache import bus, coherence
from portchops_models.cache.bus import Invalidation, decode_key, encode_key
from portchops_models.repository import default_metrics
from portchops_models.settings import Settings
from portchops_models.testing.redis import RedisServer
from tests.bus_agent import WAIT, Agent, Watcher

ROOT = Path(__file__).resolve().parents[2]


def _user(user_id: str, name: str) -> User:
    return User(user_id=user_id, email=f"{user_id}@example.com", name=name)


# ---------------------------------------------------------------------- across processes


def test_process_b_sees_process_a_write_within_one_second(
    bus_tables: Settings, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = UserRepository()
    repo.save(_user("u1", "Ada"))
    assert agent.ask("read", "u1") == {"name": "Ada", "hit": False}
    assert agent.ask("read", "u1") == {"name": "Ada", "hit": True}  # B now serves it cached
    agent.ask("watch", "u1")
    started = time.time()
    repo.update("u1", name="Grace")
    returned = time.time()
    evicted = agent.ask("evicted", WAIT)["at"]
    assert evicted is not None
    assert agent.ask("read", "u1") == {"name": "Grace", "hit": False}
    elapsed = evicted - started
    with capsys.disabled():
        print(
            f"\nbus: process B evicted u1 {elapsed * 1000:.1f} ms after process A's update "
            f"began ({(evicted - returned) * 1000:.1f} ms after it returned)"
        )
    assert elapsed < 1.0
    counters = agent.ask("metrics")
    assert counters["invalidations_received"] >= 1
    assert default_metrics().snapshot()["invalidations_sent"] >= 1


def test_batch_writes_and_deletes_reach_the_other_process(
    bus_tables: Settings, agent: Agent
) -> None:
    repo = UserRepository()
    ids = [f"u{i}" for i in range(30)]
    repo.batch_save([_user(i, "old") for i in ids])
    agent.ask("read-all", *ids)
    assert agent.ask("read-all", *ids) == {"names": ["old"] * 30, "hits": 30}
    agent.ask("watch", ids[-1])
    repo.batch_save([_user(i, "new") for i in ids])
    assert agent.ask("evicted", WAIT)["at"] is not None
    assert agent.ask("read-all", *ids)["names"] == ["new"] * 30
    agent.ask("watch", "u0")
    repo.delete("u0")
    assert agent.ask("evicted", WAIT)["at"] is not None
    assert agent.ask("read", "u0") == {"name": None, "hit": False}


def test_killing_redis_mid_run_loses_no_write_and_serves_nothing_stale(
    bus_tables: Settings, redis_server: RedisServer, agent: Agent
) -> None:
    repo = UserRepository()
    live = bus.current()
    assert live is not None
    ids = [f"u{i:03d}" for i in range(60)]
    repo.batch_save([_user(i, "v0") for i in ids])
    agent.ask("read-all", *ids)
    assert agent.ask("read-all", *ids)["hits"] == len(ids)  # B caches every user
    for n, user_id in enumerate(ids):
        if n == len(ids) // 2:
            redis_server.kill()  # mid-run, between two writes
        repo.update(user_id, name="v1")
    # No write lost: every one is in the table.
    assert {u.name for u in UserRepository(cache=None).batch_get(ids)} == {"v1"}
    assert agent.ask("state", "down", WAIT) == {"ok": True}
    # Bus down: B reads the truth, uncached.
    assert agent.ask("read-all", *ids) == {"names": ["v1"] * len(ids), "hits": 0}
    assert agent.ask("read-all", *ids)["hits"] == 0
    redis_server.start()
    assert agent.ask("state", "serving", WAIT) == {"ok": True}
    assert live.wait_serving(timeout=WAIT)
    assert live.flush(timeout=WAIT)  # A's invalidations queued during the outage went out
    # Nothing stale afterwards, and caching is back.
    assert agent.ask("read-all", *ids) == {"names": ["v1"] * len(ids), "hits": 0}
    assert agent.ask("read-all", *ids)["hits"] == len(ids)
    agent.ask("watch", ids[-1])
    for user_id in ids:
        repo.update(user_id, name="v2")
    assert agent.ask("evicted", WAIT)["at"] is not None
    assert agent.ask("read-all", *ids)["names"] == ["v2"] * len(ids)
    assert agent.ask("metrics")["bus_reconnects"] >= 1


# ---------------------------------------------------------------------- one process, bus down


def test_with_the_bus_down_reads_are_correct_and_uncached_then_caching_resumes(
    bus_tables: Settings, redis_server: RedisServer
) -> None:
    live = bus.current()
    assert live is not None
    repo, writer = UserRepository(), UserRepository(cache=None)
    repo.save(_user("u1", "Ada"))
    repo.get("u1")
    assert repo.cache is not None
    hits = repo.cache.info().hits
    repo.get("u1")
    assert repo.cache.info().hits == hits + 1
    reconnects = default_metrics().snapshot()["bus_reconnects"]

    redis_server.stop()
    assert live.wait_serving(False, timeout=WAIT)
    assert len(repo.cache) == 0  # dropped with the connection
    hits = repo.cache.info().hits
    for name in ("Grace", "Hopper"):
        writer.update("u1", name=name)  # the write succeeds with the bus down
        assert repo.get("u1").name == name
        assert repo.get("u1").name == name
        assert repo.batch_get(["u1"])[0].name == name
    assert repo.cache.info().hits == hits  # nothing served from the cache
    assert len(repo.cache) == 0  # nor stored

    redis_server.start()
    assert live.wait_serving(timeout=WAIT)
    assert live.flush(timeout=WAIT)
    assert repo.get("u1").name == "Hopper"
    assert repo.get("u1").name == "Hopper"
    assert repo.cache.info().hits == hits + 1  # caching resumed
    assert default_metrics().snapshot()["bus_reconnects"] == reconnects + 1


# ---------------------------------------------------------------------- messages


def _publish(server: RedisServer, *messages: bytes) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        for message in messages:
            client.publish(bus.CHANNEL, message)
    finally:
        client.close()


def test_own_and_malformed_messages_are_ignored_and_a_skewed_clock_still_evicts(
    bus_tables: Settings, redis_server: RedisServer
) -> None:
    live = bus.current()
    assert live is not None
    table = bus_tables.table_name("users")
    repo = UserRepository()
    repo.batch_save([_user("u1", "Ada"), _user("u2", "Bob"), _user("u3", "Cy")])
    for user_id in ("u1", "u2", "u3"):
        repo.get(user_id)
    assert repo.cache is not None
    assert len(repo.cache) == 3
    watcher = Watcher()
    coherence.register(watcher, table)
    watcher.arm("u2")
    now = time.time()
    own = Invalidation(origin=live.origin, seq=1, at=now, table=table, keys=("u3",))
    behind = Invalidation(origin="other", seq=1, at=now - 3600, table=table, keys=("u1",))
    fresh = Invalidation(origin="other", seq=2, at=now, table=table, keys=("u2",))
    _publish(redis_server, own.encode(), behind.encode(), b"{junk", b'{"v": 99}', fresh.encode())
    # The fresh message comes last on the channel: once it evicted u2, the rest were read.
    assert watcher.event.wait(WAIT)
    found, missing = repo.cache.get_many(["u1", "u2", "u3"], None)
    # own: ignored (evicted at the write); an hour behind by its sender's clock: acted on
    assert (sorted(found), missing) == (["u3"], ["u1", "u2"])
    assert default_metrics().snapshot()["bus_rejected"] >= 2  # the junk and the wrong version
    clear = Invalidation(origin="other", seq=3, at=time.time(), table=None, clear=True)
    _publish(redis_server, clear.encode())
    assert watcher.cleared.wait(WAIT)
    assert len(repo.cache) == 0


def test_pending_invalidations_collapse_into_one_clear() -> None:
    unreachable = bus.InvalidationBus("redis://127.0.0.1:9/0", max_pending=5)  # never started
    unreachable.publish("t", ["a", "b", "c"])
    assert unreachable.pending == 1
    unreachable.publish("t", ["d", "e", "f"])
    assert unreachable.pending == 1  # the six keys became one "clear everything"
    unreachable.publish("t", [object()])  # a key that cannot travel: a clear too
    assert unreachable.pending == 2


_parts = (
    st.text(min_size=1)
    | st.integers(min_value=-(10**38), max_value=10**38)
    | st.decimals(allow_nan=False, allow_infinity=False, places=5)
    | st.binary(min_size=1)
)


@given(key=_parts | st.tuples(_parts, _parts))
def test_keys_survive_the_wire_by_value(key: Any) -> None:
    decoded = decode_key(json.loads(json.dumps(encode_key(key))))
    assert decoded == key
    assert hash(decoded) == hash(key)


@given(data=st.binary() | st.text().map(str.encode))
def test_junk_messages_raise_value_error_only(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        Invalidation.decode(data)


def test_numbers_come_back_as_the_canonical_key() -> None:
    assert decode_key(encode_key(("py", Decimal("2.50")))) == ("py", Decimal("2.5"))
    assert decode_key(encode_key(10**23)) == 10**23
    with pytest.raises(TypeError):
        encode_key(True)
    with pytest.raises(TypeError):
        encode_key(Decimal("NaN"))


# ---------------------------------------------------------------------- settings


def test_bus_url_is_checked_at_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"PORTCHOPS_CACHE_BUS_URL=\*+: .*Redis URL"):
        configure(cache_bus_url="http://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="bad port"):
        configure(cache_bus_url="redis://127.0.0.1:99999/0")
    monkeypatch.setenv("PORTCHOPS_CACHE_BUS_URL", "redis://:hunter2pw@127.0.0.1:6379/2")
    settings = configure()
    assert settings.cache_bus_url == "redis://:hunter2pw@127.0.0.1:6379/2"
    assert "hunter2pw" not in repr(settings)
    assert configure(cache_bus_url="").cache_bus_url is None


def test_a_missing_redis_client_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the [redis] extra were absent
    with pytest.raises(ConfigurationError, match=r"portchops-models\[redis\]"):
        configure(cache_bus_url="redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match=r"portchops-models\[redis\]"):
        bus.InvalidationBus("redis://127.0.0.1:6379/0")

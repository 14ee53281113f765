"""The bus against a hostile or broken Redis peer (a real redis-server): credentials from
the URL, signed messages only, bounded decoding, no trust in the writers' clocks, and a
backlog that turns into one drop of every cache instead of stale reads."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Hashable, Iterable, Iterator

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from portchops_models.cache import bus, coherence
from portchops_models.cache.messages import (
    MAX_MESSAGE_BYTES,
    Invalidation,
    chunked,
    decode_key,
    sign,
    verify,
)
from portchops_models.errors import ConfigurationError
from portchops_models.observe.metrics import Metrics
from portchops_models.testing.redis import RedisServer
from tests.bus_agent import WAIT, Watcher

SECRET = b"a-bus-secret-of-some-length"
TABLE = "t-users"


@pytest.fixture
def locked_redis() -> Iterator[RedisServer]:
    server = RedisServer(password="s3cret-pass").start()
    try:
        yield server
    finally:
        server.stop()


def publish(server: RedisServer, *messages: bytes) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        for message in messages:
            client.publish(bus.CHANNEL, message)
    finally:
        client.close()


def message(seq: int, *keys: Hashable, at: float | None = None) -> Invalidation:
    at = time.time() if at is None else at
    return Invalidation(origin="peer", seq=seq, at=at, table=TABLE, keys=keys)


def signed(m: Invalidation) -> bytes:
    return sign(m.encode(), SECRET)


@pytest.fixture
def watched() -> Watcher:
    watcher = Watcher()
    coherence.register(watcher, TABLE)
    return watcher


def test_a_password_in_the_url_works_and_a_wrong_one_is_a_clear_error(
    locked_redis: RedisServer, watched: Watcher
) -> None:
    with pytest.raises(ConfigurationError, match="refused the credentials"):
        bus.InvalidationBus(locked_redis.url_with("wrong")).start()
    with pytest.raises(ConfigurationError, match="asks for a password"):
        bus.InvalidationBus(locked_redis.url_with(None)).start()
    live = bus.InvalidationBus(locked_redis.url).start()
    try:
        assert live.wait_serving(timeout=WAIT)
        watched.arm("u1")
        publish(locked_redis, message(1, "u1").encode())
        assert watched.event.wait(WAIT)
    finally:
        live.close()


def test_with_a_secret_only_signed_messages_act(
    redis_server: RedisServer, watched: Watcher
) -> None:
    metrics = Metrics()
    live = bus.InvalidationBus(redis_server.url, secret=SECRET, metrics=metrics).start()
    try:
        assert live.wait_serving(timeout=WAIT)
        forged = [
            message(1, "forged").encode(),  # unsigned
            sign(message(2, "forged").encode(), b"another-secret-entirely"),
            signed(message(3, "x")).replace(b'"x"', b'"y"'),  # tampered after signing
        ]
        watched.arm("last")
        publish(redis_server, *forged, signed(message(4, "last")))
        assert watched.event.wait(WAIT)  # the signed message came through
        assert metrics.snapshot()["bus_rejected"] == 3
        assert metrics.snapshot()["invalidations_received"] == 1
    finally:
        live.close()


def test_bombs_and_giants_are_dropped_and_the_bus_goes_on(
    redis_server: RedisServer, watched: Watcher
) -> None:
    metrics = Metrics()
    live = bus.InvalidationBus(redis_server.url, metrics=metrics).start()
    try:
        assert live.wait_serving(timeout=WAIT)
        bomb = b'{"v":1,"o":"x","s":1,"at":1,"t":"t-users","k":[["N","1e1000000"]]}'
        assert len(bomb) < 100
        giant = b'{"v":1,"o":"x","s":2,"at":1,"t":"t-users","k":[' + b'["S","u"],' * 2_100_000
        deep = b"[" * 200_000
        watched.arm("after")
        publish(redis_server, bomb, giant, deep, message(3, "after").encode())
        assert watched.event.wait(WAIT)
        assert metrics.snapshot()["bus_rejected"] == 3
        assert live.may_serve()
    finally:
        live.close()


def test_a_writer_with_a_clock_far_behind_still_evicts(
    redis_server: RedisServer, watched: Watcher
) -> None:
    live = bus.InvalidationBus(redis_server.url).start()
    try:
        assert live.wait_serving(timeout=WAIT)
        watched.arm("u1")
        publish(redis_server, message(1, "u1", at=time.time() - 5).encode())
        assert watched.event.wait(WAIT)
    finally:
        live.close()


class Blocking(Watcher):
    """Holds the subscriber in its first eviction until released (a stalled process)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.drops = 0

    def invalidate(self, item_keys: Iterable[Hashable]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(WAIT)
        super().invalidate(item_keys)

    def drop(self) -> None:
        self.drops += 1
        super().drop()


def test_a_backlog_becomes_one_drop_and_no_stale_serving(redis_server: RedisServer) -> None:
    blocking = Blocking()
    coherence.register(blocking, TABLE)
    metrics = Metrics()
    live = bus.InvalidationBus(redis_server.url, metrics=metrics).start()
    try:
        assert live.wait_serving(timeout=WAIT)
        drops_at_start = blocking.drops
        publish(redis_server, message(0, "first").encode())
        assert blocking.entered.wait(WAIT)  # the subscriber is stuck in that eviction
        publish(
            redis_server, *(message(n, f"k{n}").encode() for n in range(1, bus.FLOOD_BACKLOG + 500))
        )
        blocking.arm("tail")
        publish(redis_server, message(99_999, "tail").encode())
        blocking.release.set()
        assert live.wait_serving(timeout=WAIT)
        deadline = time.monotonic() + WAIT
        # Polling counters the subscriber thread sets, not a stand-in: the flood is counted
        # on falling behind, the second drop comes once the backlog has been read.
        while blocking.drops < drops_at_start + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert metrics.snapshot()["bus_floods"] == 1
        assert blocking.drops >= drops_at_start + 2  # on falling behind, and once caught up
        assert not blocking.event.is_set()  # the backlog was skipped, not decoded one by one
        assert live.may_serve()
    finally:
        blocking.release.set()
        live.close()


# ---------------------------------------------------------------------- pure: messages


@given(
    keys=st.lists(
        st.one_of(st.text(max_size=300), st.integers(-(10**37), 10**37), st.binary(max_size=200)),
        max_size=400,
    )
)
def test_chunks_carry_every_key_within_the_size_limit(keys: list[Hashable]) -> None:
    whole = message(1, *keys)
    parts = chunked(whole, SECRET)
    carried: list[Hashable] = []
    for data, count in parts:
        body = verify(data, SECRET)
        assert len(body) <= MAX_MESSAGE_BYTES
        decoded = Invalidation.decode(body)
        assert len(decoded.keys) == count
        carried.extend(decoded.keys)
    assert carried == [decode_key(k) for k in (encode_key(k) for k in keys)]


def test_a_write_of_many_large_keys_is_split_not_refused() -> None:
    keys = [("p" * 2000, "s" * 1000) for _ in range(300)]  # about 900 KB of keys
    parts = chunked(message(1, *keys), None)
    assert len(parts) > 1
    assert sum(count for _data, count in parts) == 300
    assert all(len(data) <= MAX_MESSAGE_BYTES for data, _count in parts)


@pytest.mark.parametrize(
    "text", ["1e1000000", "-1e126", "1e-131", "1" * 39, "9" * 65, "NaN", "Infinity", "1e"]
)
def test_numbers_dynamodb_could_not_store_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        decode_key(["N", text])


@given(junk=st.binary(max_size=500))
def test_junk_is_a_value_error_with_or_without_a_secret(junk: bytes) -> None:
    for secret in (None, SECRET):
        with contextlib.suppress(ValueError):
            Invalidation.decode(verify(junk, secret))


def encode_key(key: Hashable) -> list[object]:
    from portchops_models.cache.messages import encode_key as encode

    return encode(key)

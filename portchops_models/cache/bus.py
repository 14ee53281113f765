"""The invalidation bus on Redis: a write in one process evicts its keys in every process.

Set ``cache_bus_url`` (``PORTCHOPS_CACHE_BUS_URL=redis://host:port/db``; the client comes with
``pip install 'portchops-models[redis]'``) and every process of the app, on every machine,
runs one `InvalidationBus`, started on first use and following `configure()`:

- **Publish.** Every write hands the keys it touched to `portchops_models.cache.coherence`, which
  evicts them locally and passes them here, after the write returned and also when it
  raised (its outcome is unknown). A background thread publishes them on one Redis
  channel; a write never waits for Redis. While Redis is unreachable the messages wait
  (up to ``max_pending`` keys; past that they collapse into one "clear everything") and go
  out when it is back.
- **Subscribe.** A background thread subscribes to the channel and evicts the keys it
  receives from every cache of the table in this process.
- **Coherent or nothing.** Caches serve only while the subscription is up
  (`coherence.may_serve`). When the connection is lost (Redis gone, or no answer to a
  heartbeat within ``3 * heartbeat`` seconds) every cache is dropped and reads go to
  DynamoDB uncached; after resubscribing, the caches are dropped once more (invalidations
  sent meanwhile were missed) and caching resumes.
- **Messages** carry the sender's ``origin`` (a process ignores its own: it already evicted
  them), a sequence number, the table, the canonical keys (tagged as DynamoDB types, so
  ``2`` and ``Decimal("2.0")`` stay one key) and ``at``, the sender's wall clock when the
  write finished. A message older than the receiver's last full drop (by more than
  ``clock_skew`` seconds) is ignored: that drop already covered it.

Writes that bypass this layer (the console, other services) are not seen: see
docs/caching.md for the choices (a short TTL, or a DynamoDB Streams consumer publishing here).
"""

from __future__ import annotations

import atexit
import base64
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..observe.metrics import Metrics
from ..settings import current_settings
from . import coherence

if TYPE_CHECKING:
    import redis

__all__ = [
    "CHANNEL",
    "Invalidation",
    "InvalidationBus",
    "current",
    "decode_key",
    "encode_key",
    "shutdown",
    "use_metrics",
]

log = logging.getLogger("portchops_models")

#: The Redis channel every process publishes on and subscribes to.
CHANNEL: Final = "portchops-models:invalidations"
_VERSION: Final = 1

# ---------------------------------------------------------------------- messages


def encode_key(key: Hashable) -> list[Any]:
    """A canonical item key as JSON: ``["S", "u1"]``, or a list of such parts for a tuple.

    Parts are tagged like DynamoDB types: ``S`` (str), ``N`` (int, Decimal, float; as text),
    ``B`` (bytes; base64). Raises ``TypeError`` for anything else.
    """
    if isinstance(key, tuple):
        return [_encode_part(part) for part in key]
    return _encode_part(key)


def decode_key(raw: object) -> Hashable:
    """The key `encode_key` encoded (numbers come back as int or Decimal, equal by value).

    Raises ``ValueError`` if ``raw`` is not an encoded key.
    """
    if isinstance(raw, list) and raw and isinstance(raw[0], list):
        return tuple(_decode_part(part) for part in raw)
    return _decode_part(raw)


def _encode_part(part: object) -> list[str]:
    if isinstance(part, str):
        return ["S", part]
    if isinstance(part, bytes):
        return ["B", base64.b64encode(part).decode("ascii")]
    if isinstance(part, int | Decimal | float) and not isinstance(part, bool):
        if isinstance(part, Decimal | float) and not Decimal(part).is_finite():
            raise TypeError(f"a key number must be finite, got {part!r}")
        return ["N", str(part)]
    raise TypeError(f"cannot send a key part of type {type(part).__name__}: {part!r}")


def _decode_part(raw: object) -> Hashable:
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) for x in raw)):
        raise ValueError(f"not an encoded key part: {raw!r}")
    kind, text = str(raw[0]), str(raw[1])
    if kind == "S":
        return text
    if kind == "B":
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as err:
            raise ValueError(f"bad binary key part: {text!r}") from err
    if kind == "N":
        try:
            number = Decimal(text)
        except InvalidOperation as err:
            raise ValueError(f"bad number key part: {text!r}") from err
        if not number.is_finite():
            raise ValueError(f"bad number key part: {text!r}")
        return int(number) if number == number.to_integral_value() else number
    raise ValueError(f"unknown key part type {kind!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalidation:
    """One message on the bus.

    Attributes:
        origin: the sending process's id (`InvalidationBus.origin`).
        seq: the sender's sequence number (1, 2, ...), for tracing and de-duplication.
        at: the sender's wall clock (epoch seconds) when the write finished or failed.
        table: the full table name; ``None`` with ``clear``.
        keys: the canonical item keys the write touched.
        clear: drop every cache of every table (sent when the sender lost track of keys).
    """

    origin: str
    seq: int
    at: float
    table: str | None
    keys: tuple[Hashable, ...] = ()
    clear: bool = False

    def encode(self) -> bytes:
        """The message as compact JSON bytes."""
        body: dict[str, Any] = {"v": _VERSION, "o": self.origin, "s": self.seq, "at": self.at}
        if self.clear:
            body["clear"] = True
        else:
            body["t"] = self.table
            body["k"] = [encode_key(key) for key in self.keys]
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> Invalidation:
        """Parse a message; raises ``ValueError`` for anything that is not one."""
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError("not JSON") from err
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("not a version 1 invalidation")
        origin, seq, at = body.get("o"), body.get("s"), body.get("at")
        if not isinstance(origin, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("bad origin or sequence number")
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise ValueError("bad timestamp")
        if body.get("clear") is True:
            return cls(origin=origin, seq=seq, at=float(at), table=None, clear=True)
        table, keys = body.get("t"), body.get("k")
        if not isinstance(table, str) or not isinstance(keys, list):
            raise ValueError("bad table or keys")
        decoded = tuple(decode_key(key) for key in keys)
        return cls(origin=origin, seq=seq, at=float(at), table=table, keys=decoded)


# ---------------------------------------------------------------------- the bus


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as err:
        raise ConfigurationError(
            "PORTCHOPS_CACHE_BUS_URL is set but the Redis client is not installed: "
            "pip install 'portchops-models[redis]'"
        ) from err
    return redis


def _where(url: str) -> str:
    """The URL without credentials, for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class InvalidationBus:
    """One process's link to the bus: a publisher thread and a subscriber thread.

    Usually started for you from ``cache_bus_url`` (see `current`); build one directly to
    tune it. Threads start with `start` and stop with `close`.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        channel: the channel to publish on and subscribe to.
        metrics: where invalidations sent and received, reconnects and write-to-eviction
            times are counted.
        heartbeat: seconds between pings on the subscription; no answer within three
            heartbeats counts as a lost connection.
        clock_skew: seconds of wall-clock difference tolerated between machines when
            ignoring messages older than the last full drop.
        max_pending: keys kept for publishing while Redis is unreachable; past it they
            collapse into one "clear everything".
        timeout: seconds to connect to Redis and to wait for an answer.
        sleep_cap: the longest wait between reconnection attempts (they back off from 50 ms).
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        metrics: Metrics | None = None,
        heartbeat: float = 1.0,
        clock_skew: float = 1.0,
        max_pending: int = 10_000,
        timeout: float = 2.0,
        sleep_cap: float = 1.0,
    ) -> None:
        self._redis = _redis_module()
        self.url = url
        self.channel = channel
        self.metrics = metrics
        self.origin = uuid.uuid4().hex
        self.heartbeat = heartbeat
        self.clock_skew = clock_skew
        self.max_pending = max_pending
        self.timeout = timeout
        self.sleep_cap = sleep_cap
        self._state = threading.Condition()
        self._serving = False  # the gate, read without the lock on every cache lookup
        self._reported = False  # what `wait_serving` sees: set once the caches are dropped
        self._closed = threading.Event()
        self._cleared_at = 0.0  # wall clock of the last full drop (on each subscription)
        self._pending: deque[tuple[bytes, int]] = deque()  # (payload, number of keys)
        self._pending_keys = 0
        self._collapses = 0
        self._seq = itertools.count(1)
        self._threads = [
            threading.Thread(target=self._subscribe_loop, name="portchops-bus-sub", daemon=True),
            threading.Thread(target=self._publish_loop, name="portchops-bus-pub", daemon=True),
        ]

    # -- public --------------------------------------------------------------------

    def start(self) -> InvalidationBus:
        """Start both threads; returns the bus. Caches serve once the subscription is up."""
        for thread in self._threads:
            thread.start()
        return self

    def close(self, *, timeout: float = 2.0) -> None:
        """Stop both threads, publishing what is pending if Redis answers within ``timeout``."""
        with self._state:
            self._closed.set()
            self._state.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._set_serving(False)

    def may_serve(self) -> bool:
        """Whether caches may serve now: only while the subscription is up."""
        return self._serving

    def wait_serving(self, serving: bool = True, *, timeout: float) -> bool:
        """Wait until the subscription is up (or, with ``serving=False``, down).

        Returns whether that state was reached within ``timeout`` seconds.
        """
        with self._state:
            return self._state.wait_for(lambda: self._reported is serving, timeout)

    def flush(self, *, timeout: float) -> bool:
        """Wait until every queued message was published; returns whether that happened."""
        with self._state:
            return self._state.wait_for(lambda: not self._pending, timeout)

    @property
    def pending(self) -> int:
        """Messages waiting to be published."""
        with self._state:
            return len(self._pending)

    def publish(self, table: str, item_keys: Sequence[Hashable]) -> None:
        """Queue the keys a write touched for every other process; never blocks or raises."""
        now = time.time()
        keys = tuple(item_keys)
        try:
            payload = Invalidation(
                origin=self.origin, seq=next(self._seq), at=now, table=table, keys=keys
            ).encode()
        except (TypeError, ValueError):  # keys that cannot travel: everyone clears instead
            log.warning("cache bus: cannot send keys of %s; asking for a full clear", table)
            payload, keys = self._clear_payload(now), ()
        with self._state:
            self._pending.append((payload, len(keys)))
            self._pending_keys += len(keys)
            if self._pending_keys > self.max_pending:  # Redis away too long: collapse
                self._pending = deque([(self._clear_payload(now), 0)])
                self._pending_keys = 0
                self._collapses += 1
            self._state.notify_all()

    def _clear_payload(self, now: float) -> bytes:
        seq = next(self._seq)
        return Invalidation(origin=self.origin, seq=seq, at=now, table=None, clear=True).encode()

    # -- subscriber ------------------------------------------------------------------

    def _client(self) -> redis.Redis:
        redis = self._redis
        # No retries inside redis-py: a pubsub it reconnected silently could have missed
        # messages; every lost connection must come back here.
        return redis.Redis.from_url(  # type: ignore[no-any-return]
            self.url,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    def _subscribe_loop(self) -> None:
        delay, served = 0.05, False
        while not self._closed.is_set():
            client = None
            try:
                client = self._client()
                pubsub = client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # newer redis-py types it
                pubsub.subscribe(self.channel)
                self._listen(pubsub, resumed=served)
            except (self._redis.RedisError, OSError) as err:
                level = logging.WARNING if self._serving else logging.DEBUG
                log.log(level, "cache bus %s unreachable (%s): caches off", _where(self.url), err)
            except Exception:  # a bug must not leave caches on without a subscription
                log.exception("cache bus: subscriber failed; caches off until it resubscribes")
            finally:
                if self._serving:
                    served, delay = True, 0.05
                else:
                    delay = min(delay * 2, self.sleep_cap)
                self._serving = False  # the gate shuts first, then the caches empty,
                coherence.drop_all()  # then whoever waits for "down" hears of it
                self._set_serving(False)
                if client is not None:
                    _quietly(client.close)
            self._closed.wait(delay)

    def _listen(self, pubsub: Any, *, resumed: bool) -> None:
        """Serve messages until the connection fails or the bus closes."""
        last_seen = time.monotonic()
        last_ping = last_seen
        while not self._closed.is_set():
            message = pubsub.get_message(timeout=min(self.heartbeat, 0.25))
            now = time.monotonic()
            if message is not None:
                last_seen = now
                kind = message.get("type")
                if kind == "subscribe":
                    self._cleared_at = time.time()
                    coherence.drop_all()  # what we missed before subscribing is gone now
                    self._set_serving(True)
                    if resumed and self.metrics is not None:
                        self.metrics.record_bus_reconnect()
                elif kind == "message":
                    self._receive(message.get("data"))
            if now - last_seen > 3 * self.heartbeat:
                raise self._redis.ConnectionError("no answer to the heartbeat")
            if now - last_ping >= self.heartbeat:
                pubsub.ping()
                last_ping = now

    def _receive(self, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            message = Invalidation.decode(data)
        except ValueError as err:
            log.debug("cache bus: ignored a malformed message (%s)", err)
            return
        if message.origin == self.origin or message.at + self.clock_skew < self._cleared_at:
            return  # our own (evicted already), or older than our last full drop
        if message.clear or message.table is None:
            coherence.drop_all()
        else:
            coherence.invalidate_local(message.table, message.keys)
        if self.metrics is not None:
            self.metrics.record_invalidation_received(
                len(message.keys), seconds=time.time() - message.at
            )

    def _set_serving(self, serving: bool) -> None:
        with self._state:
            self._serving = self._reported = serving
            self._state.notify_all()

    # -- publisher -------------------------------------------------------------------

    def _publish_loop(self) -> None:
        client: redis.Redis | None = None
        delay = 0.05
        while True:
            with self._state:
                self._state.wait_for(lambda: bool(self._pending) or self._closed.is_set())
                if not self._pending:
                    break  # closed, nothing left
                batch, collapses = list(self._pending), self._collapses
            try:
                client = client or self._client()
                pipe = client.pipeline(transaction=False)
                for payload, _count in batch:
                    pipe.publish(self.channel, payload)
                pipe.execute()
            except (self._redis.RedisError, OSError) as err:
                if client is not None:
                    _quietly(client.close)
                client = None
                if self._closed.is_set():
                    log.warning("cache bus: %d invalidations not sent at close", len(batch))
                    break
                log.debug("cache bus: publish failed (%s); retrying in %.2fs", err, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, self.sleep_cap)
                continue
            delay = 0.05
            sent = sum(count for _payload, count in batch)
            with self._state:
                if self._collapses == collapses:  # else the queue is one "clear": keep it
                    for _ in batch:
                        self._pending.popleft()
                    self._pending_keys -= sent
                self._state.notify_all()
            if self.metrics is not None:
                self.metrics.record_invalidation_sent(sent)
        if client is not None:
            _quietly(client.close)


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # closing a broken connection may fail: nothing to do about it
        log.debug("cache bus: error while closing", exc_info=True)


# ---------------------------------------------------------------------- the process's bus

_lock = threading.Lock()
_active: InvalidationBus | None = None
_metrics: Metrics | None = None


def use_metrics(metrics: Metrics) -> None:
    """Count the process bus's invalidations and reconnects in ``metrics`` (from now on)."""
    global _metrics
    _metrics = metrics
    bus = _active
    if bus is not None:
        bus.metrics = metrics


def current() -> InvalidationBus | None:
    """The bus for the settings in force: started on first use, replaced on a new URL.

    ``None`` when ``cache_bus_url`` is not set (a bus left from earlier settings is closed).

    Raises:
        ConfigurationError: the URL is set but the ``redis`` package is missing.
    """
    url = current_settings().cache_bus_url
    bus = _active
    if bus is not None and bus.url == url:
        return bus
    return _follow(url)


def shutdown() -> None:
    """Close the process's bus (the next use starts it again if the settings still name one)."""
    _follow(None)


def _follow(url: str | None) -> InvalidationBus | None:
    global _active
    with _lock:
        if _active is not None and _active.url == url:
            return _active
        old, _active = _active, None
        if old is not None:
            old.close()
            coherence.drop_all()  # nothing cached under the old bus may outlive it
        if url is not None:
            _active = InvalidationBus(url, metrics=_metrics).start()
        return _active


def _after_fork() -> None:
    """A forked worker has no bus threads: it starts its own bus on first use."""
    global _active, _lock
    _active, _lock = None, threading.Lock()


def _at_exit() -> None:
    bus = _active
    if bus is not None:
        bus.close(timeout=1.0)


coherence.set_transport(current)
os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)

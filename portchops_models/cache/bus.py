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
- **Messages** (`portchops_models.cache.messages`) carry the sender's ``origin`` (a process
  ignores its own: it already evicted them), a sequence number, the table, the canonical
  keys (tagged as DynamoDB types, so ``2`` and ``Decimal("2.0")`` stay one key) and ``at``,
  the sender's wall clock, for the write-to-eviction metric only: every message received
  is acted on, so a writer whose clock is behind still evicts. With ``cache_bus_secret``
  set they are signed (HMAC-SHA256) and only signed ones are acted on; a forged, malformed
  or oversized message is dropped and counted (``bus_rejected``), and decoding one costs a
  bounded time whatever it holds.
- **Floods.** A subscriber more than `FLOOD_BACKLOG` messages behind stops serving, drops
  every cache and catches up unread, then serves again: it never serves stale items while
  behind (counted as ``bus_floods``).
- **Credentials** come from the URL (``redis://USER:PASSWORD@host:port/db``, ``rediss://``
  for TLS); `InvalidationBus.start` fails with `ConfigurationError` if Redis refuses them.

Writes that bypass this layer (the console, other services) are not seen: see
docs/caching.md for the choices (a short TTL, or a DynamoDB Streams consumer publishing here).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..observe.metrics import Metrics
from ..settings import current_settings
from . import coherence
from .messages import Invalidation, chunked, decode_key, encode_key, verify

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
#: Messages waiting on the subscription at once past which the subscriber stops
#: serving, drops every cache and catches up unread (a flood, or a stalled process).
FLOOD_BACKLOG: Final = 1000

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
        secret: the bus secret (``cache_bus_secret``): messages are signed with it and
            only messages signed with it are acted on. ``None``: unsigned messages.
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
        secret: str | bytes | None = None,
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
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.max_pending = max_pending
        self.timeout = timeout
        self.sleep_cap = sleep_cap
        self._state = threading.Condition()
        self._serving = False  # the gate, read without the lock on every cache lookup
        self._reported = False  # what `wait_serving` sees: set once the caches are dropped
        self._closed = threading.Event()
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
        """Start both threads; returns the bus. Caches serve once the subscription is up.

        Raises:
            ConfigurationError: Redis refused the URL's credentials (a wrong password or
                ACL user), checked once here: an unreachable Redis is not an error (the
                caches stay off until it answers).
        """
        self._check_credentials()
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
            message = Invalidation(
                origin=self.origin, seq=next(self._seq), at=now, table=table, keys=keys
            )
            payloads = chunked(message, self._secret)
        except (TypeError, ValueError):  # keys that cannot travel: everyone clears instead
            log.warning("cache bus: cannot send keys of %s; asking for a full clear", table)
            payloads = [(self._clear_payload(now), 0)]
        with self._state:
            self._pending.extend(payloads)
            self._pending_keys += sum(count for _payload, count in payloads)
            if self._pending_keys > self.max_pending:  # Redis away too long: collapse
                self._pending = deque([(self._clear_payload(now), 0)])
                self._pending_keys = 0
                self._collapses += 1
            self._state.notify_all()

    def _clear_payload(self, now: float) -> bytes:
        seq = next(self._seq)
        clear = Invalidation(origin=self.origin, seq=seq, at=now, table=None, clear=True)
        ((payload, _count),) = chunked(clear, self._secret)
        return payload

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
                    coherence.drop_all()  # what we missed before subscribing is gone now
                    self._set_serving(True)
                    if resumed and self.metrics is not None:
                        self.metrics.record_bus_reconnect()
                elif kind == "message":
                    self._receive(message.get("data"))
                    self._catch_up(pubsub)
                    last_seen = time.monotonic()
            if now - last_seen > 3 * self.heartbeat:
                raise self._redis.ConnectionError("no answer to the heartbeat")
            if now - last_ping >= self.heartbeat:
                pubsub.ping()
                last_ping = now

    def _catch_up(self, pubsub: Any) -> None:
        """Serve the messages already waiting; past `FLOOD_BACKLOG` of them, stop serving,
        drop every cache and read the rest unread, then serve again (never stale reads
        while the subscriber is behind)."""
        waiting = 0
        while (message := pubsub.get_message(timeout=0)) is not None:
            waiting += 1
            if waiting < FLOOD_BACKLOG:
                if message.get("type") == "message":
                    self._receive(message.get("data"))
                continue
            if waiting == FLOOD_BACKLOG:
                self._serving = False  # the gate shuts first, then the caches empty
                coherence.drop_all()
                log.warning("cache bus: over %d messages behind; caches dropped", FLOOD_BACKLOG)
                if self.metrics is not None:
                    self.metrics.record_bus_flood()
        if waiting >= FLOOD_BACKLOG:
            coherence.drop_all()  # whatever was cached while catching up
            self._set_serving(True)

    def _receive(self, data: object) -> None:
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes):
            return
        try:
            message = Invalidation.decode(verify(data, self._secret))
        except ValueError as err:
            log.debug("cache bus: dropped a message (%s)", err)
            if self.metrics is not None:
                self.metrics.record_bus_rejected()
            return
        # Every message received is acted on, whatever the sender's clock says: Redis
        # delivers only what was published after we subscribed, and an eviction too many
        # is harmless where one ignored is a stale read.
        if message.origin == self.origin:
            return  # our own: evicted already
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

    def _check_credentials(self) -> None:
        redis = self._redis
        client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=min(self.timeout, 0.5),
            socket_timeout=min(self.timeout, 0.5),
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        try:
            client.ping()
        except redis.AuthenticationError as err:
            if urlsplit(self.url).password is None:
                raise ConfigurationError(
                    f"cache bus {_where(self.url)}: Redis asks for a password; give "
                    "redis://:PASSWORD@host:port/db (or USER:PASSWORD for an ACL user)"
                ) from err
            raise ConfigurationError(
                f"cache bus {_where(self.url)}: Redis refused the credentials in "
                f"PORTCHOPS_CACHE_BUS_URL ({err}); give redis://USER:PASSWORD@host:port/db"
            ) from err
        except redis.ResponseError as err:
            if "NOAUTH" in str(err) or "WRONGPASS" in str(err):
                raise ConfigurationError(
                    f"cache bus {_where(self.url)}: Redis asks for a password; give "
                    "redis://:PASSWORD@host:port/db (or USER:PASSWORD for an ACL user)"
                ) from err
            raise
        except (redis.RedisError, OSError):
            pass  # unreachable now: the threads keep trying, caches off meanwhile
        finally:
            _quietly(client.close)

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
    """The bus for the settings in force: started on first use, replaced on a new URL
    or secret.

    ``None`` when ``cache_bus_url`` is not set (a bus left from earlier settings is closed).

    Raises:
        ConfigurationError: the URL is set but the ``redis`` package is missing, or Redis
            refused its credentials.
    """
    settings = current_settings()
    url = settings.cache_bus_url
    bus = _active
    if bus is None and url is None:
        return None  # no bus, none wanted: the common case, asked on every cache hit
    given = settings.cache_bus_secret
    secret = None if given is None else given.get_secret_value().encode()
    if bus is not None and bus.url == url and bus._secret == secret:
        return bus
    return _follow(url, secret)


def shutdown() -> None:
    """Close the process's bus (the next use starts it again if the settings still name one)."""
    _follow(None, None)


def _follow(url: str | None, secret: bytes | None) -> InvalidationBus | None:
    global _active
    with _lock:
        if _active is not None and _active.url == url and _active._secret == secret:
            return _active
        old, _active = _active, None
        if old is not None:
            old.close()
            coherence.drop_all()  # nothing cached under the old bus may outlive it
        if url is not None:
            _active = InvalidationBus(url, metrics=_metrics, secret=secret).start()
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

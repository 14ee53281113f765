"""Coalescing: point reads issued together leave as one batch (``coalesce=True``).

A repository built with ``coalesce=True`` holds a `Batches` of its runtime's kind
(`Runtime.batches`); `portchops_models.ops.reads.load` submits each point read's key to
it, in a group of what one batch request shares (connection, table, projection,
consistency). The runtime decides what "together" means:

- async (`TickBatches`): the reads issued in one event-loop tick. The first read of a
  group schedules the flush with ``loop.call_soon``, so every read the tick starts
  joins it.
- sync (`WindowBatches`): the reads of other threads arriving within `WINDOW` (1 ms)
  of the first. The first waits only while other coalesced reads of the repository are
  in flight: a lone caller sends at once.

A batch closes early at `LIMIT` distinct keys (a key asked twice is read once). Its
flush runs under the deadline of the waiting read whose deadline is latest (async: a
task in a copy of that read's context; sync: in that read's own thread), and every read
waits no longer than its own deadline, then raises `CallTimeout` as a GetItem past it
would. The flush gives each key its outcome, a value or the exception of the request
that carried the key: an error fails only the reads of the keys it concerns.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Hashable, Mapping
from typing import Any, Protocol, TypeVar, cast

from ..dynamo.limits import BATCH_GET_MAX
from ..transport import deadline

__all__ = ["LIMIT", "WINDOW", "Batches", "Flush", "TickBatches", "WindowBatches"]

V = TypeVar("V")

#: Most distinct keys in one batch: a BatchGetItem request's.
LIMIT = BATCH_GET_MAX
#: How long (seconds) the first of a sync batch waits for reads of other threads.
WINDOW = 0.001

#: Reads the keys of one batch: each key's value, or the exception that failed it.
Flush = Callable[[list[Hashable]], Coroutine[Any, Any, Mapping[Hashable, V | BaseException]]]


class Batches(Protocol):
    """Where a repository's point reads meet to leave as one batch."""

    async def submit(self, group: Hashable, key: Hashable, flush: Flush[V], *, table: str) -> V:
        """`key`'s outcome from one `flush` of the keys submitted to `group` with it.

        Raises:
            CallTimeout: the caller's deadline passed before its batch answered.
            Exception: the error of the request that carried `key`.
        """
        ...  # pragma: no cover


def _instant() -> tuple[float | None, float]:
    """The deadline in force, and the same as a number (``inf`` without one)."""
    until = deadline.until()
    return until, math.inf if until is None else until


def _past_deadline(table: str) -> BaseException:
    return deadline.timeout_error("answer", table=table, operation="GetItem")


def _unpack(outcome: object) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


# ---------------------------------------------------------------------- async: one tick


class _Tick:
    """A batch forming on an event loop: each key's waiting futures, the latest deadline."""

    __slots__ = ("closed", "context", "latest", "waiters")

    def __init__(self) -> None:
        self.waiters: dict[Hashable, list[asyncio.Future[Any]]] = {}
        self.latest = -math.inf
        self.context: contextvars.Context | None = None
        self.closed = False


class TickBatches:
    """The async runtime's `Batches`: the reads of one event-loop tick, per loop."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()  # guards only the per-loop table (loops in threads)
        self._forming: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, _Tick]
        ] = weakref.WeakKeyDictionary()
        self._running: set[asyncio.Task[None]] = set()  # flushes, kept alive until done

    async def submit(self, group: Hashable, key: Hashable, flush: Flush[V], *, table: str) -> V:
        """Join (or start) this tick's batch of `group`, then await `key`'s outcome."""
        loop = asyncio.get_running_loop()
        forming = self._forming.get(loop)
        if forming is None:
            with self._lock:
                forming = self._forming.setdefault(loop, {})
        batch = forming.get(group)
        if batch is None:
            batch = forming[group] = _Tick()
            loop.call_soon(self._close, loop, forming, group, batch, flush)
        future: asyncio.Future[Any] = loop.create_future()
        batch.waiters.setdefault(key, []).append(future)
        until, instant = _instant()
        if instant > batch.latest:
            batch.latest, batch.context = instant, contextvars.copy_context()
        if len(batch.waiters) >= self._limit:
            self._close(loop, forming, group, batch, flush)
        if until is None:
            return cast(V, await future)
        timeout = asyncio.timeout(until - time.monotonic())
        try:
            async with timeout:
                return cast(V, await future)
        except TimeoutError:
            if timeout.expired():
                raise _past_deadline(table) from None
            raise

    def _close(
        self,
        loop: asyncio.AbstractEventLoop,
        forming: dict[Hashable, _Tick],
        group: Hashable,
        batch: _Tick,
        flush: Flush[Any],
    ) -> None:
        if batch.closed:
            return
        batch.closed = True
        if forming.get(group) is batch:
            del forming[group]
        task = loop.create_task(self._flush(batch, flush), context=batch.context)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @staticmethod
    async def _flush(batch: _Tick, flush: Flush[Any]) -> None:
        try:
            outcomes = await flush(list(batch.waiters))
        except BaseException as err:  # the flush itself failed (cancelled: the loop ends)
            for futures in batch.waiters.values():
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(err, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        for key, futures in batch.waiters.items():
            outcome = outcomes[key]
            for future in futures:
                if future.done():  # its caller was cancelled or timed out
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


# ---------------------------------------------------------------------- sync: a window


_ORPHANED = object()  # the thread running the flush left without outcomes (interrupted)


class _Waiter:
    """One sync read in a batch: its key and deadline, and how it is woken."""

    __slots__ = ("done", "instant", "key", "outcome", "runs")

    def __init__(self, key: Hashable, instant: float) -> None:
        self.key = key
        self.instant = instant
        self.done = threading.Event()  # set when it runs the flush or has its outcome
        self.runs = False
        self.outcome: object = _ORPHANED


class _Window:
    """A batch forming across threads."""

    __slots__ = ("closed", "full", "keys", "waiters")

    def __init__(self) -> None:
        self.keys: dict[Hashable, None] = {}
        self.waiters: list[_Waiter] = []
        self.full = threading.Event()
        self.closed = False


class WindowBatches:
    """The sync runtime's `Batches`: reads of several threads within `window` seconds.

    The first read of a group waits up to `window` for others (only while other reads
    of this object are in flight), then the batch closes and the read with the latest
    deadline runs the flush in its own thread; the others wait for its outcome.
    """

    def __init__(self, window: float = WINDOW, limit: int = LIMIT) -> None:
        self._window = window
        self._limit = limit
        self._lock = threading.Lock()
        self._forming: dict[Hashable, _Window] = {}
        self._active = 0

    async def submit(self, group: Hashable, key: Hashable, flush: Flush[V], *, table: str) -> V:
        """Join (or start) `group`'s forming batch, then block until `key`'s outcome."""
        until, instant = _instant()
        me = _Waiter(key, instant)
        with self._lock:
            self._active += 1
            batch = self._forming.get(group)
            leads = batch is None
            if batch is None:
                batch = self._forming[group] = _Window()
            batch.keys[key] = None
            batch.waiters.append(me)
            alone = self._active == 1
            if len(batch.keys) >= self._limit:
                self._close(group, batch)
        try:
            if leads:
                if not alone:
                    batch.full.wait(self._window)
                with self._lock:
                    self._close(group, batch)
            left = None if until is None else max(until - time.monotonic(), 0.0)
            if not me.done.wait(left):
                raise _past_deadline(table)
            if me.runs:
                try:
                    outcomes = await flush(list(batch.keys))
                    for waiter in batch.waiters:
                        waiter.outcome = outcomes[waiter.key]
                finally:
                    for waiter in batch.waiters:
                        waiter.done.set()
            if me.outcome is _ORPHANED:
                me.outcome = (await flush([key]))[key]
            return cast(V, _unpack(me.outcome))
        finally:
            with self._lock:
                self._active -= 1

    def _close(self, group: Hashable, batch: _Window) -> None:
        """Close `batch` (under the lock) and wake the read that is to run it."""
        if batch.closed:
            return
        batch.closed = True
        if self._forming.get(group) is batch:
            del self._forming[group]
        runner = max(batch.waiters, key=lambda w: w.instant)  # ties: the first, awake
        runner.runs = True
        runner.done.set()
        batch.full.set()

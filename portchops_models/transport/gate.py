"""`FairGate`: the async pool's connection slots, handed out oldest call first.

Why not aiohttp's connector limit alone (or an `asyncio.Semaphore`): both let a
newcomer barge. When a request ends, its connection goes back to the pool and
the first waiter is woken, but before that waiter runs, whichever coroutine
reaches the pool next takes the connection: usually the task whose request just
ended, starting its next call without yielding to the loop. Under 500 tasks on
50 connections the same few tasks kept the connections while the rest waited
until the run ended (p50 47 ms, p99 the whole run), and a batch call's chunks,
new tasks that must wait, were starved worst.

Here a released slot is handed to the next waiter (its future resolved), never
put back where a newcomer could take it; waiters are served by rank: the instant
their public call began (`portchops_models.transport.deadline.window`), then arrival.
So a retry after its backoff, a batch's later rounds and every chunk of a batch
keep the place of the call they belong to, ahead of calls that began after it,
and a wait never exceeds the time the calls ahead take to drain. A waiter stops
at its deadline (`TimeoutError`); a waiter cancelled or timed out just as it was
handed a slot passes it on. One gate per event loop (futures belong to a loop).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

__all__ = ["FairGate"]


class FairGate:
    """`permits` slots, handed over directly to waiters, oldest rank first.

    Args:
        permits: how many holders at once (the pool's connections).

    Example:
        >>> async def demo() -> int:
        ...     gate = FairGate(1)
        ...     await gate.acquire(rank=0.0)
        ...     gate.release()
        ...     return gate.free
        >>> asyncio.run(demo())
        1
    """

    __slots__ = ("_heap", "_live", "_order", "free")

    def __init__(self, permits: int) -> None:
        if permits < 1:
            raise ValueError(f"FairGate needs at least one permit, got {permits!r}")
        #: slots nobody holds (never more than zero while anyone waits).
        self.free = permits
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._live = 0
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Waiters not yet served (neither handed a slot nor given up)."""
        return self._live

    @property
    def queued(self) -> int:
        """Entries in the queue, those that gave up included (at most twice `waiting`, plus one)."""
        return len(self._heap)

    def take(self) -> bool:
        """Take a free slot at once if there is one (nobody waits then); ``False`` if not.

        Example:
            >>> gate = FairGate(1)
            >>> gate.take(), gate.take()
            (True, False)
        """
        if self.free:
            self.free -= 1
            return True
        return False

    async def acquire(self, *, rank: float, until: float | None = None) -> None:
        """Wait for a slot; served by `rank` (lower first), then by arrival.

        Args:
            rank: the instant the caller's call began (`time.monotonic`).
            until: the `time.monotonic` instant to stop waiting at, or ``None``.

        Raises:
            TimeoutError: no slot came free by `until`.
        """
        if self.take():
            return
        if until is not None and until <= time.monotonic():
            raise TimeoutError("the deadline passed while waiting for a connection")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (rank, next(self._order), waiter))
        self._live += 1
        timer = (
            None
            if until is None
            else loop.call_later(until - time.monotonic(), self._expire, waiter, until)
        )
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                self._gave_up()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def release(self) -> None:
        """Hand the slot to the first waiter, or free it when nobody waits."""
        heap = self._heap
        while heap:
            waiter = heapq.heappop(heap)[2]
            if waiter.done():  # gave up (timed out or cancelled) while queued
                continue
            self._live -= 1
            waiter.set_result(None)
            return
        self.free += 1

    def _expire(self, waiter: asyncio.Future[None], until: float) -> None:
        if waiter.done():
            return
        left = until - time.monotonic()
        if left > 0:  # the loop runs timers up to its clock resolution early
            asyncio.get_running_loop().call_later(left, self._expire, waiter, until)
            return
        waiter.set_exception(TimeoutError("no connection came free by the deadline"))

    def _gave_up(self) -> None:
        """One waiter left the queue unserved; drop the dead entries once they are half."""
        self._live -= 1
        if len(self._heap) > 2 * self._live + 1:
            self._heap = [entry for entry in self._heap if not entry[2].done()]
            heapq.heapify(self._heap)

"""The async pool's connection slots: handed out oldest call first, never lost, never kept.

`FairGate` on its own (each test its own ``asyncio.run``; a "request" is a few loop
turns while holding a slot, so the orders below are the event loop's, not timing's),
then through the real async transport, in front of moto behind the fault proxy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from portchops_models import CallTimeout, configure
from portchops_models.aio import AsyncUserRepository
from portchops_models.metrics import Metrics
from portchops_models.settings import current_settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport import deadline
from portchops_models.transport.connection import current_connection
from portchops_models.transport.gate import FairGate

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _turns(n: int) -> None:
    """Let the loop run `n` times (what a request on the wire does to the others)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def _request(gate: FairGate, rank: float, name: str, log: list[str], turns: int = 2) -> None:
    await gate.acquire(rank=rank)
    log.append(name)
    try:
        await _turns(turns)
    finally:
        gate.release()


def test_waiters_are_served_in_arrival_order() -> None:
    async def main() -> list[str]:
        gate = FairGate(1)
        await gate.acquire(rank=0.0)
        log: list[str] = []
        tasks = [asyncio.create_task(_request(gate, 1.0, f"w{i}", log)) for i in range(20)]
        await _turns(1)  # every waiter queued
        assert gate.waiting == 20
        gate.release()
        await asyncio.gather(*tasks)
        assert (gate.free, gate.waiting, gate.queued) == (1, 0, 0)
        return log

    assert run(main()) == [f"w{i}" for i in range(20)]


def test_an_older_call_goes_first_whenever_it_arrives() -> None:
    """A retry (or a batch's next round) keeps the place of the call it belongs to."""

    async def main() -> list[str]:
        gate = FairGate(1)
        await gate.acquire(rank=0.0)
        log: list[str] = []
        newer = [asyncio.create_task(_request(gate, 10.0 + i, f"new{i}", log)) for i in range(5)]
        await _turns(1)
        retry = asyncio.create_task(_request(gate, 1.0, "retry", log))
        await _turns(1)
        gate.release()
        await asyncio.gather(retry, *newer)
        return log

    assert run(main()) == ["retry", *(f"new{i}" for i in range(5))]


def test_a_released_slot_goes_to_the_waiter_not_to_a_newcomer() -> None:
    """The task whose request just ended cannot take its connection back past a waiter."""

    async def main() -> list[str]:
        gate = FairGate(1)
        log: list[str] = []
        await gate.acquire(rank=0.0)
        waiter = asyncio.create_task(_request(gate, 1.0, "waiter", log))
        await _turns(1)
        gate.release()
        assert gate.free == 0  # handed over, not put back
        await gate.acquire(rank=2.0)  # the same task's next call, without yielding first
        log.append("newcomer")
        gate.release()
        await waiter
        return log

    assert run(main()) == ["waiter", "newcomer"]


def test_a_batch_is_not_starved_by_a_stream_of_single_gets() -> None:
    """Chunks of a call that began first get their slots before gets that began after it,
    however many gets keep arriving (each get task starts its next one at once)."""

    async def main() -> list[str]:
        gate = FairGate(3)
        log: list[str] = []
        clock = iter(range(1, 10_000))
        stop = asyncio.Event()

        async def getter(n: int) -> None:
            while not stop.is_set():
                await _request(gate, float(next(clock)), f"get{n}", log, turns=1)

        getters = [asyncio.create_task(getter(n)) for n in range(10)]
        await _turns(5)  # the gets are streaming
        batch_rank = float(next(clock))
        chunks = [
            asyncio.create_task(_request(gate, batch_rank, f"chunk{i}", log)) for i in range(8)
        ]
        await asyncio.gather(*chunks)
        stop.set()
        await asyncio.gather(*getters)
        return log

    log = run(main())
    first = log.index("chunk0")
    last = max(i for i, name in enumerate(log) if name.startswith("chunk"))
    between = [name for name in log[first : last + 1] if not name.startswith("chunk")]
    # only gets already queued before the batch began (at most one per getter) come between
    assert len(between) <= 10, between
    assert [n for n in log if n.startswith("chunk")] == [f"chunk{i}" for i in range(8)]


def test_a_waiter_stops_at_its_deadline_and_loses_no_slot() -> None:
    async def main() -> None:
        gate = FairGate(1)
        await gate.acquire(rank=0.0)
        with pytest.raises(TimeoutError):
            await gate.acquire(rank=1.0, until=time.monotonic() + 0.01)
        with pytest.raises(TimeoutError):  # already past: no wait at all
            await gate.acquire(rank=1.0, until=time.monotonic() - 1)
        assert gate.waiting == 0
        gate.release()
        assert gate.free == 1

    run(main())


def test_a_cancelled_waiter_handed_a_slot_passes_it_on() -> None:
    async def main() -> list[str]:
        gate = FairGate(1)
        log: list[str] = []
        await gate.acquire(rank=0.0)
        doomed = asyncio.create_task(_request(gate, 1.0, "doomed", log))
        after = asyncio.create_task(_request(gate, 2.0, "after", log))
        await _turns(1)
        gate.release()  # handed to `doomed`, which is cancelled before it runs
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await after
        assert (gate.free, gate.waiting, gate.queued) == (1, 0, 0)
        return log

    assert run(main()) == ["after"]


def test_nothing_is_kept_once_many_waiters_have_come_and_gone() -> None:
    """Waiters that time out or are cancelled leave no entry behind (bounded memory)."""

    async def main() -> None:
        gate = FairGate(2)
        await gate.acquire(rank=0.0)
        await gate.acquire(rank=0.0)
        soon = time.monotonic() + 0.02
        timing_out = [
            asyncio.create_task(gate.acquire(rank=float(i), until=soon)) for i in range(500)
        ]
        cancelled = [asyncio.create_task(gate.acquire(rank=float(i))) for i in range(500)]
        await _turns(1)
        for task in cancelled:
            task.cancel()
        results = await asyncio.gather(*timing_out, *cancelled, return_exceptions=True)
        assert all(isinstance(r, TimeoutError | asyncio.CancelledError) for r in results)
        assert gate.waiting == 0
        assert gate.queued <= 1  # dead entries dropped as they became the majority
        gate.release()
        gate.release()
        assert (gate.free, gate.queued) == (2, 0)

    run(main())


def test_requests_through_the_pool_are_served_oldest_call_first(proxy: FaultProxy) -> None:
    """On one connection, a batch call's five chunks go out before the gets that began
    after it (the first get found the connection free), not behind all of them."""
    configure(current_settings(), max_pool_connections=1)
    users = AsyncUserRepository(cache=None, metrics=Metrics())
    keys = [f"u{i:03d}" for i in range(500)]

    async def main() -> None:
        await users.find("warm-up")  # the loop's session open
        proxy.reset_stats()
        await asyncio.gather(users.batch_get(keys), *(users.find(f"g{i}") for i in range(20)))
        gate = current_connection().transport.aio.gate()
        assert gate is not None
        assert (gate.free, gate.waiting, gate.queued) == (1, 0, 0)

    run(main())
    operations = [seen.operation for seen in proxy.seen]
    assert operations == ["GetItem", *["BatchGetItem"] * 5, *["GetItem"] * 19]
    assert proxy.stats.peak_connections == 1


def test_the_wait_for_a_slot_counts_against_the_deadline(proxy: FaultProxy) -> None:
    """A call still waiting for the one connection at its deadline is a CallTimeout
    waiting for a connection; the slot is not lost."""
    configure(current_settings(), max_pool_connections=1)
    transport = current_connection().transport
    table = current_settings().table_name("users")
    params = {"TableName": table, "Key": {"userId": {"S": "x"}}}

    async def main() -> None:
        await transport.call_async("GetItem", params)
        proxy.faults = Faults(latency=0.5)
        slow = asyncio.create_task(transport.call_async("GetItem", params))
        await _turns(2)  # the slow request holds the connection
        with deadline.bounded(0.05), pytest.raises(CallTimeout) as info:
            await transport.call_async("GetItem", params)
        assert info.value.waited_for == "connection"
        await slow
        gate = transport.aio.gate()
        assert gate is not None
        assert (gate.free, gate.queued) == (1, 0)

    run(main())

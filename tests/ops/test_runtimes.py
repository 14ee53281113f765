"""The runtimes own what differs between the sync and the async API: here, waiting.

A backoff under the async runtime never blocks the event loop, even with a custom
``sleep`` (a test's fake clock, an app's own): it runs in a worker thread while the
loop goes on. Under the sync runtime the policy's ``sleep`` runs in the calling thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from botocore.exceptions import ClientError

from portchops_models.ops.aio_runtime import RUNTIME as ASYNC
from portchops_models.ops.sync_runtime import RUNTIME as SYNC
from portchops_models.transport.drive import run_sync
from portchops_models.transport.retry import RetryPolicy

THROTTLED: Any = {
    "Error": {"Code": "ThrottlingException", "Message": "slow down"},
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


def test_a_custom_sleep_under_async_leaves_the_loop_running() -> None:
    ticked = threading.Event()
    ticks = 0

    def custom_sleep(seconds: float) -> None:  # returns once the loop has ticked 3 times
        assert ticked.wait(5), "the event loop was blocked while the backoff waited"

    async def ticker() -> None:
        nonlocal ticks
        while not ticked.is_set():
            ticks += 1
            if ticks >= 3:
                ticked.set()
            await asyncio.sleep(0)

    async def scenario() -> None:
        task = asyncio.create_task(ticker())
        await ASYNC.wait(RetryPolicy(sleep=custom_sleep))(0.2)
        await task

    asyncio.run(scenario())
    assert ticks >= 3


def test_the_default_sleep_under_async_is_asyncio_sleep() -> None:
    assert ASYNC.wait(RetryPolicy()) is asyncio.sleep


def test_the_sync_runtime_sleeps_in_the_calling_thread() -> None:
    slept: list[tuple[float, str]] = []
    policy = RetryPolicy(sleep=lambda s: slept.append((s, threading.current_thread().name)))
    run_sync(SYNC.wait(policy)(0.5))
    assert slept == [(0.5, threading.current_thread().name)]


def test_the_retry_loop_waits_the_way_its_runtime_says() -> None:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append, random=lambda: 1.0, budget=None)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ClientError(THROTTLED, "GetItem")
        return "ok"

    async def scenario() -> str:
        return await policy.run(flaky, wait=ASYNC.wait(policy), table="t")

    assert asyncio.run(scenario()) == "ok"
    assert calls == 3
    assert slept == [policy.base_delay, policy.base_delay * 2]  # full jitter at its ceiling

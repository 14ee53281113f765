"""What the log and tracing tests share: the sync or async API, and the four scenarios.

Each scenario runs one public call the way an app makes it, through either API:
a get, a batch_get, a call retried once after a throttle, and a call that gives up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from portchops_models import User, UserRepository
from portchops_models.aio import AsyncUserRepository
from portchops_models.retry import RetryPolicy
from portchops_models.testing.faultproxy import FaultProxy, Faults
from tests.conftest import fast_retry

#: A key value that must never appear in a log record or a span.
SECRET_ID = "u-private-4711"


class Api:
    """The sync or the async repositories, called alike: ``api.run(lambda: repo.get(k))``."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour

    def users(self, **kwargs: Any) -> Any:
        """A `UserRepository` or an `AsyncUserRepository`."""
        cls = AsyncUserRepository if self.flavour == "async" else UserRepository
        return cls(**kwargs)

    def run(self, call: Callable[[], Any]) -> Any:
        """Make the call; an awaitable result is awaited on a fresh event loop."""
        result = call()
        if self.flavour == "async":
            return asyncio.run(_await(result))
        return result

    @property
    def repository(self) -> str:
        """The class name the call spans carry."""
        return "AsyncUserRepository" if self.flavour == "async" else "UserRepository"


async def _await(result: Awaitable[Any]) -> Any:
    return await result


def seed(count: int) -> list[str]:
    """`count` users (the first one `SECRET_ID`) saved through the sync API; their ids."""
    users = UserRepository(cache=None)
    ids = [SECRET_ID] + [f"u{i:04d}" for i in range(1, count)]
    users.batch_save(User(user_id=i, email=f"{i}@example.com", name="N") for i in ids)
    return ids


def throttle_once(proxy: FaultProxy) -> RetryPolicy:
    """Throttle every request until the first backoff, which lifts the fault (no sleeping)."""

    def backoff(seconds: float) -> None:
        proxy.faults = Faults()

    proxy.faults = Faults(throttle=1.0)
    return RetryPolicy(sleep=backoff, budget=None)


def throttle_always(proxy: FaultProxy, attempts: int) -> RetryPolicy:
    """Throttle every request; a policy that gives up after `attempts`."""
    proxy.faults = Faults(throttle=1.0)
    return fast_retry(max_attempts=attempts, budget=None)

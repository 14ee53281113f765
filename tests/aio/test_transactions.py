"""The async transactions over HTTP on moto (dynalite has none): the same commit,
cancellations, limits, token and cache invalidation as the sync ones, awaited."""

from __future__ import annotations

import asyncio

import pytest

from portchops_models import (
    InvalidRequest,
    TransactionCanceled,
    User,
    UserProgress,
    UserRepository,
)
from portchops_models.aio import (
    AsyncTransaction,
    AsyncUserProgressRepository,
    AsyncUserRepository,
    read_transaction,
)
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from tests.conftest import fast_retry


def _user(uid: str) -> User:
    return User(user_id=uid, email=f"{uid}@x.io", name="Ada")


def test_commit_read_and_cancel(tables: Settings) -> None:
    async def scenario() -> None:
        async with AsyncTransaction() as tx:
            tx.save(_user("u1"))
            tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(2)])
        user, row, missing = await read_transaction(
            (User, "u1"), (UserProgress, ("u1", "l1")), (User, "nobody")
        )
        assert user is not None
        assert user.version == 1
        assert row is not None
        assert row.attempts == 2
        assert missing is None
        failing = AsyncTransaction()
        failing.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
        failing.check(User, "nobody", User.user_id.exists())
        with pytest.raises(TransactionCanceled) as info:
            await failing.commit()
        codes = [r.code if r else None for r in info.value.reasons]
        assert codes == [None, "ConditionalCheckFailed"]
        (after,) = await read_transaction((UserProgress, ("u1", "l1")))
        assert after is not None
        assert after.attempts == 2  # nothing of the canceled transaction applied

    asyncio.run(scenario())


def test_limits_hold_before_the_wire_and_a_raising_block_sends_nothing(
    proxy: FaultProxy,
) -> None:
    async def scenario() -> None:
        tx = AsyncTransaction()
        tx.check(User, "u1", User.user_id.exists())
        with pytest.raises(InvalidRequest):
            tx.check(User, "u1", User.user_id.exists())  # two operations on one item
        with pytest.raises(RuntimeError):
            await _a_block_that_raises()

    proxy.reset_stats()
    asyncio.run(scenario())
    assert proxy.seen == ()


async def _a_block_that_raises() -> None:
    async with AsyncTransaction() as tx:
        tx.save(_user("u2"))
        raise RuntimeError("the block failed")


def test_one_token_on_every_attempt_under_5xx(proxy: FaultProxy) -> None:
    async def commit_one(uid: str) -> str:
        tx = AsyncTransaction(retry=fast_retry(max_attempts=20))
        tx.save(_user(uid))
        await tx.commit()
        return tx.client_request_token

    async def two_transactions() -> list[str]:
        return [await commit_one("u1"), await commit_one("u2")]

    proxy.faults = Faults(server_error=0.5)
    tokens = asyncio.run(two_transactions())
    proxy.faults = Faults()
    sent = [s.payload or {} for s in proxy.seen if s.operation == "TransactWriteItems"]
    assert len(sent) > 2  # some attempts were retried
    assert {p["ClientRequestToken"] for p in sent} == set(tokens)
    assert len(set(tokens)) == 2


def test_a_cached_item_is_fresh_after_a_transaction_and_complete_lesson(
    tables: Settings,
) -> None:
    UserRepository().save(_user("u3"))
    users = AsyncUserRepository()
    progress = AsyncUserProgressRepository()

    async def scenario() -> None:
        assert (await users.get("u3")).completed_lessons is None  # now cached
        row = await progress.complete_lesson("u3", "l1", 95)
        assert row.status == "completed"
        assert (await users.get("u3")).completed_lessons == 1
        again = await progress.complete_lesson("u3", "l1", 99)
        assert again.attempts == 2
        assert (await users.get("u3")).completed_lessons == 1  # counted once

    asyncio.run(scenario())

"""Transactions over HTTP on moto: commits across tables, cancellations in the caller's
order, limits before the wire, one token per transaction under faults, coherent caches.

dynalite has no transactions (its last test shows what a caller sees there); everything
else runs on moto, the engine that has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pynamodb.expressions.condition import Condition

from portchops_models import (
    InvalidRequest,
    Transaction,
    TransactionCanceled,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
    configure,
    read_transaction,
)
from portchops_models.errors import ServiceError
from portchops_models.metrics import Metrics
from portchops_models.settings import Settings
from portchops_models.testing.engine import DynaliteEngine
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry


def _sent(proxy: FaultProxy, operation: str = "TransactWriteItems") -> list[dict[str, object]]:
    return [s.payload or {} for s in proxy.seen if s.operation == operation]


def _user(uid: str, name: str = "Ada") -> User:
    return User(user_id=uid, email=f"{uid}@x.io", name=name)


def test_a_commit_writes_two_tables_together(tables: Settings) -> None:
    users, progress = UserRepository(cache=None), UserProgressRepository(cache=None)
    ada = _user("u1")
    with Transaction() as tx:
        tx.save(ada)
        tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
    assert ada.version == 1  # checked (absent) and bumped
    assert users.get("u1", consistent=True).version == 1
    row = progress.get("u1", "l1", consistent=True)
    assert row.attempts == 1
    assert row.ttl is not None  # stamped like every progress write
    ada.name = "Ada L."
    with Transaction() as tx:
        tx.save(ada)
        tx.delete(UserProgress, ("u1", "l1"))
    assert users.get("u1", consistent=True).name == "Ada L."
    assert ada.version == 2
    assert progress.find("u1", "l1", consistent=True) is None


def test_a_failed_check_cancels_everything_with_the_reason_at_its_index(tables: Settings) -> None:
    users, progress = UserRepository(cache=None), UserProgressRepository(cache=None)
    users.save(_user("u1"))
    metrics = Metrics()
    tx = Transaction(metrics=metrics)
    tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
    tx.save(_user("u2"))
    tx.check(User, "u1", User.name == "Bob")
    tx.delete(User, "u3")
    with pytest.raises(TransactionCanceled) as caught:
        tx.commit()
    reasons = caught.value.reasons
    assert len(reasons) == 4
    assert [r.code if r else None for r in reasons] == [None, None, "ConditionalCheckFailed", None]
    stored = reasons[2].item_as(User) if reasons[2] else None
    assert stored is not None
    assert stored.name == "Ada"  # the item as it was, decoded as the operation's model
    assert caught.value.failed == [2]
    assert progress.find("u1", "l1", consistent=True) is None
    assert users.find("u2", consistent=True) is None
    assert users.find("u1", consistent=True) is not None
    assert metrics.snapshot()["transactions_canceled"] == 1


def test_a_stale_version_cancels_at_the_save(tables: Settings) -> None:
    users = UserRepository(cache=None)
    stale = users.save(_user("u1"))
    fresh = users.get("u1", consistent=True)
    fresh.name = "Fresh"
    users.save(fresh)
    stale.name = "Stale"
    tx = Transaction()
    tx.delete(UserProgress, ("u1", "l1"))
    tx.save(stale)
    with pytest.raises(TransactionCanceled) as caught:
        tx.commit()
    reason = caught.value.reasons[1]
    assert reason is not None
    assert reason.code == "ConditionalCheckFailed"
    assert stale.version == 1  # not bumped: nothing was applied
    assert users.get("u1", consistent=True).name == "Fresh"


def test_limits_fail_before_the_wire(proxy: FaultProxy) -> None:
    tx = Transaction()
    for i in range(100):
        tx.delete(User, f"u{i}")
    with pytest.raises(InvalidRequest, match="at most 100"):
        tx.delete(User, "u100")
    assert len(tx) == 100
    tx = Transaction()
    tx.update(User, "u1", [User.name.set("A")])
    with pytest.raises(InvalidRequest, match="already in this transaction"):
        tx.check(User, "u1", User.user_id.exists())
    with pytest.raises(InvalidRequest):
        tx.delete(UserProgress, "u1")  # not a (user_id, lesson_id) key
    assert proxy.seen == ()
    with pytest.raises(InvalidRequest, match="at most 100"):
        _in_a_block(lambda tx: [tx.delete(User, f"u{i}") for i in range(101)])
    assert proxy.seen == ()  # the with block raised: nothing was sent


def _in_a_block(body: Callable[[Transaction], object]) -> Transaction:
    with Transaction() as tx:
        body(tx)
    return tx


def _change_mind(tx: Transaction) -> None:
    tx.save(_user("u1"))
    raise RuntimeError("changed my mind")


def test_an_exception_in_the_block_sends_nothing(proxy: FaultProxy) -> None:
    tx = Transaction()
    with pytest.raises(RuntimeError), tx:
        _change_mind(tx)
    assert proxy.seen == ()
    with pytest.raises(InvalidRequest, match="discarded"):
        tx.commit()


@pytest.mark.parametrize("fault", ["server_error", "throttle", "drop"])
def test_every_attempt_carries_the_transactions_token(proxy: FaultProxy, fault: str) -> None:
    only = frozenset({"TransactWriteItems"})
    proxy.faults = Faults(**{fault: 0.5}, operations=only)  # type: ignore[arg-type]
    policy = fast_retry(max_attempts=50)
    attempts: dict[str, int] = {}
    for i in range(4):
        proxy.reset_stats()
        with Transaction(retry=policy) as tx:
            tx.save(_user(f"u{i}"))
            tx.update(UserProgress, (f"u{i}", "l1"), [UserProgress.attempts.add(1)])
        sent = _sent(proxy)
        assert {p["ClientRequestToken"] for p in sent} == {tx.client_request_token}
        assert all(p["ReturnConsumedCapacity"] == "TOTAL" for p in sent)
        attempts[tx.client_request_token] = len(sent)
    assert len(attempts) == 4  # one token per transaction
    assert sum(attempts.values()) > 4  # 5xx answers were resent, with the same token
    assert UserRepository(cache=None).get("u3", consistent=True).version == 1


def test_retries_resend_the_same_token_and_payload(proxy: FaultProxy) -> None:
    proxy.faults = Faults(server_error=1.0, operations=frozenset({"TransactWriteItems"}))
    tx = Transaction(retry=fast_retry(max_attempts=4))
    tx.save(_user("u1"))
    with pytest.raises(ServiceError):
        tx.commit()
    sent = [s.body for s in proxy.seen if s.operation == "TransactWriteItems"]
    assert len(sent) == 4
    assert len(set(sent)) == 1  # byte for byte the same request, token included
    # The outcome was unknown: committing again resends the same token.
    proxy.faults = Faults()
    tx.commit()
    assert {p["ClientRequestToken"] for p in _sent(proxy)} == {tx.client_request_token}
    assert UserRepository(cache=None).get("u1", consistent=True).version == 1
    with pytest.raises(InvalidRequest, match="committed"):
        tx.commit()


def test_a_condition_failure_is_sent_once(proxy: FaultProxy) -> None:
    with pytest.raises(TransactionCanceled), Transaction(retry=fast_retry()) as tx:
        tx.check(User, "nobody", User.user_id.exists())
    assert len(_sent(proxy)) == 1


def test_cached_items_are_fresh_after_a_transaction(tables: Settings) -> None:
    users, other = UserRepository(), UserRepository()  # two caches of one table
    progress = UserProgressRepository()
    users.save(_user("u1"))
    progress.record_attempt("u1", "l1", 10)
    assert users.get("u1").name == "Ada"  # cached
    assert other.get("u1").name == "Ada"
    assert progress.get("u1", "l1").attempts == 1
    with Transaction() as tx:
        tx.update(User, "u1", [User.name.set("Grace")])
        tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
    assert users.get("u1").name == "Grace"
    assert other.get("u1").name == "Grace"
    assert progress.get("u1", "l1").attempts == 2
    with Transaction() as tx:
        tx.delete(User, "u1")
    assert users.find("u1") is None


def test_read_transaction_returns_typed_models_in_order(tables: Settings) -> None:
    UserRepository(cache=None).save(_user("u1"))
    UserProgressRepository(cache=None).record_attempt("u1", "l1", 90)
    conn = current_connection()
    expired = {
        "userId": {"S": "u1"},
        "lessonId": {"S": "old"},
        "ttl": {"N": str(int(time.time()) - 60)},
    }
    conn.call("PutItem", {"TableName": tables.table_name("user-progress"), "Item": expired})
    metrics = Metrics()
    user, row, gone, missing, again = read_transaction(
        (User, "u1"),
        (UserProgress, ("u1", "l1")),
        (UserProgress, ("u1", "old")),  # TTL passed, still stored: None
        (User, "nobody"),
        (User, "u1"),
        metrics=metrics,
    )
    assert user is not None
    assert user.email == "u1@x.io"
    assert row is not None
    assert row.status == "completed"
    assert (gone, missing) == (None, None)
    assert again is not None
    assert again is not user  # read once, answered twice, as two objects
    assert again.serialize() == user.serialize()
    snap = metrics.snapshot()
    assert snap["operations"]["TransactGetItems"]["requests"] == 1
    assert snap["consumed_read_capacity_units"] > 0


def test_read_transaction_refuses_bad_pairs_before_the_wire(proxy: FaultProxy) -> None:
    with pytest.raises(InvalidRequest):
        read_transaction()
    with pytest.raises(InvalidRequest):
        read_transaction((UserProgress, "u1"))
    with pytest.raises(InvalidRequest):
        read_transaction(*[(User, f"u{i}") for i in range(101)])
    assert proxy.seen == ()


def test_complete_lesson_counts_each_lesson_once(tables: Settings) -> None:
    users, progress = UserRepository(), UserProgressRepository()
    users.save(_user("u1"))
    progress.record_attempt("u1", "l1", 30)
    assert users.get("u1").completed_lessons is None  # cached; absent until the first
    first = progress.complete_lesson("u1", "l1", 95)
    assert (first.status, first.attempts, first.score) == ("completed", 2, 95)
    assert first.completed_at is not None
    again = progress.complete_lesson("u1", "l1", 99)  # already completed: not counted twice
    assert again.attempts == 3
    assert again.completed_at == first.completed_at
    progress.complete_lesson("u1", "l2", 80)
    assert users.get("u1").completed_lessons == 2
    with pytest.raises(TransactionCanceled) as caught:
        progress.complete_lesson("nobody", "l1", 90)  # no such user: nothing written
    assert caught.value.failed == [1]
    assert progress.find("nobody", "l1", consistent=True) is None


def test_dynalite_has_no_transactions_and_says_so_with_a_typed_error(
    dynalite_engine: DynaliteEngine,
) -> None:
    configure(endpoint_url=dynalite_engine.endpoint_url, table_prefix="tx-dynalite-")
    condition: Condition = User.user_id.exists()
    tx = Transaction(retry=fast_retry())
    tx.check(User, "u1", condition)
    with pytest.raises(ServiceError, match="no transactions"):
        tx.commit()
    with pytest.raises(InvalidRequest, match="failed"):
        tx.commit()  # nothing was applied, and it is known: no resend
    with pytest.raises(ServiceError, match="does not support TransactGetItems"):
        read_transaction((User, "u1"))


def test_conflicts_are_retried_and_conditions_are_not() -> None:
    from botocore.exceptions import ClientError

    from portchops_models.ops.transaction_plan import transaction_policy

    def canceled(code: str) -> ClientError:
        response = {
            "Error": {"Code": "TransactionCanceledException", "Message": "canceled"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
            "CancellationReasons": [{"Code": "None"}, {"Code": code}],
        }
        return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]

    base = fast_retry(max_attempts=3)
    policy = transaction_policy(base)
    assert policy.retry_on(canceled("TransactionConflict"))
    assert not policy.retry_on(canceled("ConditionalCheckFailed"))
    assert policy.budget is base.budget  # the same retry budget as every other call
    assert policy.max_attempts == 3
    attempts = []

    def conflicted() -> None:
        attempts.append(1)
        raise canceled("TransactionConflict")

    with pytest.raises(ServiceError):
        policy.call(conflicted)
    assert len(attempts) == 3  # resent with backoff until the policy gave up


def test_complete_lesson_starts_afresh_over_an_expired_row(tables: Settings) -> None:
    users, progress = UserRepository(cache=None), UserProgressRepository(cache=None)
    users.save(_user("u1"))
    expired = {
        "userId": {"S": "u1"},
        "lessonId": {"S": "l1"},
        "status": {"S": "completed"},
        "attempts": {"N": "7"},
        "ttl": {"N": str(int(time.time()) - 60)},
    }
    current_connection().call(
        "PutItem", {"TableName": tables.table_name("user-progress"), "Item": expired}
    )
    row = progress.complete_lesson("u1", "l1", 88)
    assert (row.status, row.attempts) == ("completed", 1)  # a fresh row, not the expired one
    assert users.get("u1", consistent=True).completed_lessons == 1


def test_a_lost_answer_is_resent_with_the_same_token(proxy: FaultProxy) -> None:
    cached = UserRepository()
    cached.save(_user("u1"))
    assert cached.get("u1").name == "Ada"  # cached
    proxy.reset_stats()
    proxy.faults = Faults(lost_answer=1.0, operations=frozenset({"TransactWriteItems"}))
    tx = Transaction(retry=fast_retry(max_attempts=3))
    tx.delete(User, "u1")  # applied by the first attempt; its answer never arrives
    with pytest.raises(ServiceError):
        tx.commit()
    assert proxy.stats.lost_answers == 3
    assert {p["ClientRequestToken"] for p in _sent(proxy)} == {tx.client_request_token}
    assert UserRepository(cache=None).find("u1", consistent=True) is None
    proxy.faults = Faults()
    assert cached.find("u1") is None  # an unknown outcome evicts the keys too
    tx.commit()  # the outcome was unknown: the same token again (DynamoDB dedupes it)
    assert len({p["ClientRequestToken"] for p in _sent(proxy)}) == 1

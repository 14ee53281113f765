"""Pins the transaction types with `assert_type`; checked by `mypy --strict` in `make test`.

The functions are never called: mypy reading them is the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_type

from portchops_models import (
    Transaction,
    TransactionCanceled,
    User,
    UserProgress,
    UserProgressRepository,
    read_transaction,
)
from portchops_models.errors import CancellationReason
from portchops_models.ops.transaction_plan import Operation


def writes() -> None:
    with Transaction() as tx:
        assert_type(tx, Transaction)
        assert_type(tx.save(User(user_id="u1")), None)
        assert_type(tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)]), None)
        assert_type(tx.delete(User, "u2", condition=User.version == 3), None)
        assert_type(tx.check(User, "u1", User.user_id.exists()), None)
        assert_type(tx.client_request_token, str)
        assert_type(tx.operations, Sequence[Operation])
        assert_type(len(tx), int)
    assert_type(tx.commit(), None)
    assert_type(UserProgressRepository().complete_lesson("u1", "l1", 90), UserProgress)


def cancellations(err: TransactionCanceled) -> None:
    assert_type(err.reasons, list[CancellationReason | None])
    assert_type(err.failed, list[int])
    reason = err.reasons[0]
    if reason is not None:
        assert_type(reason.code, str)
        assert_type(reason.message, str | None)
        assert_type(reason.item, object | None)
        assert_type(reason.item_as(User), User | None)


def reads() -> None:
    assert_type(read_transaction((User, "u1")), tuple[User | None])
    user, row = read_transaction((User, "u1"), (UserProgress, ("u1", "l1")))
    assert_type(user, User | None)
    assert_type(row, UserProgress | None)
    assert_type(
        read_transaction((User, "u1"), (UserProgress, ("u1", "l1")), (User, "u2")),
        tuple[User | None, UserProgress | None, User | None],
    )
    many = read_transaction(*[(User, f"u{i}") for i in range(10)])
    assert_type(many, tuple[User | None, ...])

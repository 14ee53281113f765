"""The pure half of transactions: payloads in the caller's order, limits, reasons (no engine)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from portchops_models import InvalidRequest, User, UserProgress
from portchops_models.errors import (
    IdempotentParameterMismatch,
    TransactionCanceled,
    TransactionInProgress,
    cancellation_reasons,
    gave_up,
    is_retryable,
    is_transaction_conflict,
    translate,
)
from portchops_models.metrics import Metrics
from portchops_models.models.shape import shape_of
from portchops_models.ops import transaction_plan as plan
from tests.lesson_model import Lesson

USERS = shape_of(User)
PROGRESS = shape_of(UserProgress)
LESSONS = shape_of(Lesson)


def _canceled(*reasons: dict[str, object]) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "canceled"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
            "CancellationReasons": list(reasons),
        },
        "TransactWriteItems",
    )


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "TransactWriteItems",
    )


def test_payload_keeps_the_callers_order_whatever_the_kinds() -> None:
    write = plan.WritePlan()
    write.add(plan.update_operation(PROGRESS, "p", ("u1", "l1"), [UserProgress.attempts.add(1)]))
    write.add(plan.check_operation(USERS, "u", "u1", User.user_id.exists()))
    write.add(plan.put_operation(USERS, "u", User(user_id="u2", email="b@x.io", name="B")))
    write.add(plan.delete_operation(USERS, "u", "u3"))
    payload = write.payload("tok")
    kinds = [next(iter(entry)) for entry in payload["TransactItems"]]
    assert kinds == ["Update", "ConditionCheck", "Put", "Delete"]
    assert payload["ClientRequestToken"] == "tok"
    assert payload["ReturnConsumedCapacity"] == "TOTAL"
    check = payload["TransactItems"][1]["ConditionCheck"]
    assert check["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    update = payload["TransactItems"][0]["Update"]
    assert "ReturnValues" not in update
    assert "ReturnConsumedCapacity" not in update
    assert write.touched() == {"p": [("u1", "l1")], "u": ["u2", "u3"]}  # checks write nothing


def test_save_checks_and_bumps_the_version_only_once_committed() -> None:
    user = User(user_id="u1", email="a@x.io", name="A", version=3)
    write = plan.WritePlan()
    write.add(plan.put_operation(USERS, "u", user))
    put = write.payload("tok")["TransactItems"][0]["Put"]
    assert put["Item"]["version"] == {"N": "4"}
    assert ":0" in put["ExpressionAttributeValues"]  # version == 3 is checked
    assert user.version == 3
    write.committed()
    assert user.version == 4


def test_the_101st_operation_is_refused_and_leaves_the_plan_as_it_was() -> None:
    write = plan.WritePlan()
    for i in range(100):
        write.add(plan.delete_operation(USERS, "u", f"u{i}"))
    with pytest.raises(InvalidRequest, match="at most 100 operations"):
        write.add(plan.delete_operation(USERS, "u", "u100"))
    assert len(write) == 100


def test_two_operations_on_one_item_are_refused_by_value() -> None:
    write = plan.WritePlan()
    write.add(plan.delete_operation(LESSONS, "lessons", ("py", 2.5)))
    with pytest.raises(InvalidRequest, match="already in this transaction"):
        write.add(
            plan.check_operation(LESSONS, "lessons", ("py", Decimal("2.50")), Lesson.views > 1)
        )
    write.add(plan.delete_operation(LESSONS, "other-lessons", ("py", 2.5)))  # another table
    assert len(write) == 2


def test_over_4_mb_in_total_is_refused() -> None:
    write = plan.WritePlan()
    big = "x" * 390_000
    for i in range(10):
        write.add(plan.put_operation(USERS, "u", User(user_id=f"u{i}", email="e", name=big)))
    eleventh = plan.put_operation(USERS, "u", User(user_id="u10", email="e", name=big))
    with pytest.raises(InvalidRequest, match="at most 4194304 bytes"):
        write.add(eleventh)
    assert len(write) == 10


def test_bad_keys_and_items_fail_when_added() -> None:
    with pytest.raises(InvalidRequest):
        plan.delete_operation(PROGRESS, "p", "u1")  # not a (user_id, lesson_id) tuple
    with pytest.raises(InvalidRequest):
        plan.put_operation(USERS, "u", User(user_id="", email="e", name="n"))
    with pytest.raises(InvalidRequest, match="update action"):
        plan.update_operation(USERS, "u", "u1", ["name = 1"])  # type: ignore[list-item]
    with pytest.raises(InvalidRequest, match="client_request_token"):
        plan.WritePlan().payload("x" * 37)


def test_reasons_line_up_with_operations_and_decode_the_stored_item() -> None:
    write = plan.WritePlan()
    write.add(plan.update_operation(PROGRESS, "p", ("u1", "l1"), [UserProgress.attempts.add(1)]))
    write.add(plan.check_operation(USERS, "u", "u1", User.name == "Bob"))
    stored = {"userId": {"S": "u1"}, "email": {"S": "a@x.io"}, "name": {"S": "Ada"}}
    err = _canceled(
        {"Code": "None"},
        {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
            "Item": stored,
        },
    )
    canceled = write.canceled(err)
    assert canceled.reasons[0] is None
    reason = canceled.reasons[1]
    assert reason is not None
    assert reason.code == "ConditionalCheckFailed"
    user = reason.item_as(User)
    assert user is not None
    assert user.name == "Ada"
    assert reason.item_as(UserProgress) is None
    assert canceled.failed == [1]
    assert "operation 1 (ConditionCheck of u 'u1')" in str(canceled)


@given(st.lists(st.sampled_from(["None", "TransactionConflict", "ThrottlingError"]), min_size=1))
def test_conflicts_alone_are_retried(codes: list[str]) -> None:
    err = _canceled(*({"Code": code} for code in codes))
    assert is_transaction_conflict(err) == any(code != "None" for code in codes)


@given(
    st.lists(st.sampled_from(["None", "TransactionConflict"]), max_size=5),
    st.sampled_from(
        ["ConditionalCheckFailed", "ValidationError", "ItemCollectionSizeLimitExceeded"]
    ),
    st.lists(st.sampled_from(["None", "TransactionConflict"]), max_size=5),
)
def test_a_condition_failure_is_never_retried(
    before: list[str], final: str, after: list[str]
) -> None:
    err = _canceled(*({"Code": code} for code in [*before, final, *after]))
    assert not is_transaction_conflict(err)
    assert not is_retryable(err)
    translated = translate(err)
    assert isinstance(translated, TransactionCanceled)
    reasons = cancellation_reasons(err)
    assert reasons is not None
    assert reasons[len(before)] is not None
    assert translated.reasons[len(before)] == reasons[len(before)]


def test_token_errors_are_typed() -> None:
    assert isinstance(
        translate(_error("IdempotentParameterMismatchException")), IdempotentParameterMismatch
    )
    assert isinstance(translate(_error("TransactionInProgressException")), TransactionInProgress)
    in_progress = gave_up(
        _error("TransactionInProgressException"), table=None, attempts=8, reason="x"
    )
    assert isinstance(in_progress, TransactionInProgress)
    assert in_progress.attempts == 8
    assert is_retryable(_error("TransactionInProgressException"))
    assert not is_retryable(_error("IdempotentParameterMismatchException"))


def test_read_payload_reads_a_repeated_item_once_and_answers_it_twice() -> None:
    ops = [
        plan.get_operation(USERS, "u", "u1"),
        plan.get_operation(PROGRESS, "p", ("u1", "l1")),
        plan.get_operation(USERS, "u", "u1"),
    ]
    payload, positions = plan.read_payload(ops)
    assert len(payload["TransactItems"]) == 2
    assert positions == [0, 1, 0]
    user = {"userId": {"S": "u1"}, "email": {"S": "a@x.io"}, "name": {"S": "Ada"}}
    expired = {"userId": {"S": "u1"}, "lessonId": {"S": "l1"}, "ttl": {"N": "100"}}
    results = plan.read_results(ops, positions, {"Responses": [{"Item": user}, {"Item": expired}]})
    assert [type(r).__name__ for r in results] == ["User", "NoneType", "User"]
    missing = plan.read_results(ops, positions, {"Responses": [{}, {}]})
    assert missing == [None, None, None]


def test_read_payload_limits() -> None:
    with pytest.raises(InvalidRequest, match="at least one"):
        plan.read_payload([])
    ops = [plan.get_operation(USERS, "u", f"u{i}") for i in range(101)]
    with pytest.raises(InvalidRequest, match="at most 100"):
        plan.read_payload(ops)


def test_cancellations_are_counted() -> None:
    metrics = Metrics()
    metrics.record_cancellation()
    assert metrics.snapshot()["transactions_canceled"] == 1
    metrics.record_request(
        "TransactWriteItems",
        table=None,
        seconds=0.01,
        consumed=[
            {"TableName": "u", "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0},
            {"TableName": "p", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
        ],
    )
    snap = metrics.snapshot()
    assert snap["consumed_write_capacity_units"] == 6.0
    assert snap["tables"]["p"]["consumed_write_capacity_units"] == 2.0

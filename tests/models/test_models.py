"""Models against the real engine: attribute round trips, TTL, tables as created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portchops_models.dynamo.idempotency import is_marker
from portchops_models.errors import InvalidRequest
from portchops_models.models import User, UserProgress
from portchops_models.settings import Settings, configure
from portchops_models.tables import describe_table
from portchops_models.transport.connection import current_connection


def test_user_round_trips_every_attribute(tables: Settings) -> None:
    created = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    User(user_id="u-1", email="ada@example.com", name="Ada Lovelace", created_at=created).save()
    user = User.get("u-1")
    assert (user.user_id, user.email, user.name) == ("u-1", "ada@example.com", "Ada Lovelace")
    assert user.created_at == created
    assert user.updated_at.tzinfo is not None
    assert user.version == 1
    raw = current_connection().call(
        "GetItem", {"TableName": tables.table_name("users"), "Key": {"userId": {"S": "u-1"}}}
    )["Item"]
    markers = [name for name in raw if is_marker(name)]
    assert len(markers) == 1  # the versioned put's exactly-once marker (one per process)
    assert set(raw) - set(markers) == {
        "userId",
        "email",
        "name",
        "createdAt",
        "updatedAt",
        "version",
    }


def test_progress_round_trips_every_attribute(tables: Settings) -> None:
    done = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    before = datetime.now(UTC)
    UserProgress(
        user_id="u-1",
        lesson_id="l-007",
        status="completed",
        score=91.5,
        attempts=3,
        completed_at=done,
        ttl=expiry,
    ).save()
    row = UserProgress.get("u-1", "l-007")
    assert (row.status, row.score, row.attempts) == ("completed", 91.5, 3)
    assert row.completed_at == done
    # The model's own save is the repository's: UserProgress.ttl slides on every write.
    hours = timedelta(hours=tables.progress_ttl_hours)
    assert before + hours - timedelta(seconds=1) <= row.ttl <= datetime.now(UTC) + hours
    assert row.ttl != expiry
    raw = current_connection().call(
        "GetItem",
        {
            "TableName": tables.table_name("user-progress"),
            "Key": {"userId": {"S": "u-1"}, "lessonId": {"S": "l-007"}},
        },
    )["Item"]
    assert raw["ttl"] == {"N": str(int(row.ttl.timestamp()))}
    assert raw["completedAt"]["S"].startswith("2025-01-02T03:04:05")


def test_ttl_defaults_to_now_plus_progress_ttl_hours(tables: Settings) -> None:
    configure(tables, progress_ttl_hours=2)
    before = datetime.now(UTC)
    row = UserProgress(user_id="u", lesson_id="l")
    after = datetime.now(UTC)
    assert before + timedelta(hours=2) - timedelta(seconds=1) <= row.ttl
    assert row.ttl <= after + timedelta(hours=2)
    assert row.completed_at is None


def test_ttl_accepts_epoch_seconds_and_timedelta() -> None:
    row = UserProgress(user_id="u", lesson_id="l", ttl=1_900_000_000)
    assert row.ttl == datetime.fromtimestamp(1_900_000_000, tz=UTC)
    row.ttl = timedelta(hours=1)
    assert row.ttl > datetime.now(UTC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2030, 1, 1), "naive datetime"),
        (-5, "non-negative"),
        (timedelta(hours=-1), "negative timedelta"),
        (datetime(1960, 1, 1, tzinfo=UTC), "before the epoch"),
        ("tomorrow", "expected a datetime"),
        (float("nan"), "non-negative"),
    ],
)
def test_bad_ttl_values_are_rejected_clearly(value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        UserProgress(user_id="u", lesson_id="l", ttl=value)


def test_tables_as_created(tables: Settings) -> None:
    users = describe_table(tables.table_name("users"))
    progress = describe_table(tables.table_name("user-progress"))
    assert users is not None
    assert progress is not None
    assert users["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
    assert progress["KeySchema"] == [
        {"AttributeName": "userId", "KeyType": "HASH"},
        {"AttributeName": "lessonId", "KeyType": "RANGE"},
    ]
    (email_index,) = users["GlobalSecondaryIndexes"]
    assert email_index["IndexName"] == "email-index"
    assert email_index["KeySchema"] == [{"AttributeName": "email", "KeyType": "HASH"}]
    (completed,) = progress["GlobalSecondaryIndexes"]
    assert completed["IndexName"] == "completed-index"
    assert completed["KeySchema"] == [
        {"AttributeName": "userId", "KeyType": "HASH"},
        {"AttributeName": "completedAt", "KeyType": "RANGE"},
    ]
    assert users["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert users["SSEDescription"]["Status"] in ("ENABLED", "ENABLING")
    ttl = current_connection().call(
        "DescribeTimeToLive", {"TableName": tables.table_name("user-progress")}
    )["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl"
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


def test_sparse_completed_index_holds_only_completed_rows(tables: Settings) -> None:
    UserProgress(user_id="u", lesson_id="a", status="started").save()
    UserProgress(
        user_id="u", lesson_id="b", status="completed", completed_at=datetime.now(UTC)
    ).save()
    rows = list(UserProgress.completed_index.query("u"))
    assert [r.lesson_id for r in rows] == ["b"]


def test_table_names_follow_the_prefix(moto_engine: object) -> None:
    configure(table_prefix="demo-")
    assert User.table_name() == "demo-users"
    assert UserProgress.table_name() == "demo-user-progress"

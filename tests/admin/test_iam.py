"""The runtime IAM policy: exactly the operations the repositories send, on our tables only."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import ClassVar

import pytest
from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    KeysOnlyProjection,
    LocalSecondaryIndex,
)

from portchops_models import UserProgress
from portchops_models.admin.iam import (
    INDEX_ACTIONS,
    LEASE_ACTIONS,
    STREAM_ACTIONS,
    TABLE_ACTIONS,
    actions_for,
    policy_document,
)
from portchops_models.metrics import Metrics
from portchops_models.models import BaseModel, User
from portchops_models.repositories import UserProgressRepository, UserRepository
from portchops_models.settings import Settings, current_settings
from portchops_models.testing.faultproxy import FaultProxy

ARN = "arn:aws:dynamodb:*:*:table/"
#: Public methods that send nothing to DynamoDB.
NO_IO = {"cache_clear"}


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in NO_IO
    }


def test_table_actions_are_exactly_what_the_repositories_send(tables: Settings) -> None:
    metrics = Metrics()
    users = UserRepository(metrics=metrics, cache=None)
    progress = UserProgressRepository(metrics=metrics, cache=None)
    ada = User(user_id="u1", email="ada@example.com", name="Ada")

    exercised_users: dict[str, Callable[[], object]] = {
        "save": lambda: users.save(ada),
        "create": lambda: users.create(User(user_id="u4", email="d@x.io", name="D")),
        "get": lambda: users.get("u1"),
        "update": lambda: users.update("u1", name="Ada L."),
        "find": lambda: users.find("u2"),
        "exists": lambda: users.exists("u2"),
        "query": lambda: users.query("ada@example.com", index="email-index"),
        "iter_query": lambda: list(users.iter_query("u1")),
        "count": lambda: users.count("u1"),
        "batch_save": lambda: users.batch_save([User(user_id="u2", email="b@x.io", name="B")]),
        "batch_get": lambda: users.batch_get(["u1", "u2"]),
        "get_by_email": lambda: users.get_by_email("ada@example.com"),
        "scan_page": lambda: users.scan_page(limit=1),
        "scan": lambda: (list(users.scan(segments=2)), list(users.scan(index="email-index"))),
        "delete": lambda: users.delete("u2"),
        "batch_delete": lambda: users.batch_delete(["u1"]),
    }
    exercised_progress: dict[str, Callable[[], object]] = {
        "save": lambda: progress.save(UserProgress(user_id="u1", lesson_id="l-1")),
        "create": lambda: progress.create(UserProgress(user_id="u1", lesson_id="l-9")),
        "get": lambda: progress.get("u1", "l-1"),
        "find": lambda: progress.find("u1", "l-2"),
        "exists": lambda: progress.exists("u1", "l-2"),
        "count": lambda: progress.count("u1"),
        "update": lambda: progress.update("u1", "l-1", add_attempts=1),
        "record_attempt": lambda: progress.record_attempt("u1", "l-2", 90),
        "complete_lesson": lambda: (
            users.save(User(user_id="u9", email="c@x.io", name="C")),
            progress.complete_lesson("u9", "l-3", 95),
        ),
        "query": lambda: progress.query("u1", lesson_prefix="l-"),
        "iter_query": lambda: list(progress.iter_query("u1", page_size=1)),
        "completed": lambda: progress.completed("u1"),
        "batch_save": lambda: progress.batch_save([UserProgress(user_id="u3", lesson_id="l-1")]),
        "batch_get": lambda: progress.batch_get([("u1", "l-1"), ("u3", "l-1")]),
        "scan_page": lambda: progress.scan_page(),
        "scan": lambda: list(progress.scan()),
        "delete": lambda: progress.delete("u1", "l-1"),
        "batch_delete": lambda: progress.batch_delete([("u3", "l-1")]),
    }
    # A new public repository method must be exercised here (and so reach the policy).
    assert set(exercised_users) == public_methods(UserRepository)
    assert set(exercised_progress) == public_methods(UserProgressRepository)
    for run in (*exercised_users.values(), *exercised_progress.values()):
        run()

    snapshot = metrics.snapshot()
    assert snapshot["errors"] == 0
    needed = {action for op in snapshot["operations"] for action in actions_for(op)}
    assert needed == set(TABLE_ACTIONS)
    assert len(TABLE_ACTIONS) == len(set(TABLE_ACTIONS))


def test_policy_names_only_the_needed_actions_and_our_tables() -> None:
    doc = policy_document(settings=Settings(table_prefix="prod-"))
    json.loads(json.dumps(doc))  # plain JSON

    tables_stmt, index_stmt = doc["Statement"]
    assert doc["Version"] == "2012-10-17"
    assert tables_stmt["Effect"] == index_stmt["Effect"] == "Allow"
    assert tables_stmt["Action"] == [f"dynamodb:{a}" for a in TABLE_ACTIONS]
    assert tables_stmt["Resource"] == [f"{ARN}prod-users", f"{ARN}prod-user-progress"]
    assert index_stmt["Action"] == ["dynamodb:Query", "dynamodb:Scan"]
    assert index_stmt["Action"] == [f"dynamodb:{a}" for a in INDEX_ACTIONS]
    assert index_stmt["Resource"] == [
        f"{ARN}prod-users/index/email-index",
        f"{ARN}prod-user-progress/index/completed-index",
    ]
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    for management in ("CreateTable", "DeleteTable", "UpdateTable", "DescribeTable", "Update"):
        assert not any(management in a for a in actions if a != "dynamodb:UpdateItem")
    assert not any("*" in a for a in actions)
    assert "Condition" not in tables_stmt


def test_leading_keys_restricts_every_statement_and_drops_scan() -> None:
    doc = policy_document(
        settings=Settings(),
        leading_keys=True,
        table_arn_prefix="arn:aws:dynamodb:eu-west-1:123456789012:table/",
    )

    condition = {
        "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": ["${cognito-identity.amazonaws.com:sub}"]
        }
    }
    tables_stmt, index_stmt = doc["Statement"]
    assert tables_stmt["Condition"] == index_stmt["Condition"] == condition
    assert "dynamodb:Scan" not in tables_stmt["Action"]
    assert len(tables_stmt["Action"]) == len(TABLE_ACTIONS) - 1
    # email-index is keyed by email, not by the caller's id: a per-user role cannot use it.
    assert index_stmt["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/port-chops-user-progress/index/completed-index"
    ]


def test_leading_key_variable_is_configurable() -> None:
    doc = policy_document(leading_keys=True, leading_key_variable="${aws:userid}")
    keys = doc["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert keys == ["${aws:userid}"]


# --------------------------------------------------------------------------- the app's own models


class ByLevel(GlobalSecondaryIndex["Lesson"]):
    class Meta:
        index_name = "level-index"
        projection = KeysOnlyProjection()

    level = UnicodeAttribute(hash_key=True)


class ByCourseTitle(GlobalSecondaryIndex["Lesson"]):
    class Meta:
        index_name = "course-title-index"
        projection = AllProjection()

    course = UnicodeAttribute(hash_key=True, attr_name="courseId")
    title = UnicodeAttribute(range_key=True)


class ByPosition(LocalSecondaryIndex["Lesson"]):
    class Meta:
        index_name = "position-index"
        projection = AllProjection()

    course = UnicodeAttribute(hash_key=True, attr_name="courseId")
    position = NumberAttribute(range_key=True)


class Lesson(BaseModel):
    """Keyed by course (not by user), with two GSIs and an LSI."""

    base_table_name: ClassVar[str] = "lessons"

    course = UnicodeAttribute(hash_key=True, attr_name="courseId")
    lesson_id = UnicodeAttribute(range_key=True, attr_name="lessonId")
    level = UnicodeAttribute()
    title = UnicodeAttribute()
    position = NumberAttribute()
    by_level = ByLevel()
    by_course_title = ByCourseTitle()
    by_position = ByPosition()


class Blob(BaseModel):
    """A binary hash key, no index."""

    base_table_name: ClassVar[str] = "blobs"

    digest = BinaryAttribute(hash_key=True, legacy_encoding=False)


def test_the_apps_models_are_covered_beside_the_built_in_ones() -> None:
    doc = policy_document(settings=Settings(table_prefix="prod-"), models=[Lesson, Blob])

    tables_stmt, index_stmt = doc["Statement"]
    assert tables_stmt["Resource"] == [
        f"{ARN}prod-users",
        f"{ARN}prod-user-progress",
        f"{ARN}prod-lessons",
        f"{ARN}prod-blobs",
    ]
    assert index_stmt["Resource"] == [
        f"{ARN}prod-users/index/email-index",
        f"{ARN}prod-user-progress/index/completed-index",
        f"{ARN}prod-lessons/index/course-title-index",
        f"{ARN}prod-lessons/index/level-index",
        f"{ARN}prod-lessons/index/position-index",
    ]
    assert tables_stmt["Action"] == [f"dynamodb:{a}" for a in TABLE_ACTIONS]


def test_leading_keys_keep_the_indexes_on_each_tables_own_partition_key() -> None:
    doc = policy_document(
        settings=Settings(table_prefix="prod-"), models=[Lesson], leading_keys=True
    )

    # level-index is keyed by level, not by the table's courseId; the others are.
    assert doc["Statement"][1]["Resource"] == [
        f"{ARN}prod-user-progress/index/completed-index",
        f"{ARN}prod-lessons/index/course-title-index",
        f"{ARN}prod-lessons/index/position-index",
    ]
    assert f"{ARN}prod-lessons" in doc["Statement"][0]["Resource"]


def test_a_model_given_twice_counts_once() -> None:
    once = policy_document(settings=Settings(), models=[Lesson])
    assert policy_document(settings=Settings(), models=[User, Lesson, Lesson]) == once
    assert policy_document(settings=Settings(), models=[]) == policy_document(settings=Settings())


def test_a_model_without_a_table_is_refused() -> None:
    with pytest.raises(ValueError, match="BaseModel has no base_table_name"):
        policy_document(models=[BaseModel])


class Streamed(BaseModel):
    """A model that declares its stream (PynamoDB's Meta option)."""

    class Meta:
        stream_view_type = "NEW_AND_OLD_IMAGES"

    base_table_name: ClassVar[str] = "streamed"
    note_id = UnicodeAttribute(hash_key=True)


def test_a_model_with_a_stream_adds_exactly_what_a_stream_worker_sends(
    proxy: FaultProxy,
) -> None:
    from portchops_models.streams import Change, StreamWorker, enable_stream

    enable_stream(UserProgress)
    UserProgressRepository(cache=None).record_attempt("u1", "l1", 50)
    seen_before = len(proxy.seen)

    def handle(changes: list[Change[UserProgress]]) -> None:
        return None

    StreamWorker(UserProgress, handle, name="iam").run(until_idle=True)
    sent = proxy.seen[seen_before:]
    settings = current_settings()
    leases = settings.table_name("stream-leases")
    table = UserProgress.table_name()
    on_streams = {r.operation for r in sent if "StreamArn" in (r.payload or {})}
    on_streams |= {r.operation for r in sent if "ShardIterator" in (r.payload or {})}
    on_leases = {r.operation for r in sent if (r.payload or {}).get("TableName") == leases}
    on_table = {r.operation for r in sent if (r.payload or {}).get("TableName") == table}
    assert on_streams == set(STREAM_ACTIONS)
    assert on_leases <= set(LEASE_ACTIONS)
    assert {"Scan", "UpdateItem"} <= on_leases
    assert on_table == {"DescribeTable"}
    assert all(r.operation for r in sent)

    doc = policy_document(settings=Settings(table_prefix="prod-"), models=[Streamed])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["PortChopsStreams"]["Resource"] == [f"{ARN}prod-streamed/stream/*"]
    assert by_sid["PortChopsStreams"]["Action"] == [f"dynamodb:{a}" for a in STREAM_ACTIONS]
    assert by_sid["PortChopsStreamTables"]["Action"] == ["dynamodb:DescribeTable"]
    assert by_sid["PortChopsStreamLeases"]["Resource"] == [f"{ARN}prod-stream-leases"]
    # without a model that declares a stream, and for a per-user role, none of it
    assert len(policy_document(settings=Settings(table_prefix="prod-"))["Statement"]) == 2
    per_user = policy_document(models=[Streamed], leading_keys=True)
    assert [s["Sid"] for s in per_user["Statement"]] == ["PortChopsTables", "PortChopsIndexes"]

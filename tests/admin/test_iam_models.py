"""The models' own methods send only what `portchops iam-policy` allows.

PynamoDB's ``Model.exists()`` and ``Model.count()`` (without a hash key) send
DescribeTable, a control-plane action the runtime policy leaves out; `BaseModel`
asks with a one-key GetItem and refuses a table-wide count instead. This test
records every request the models' own methods put on the wire (the fault proxy's
log) and checks each one against the policy the command prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from portchops_models import InvalidRequest, User, UserProgress
from portchops_models.admin.iam import DEFAULT_TABLE_ARN_PREFIX
from portchops_models.cli import app
from portchops_models.models import BaseModel
from portchops_models.settings import Settings, configure, current_settings
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.faultproxy import FaultProxy, SeenRequest
from tests.lesson_model import Blob, Counter, Lesson

APP_MODELS: tuple[type[BaseModel], ...] = (Lesson, Blob, Counter)


@pytest.fixture
def app_tables(proxy: FaultProxy, tables: Settings) -> Iterator[FaultProxy]:
    """The app's models' tables beside the package's, and an empty request log."""
    for model in APP_MODELS:
        create_table(model)
    proxy.reset_stats()
    yield proxy
    for model in APP_MODELS:
        delete_table(model.table_name())


def printed_policy() -> list[tuple[set[str], set[str]]]:
    """`portchops iam-policy` for the settings in force, as (actions, resources) pairs."""
    references = [f"tests.lesson_model:{model.__name__}" for model in APP_MODELS]
    result = CliRunner().invoke(
        app, ["iam-policy", *(arg for ref in references for arg in ("--model", ref))]
    )
    assert result.exit_code == 0, result.output
    return [(set(s["Action"]), set(s["Resource"])) for s in json.loads(result.stdout)["Statement"]]


def resources(request: SeenRequest) -> list[str]:
    """The ARNs one request touches: its table (or index), or every table of a batch."""
    payload = request.payload
    assert isinstance(payload, dict)
    if "RequestItems" in payload:
        names = list(payload["RequestItems"])
    else:
        names = [
            payload["TableName"]
            + (f"/index/{payload['IndexName']}" if "IndexName" in payload else "")
        ]
    return [f"{DEFAULT_TABLE_ARN_PREFIX}{name}" for name in names]


def allowed(policy: list[tuple[set[str], set[str]]], operation: str, arn: str) -> bool:
    return any(f"dynamodb:{operation}" in actions and arn in arns for actions, arns in policy)


def test_the_models_own_methods_stay_within_the_printed_policy(app_tables: FaultProxy) -> None:
    ada = User(user_id="u-1", email="ada@example.com", name="Ada")
    lesson = Lesson(course_id="c-1", position=1, title="Intro", level="basic")
    exercised: dict[str, Callable[[], object]] = {
        "save": lambda: (ada.save(), lesson.save(), Blob(digest=b"\x01", label="b").save()),
        "get": lambda: (User.get("u-1"), Lesson.get("c-1", 1), Blob.get(b"\x01")),
        "refresh": lambda: ada.refresh(consistent_read=True),
        "update": lambda: ada.update(actions=[User.name.set("Ada L.")]),
        "exists": lambda: [model.exists() for model in (User, UserProgress, *APP_MODELS)],
        "count": lambda: (User.count("u-1"), Lesson.count("c-1", Lesson.position > 0)),
        "query": lambda: (
            list(UserProgress.query("u-1")),
            list(User.email_index.query("ada@example.com")),
            list(Lesson.by_level.query("basic")),
        ),
        "scan": lambda: list(User.scan(limit=5)),
        "batch_get": lambda: list(User.batch_get(["u-1", "u-2"])),
        "batch_write": lambda: _batch_write(),
        "delete": lambda: (ada.delete(), lesson.delete()),
    }
    for run in exercised.values():
        run()

    seen = app_tables.seen
    operations = {request.operation for request in seen}
    assert "DescribeTable" not in operations
    assert {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"} <= operations
    assert {"BatchGetItem", "BatchWriteItem"} <= operations
    policy = printed_policy()
    denied = [
        (request.operation, arn)
        for request in seen
        for arn in resources(request)
        if not allowed(policy, request.operation, arn)
    ]
    assert denied == []


def _batch_write() -> None:
    with User.batch_write() as batch:
        batch.save(User(user_id="u-2", email="b@example.com", name="B"))
        batch.delete(User(user_id="u-3"))  # one key twice in a batch is refused (DynamoDB's rule)


def test_exists_answers_for_present_and_missing_tables(app_tables: FaultProxy) -> None:
    assert all(model.exists() for model in (User, UserProgress, *APP_MODELS))
    configure(current_settings(), table_prefix="missing-")
    assert not any(model.exists() for model in (User, UserProgress, *APP_MODELS))
    assert {r.operation for r in app_tables.seen} == {"GetItem"}


def test_a_table_wide_count_is_refused_before_the_wire(app_tables: FaultProxy) -> None:
    with pytest.raises(InvalidRequest, match=r"^User\.count\(\) needs a hash key"):
        User.count()
    assert app_tables.seen == ()
    assert User.count("nobody") == 0

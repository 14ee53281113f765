"""`portchops migrate check` against moto (and dynalite) over HTTP, one prefix per test."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from portchops_models.admin.drift import check
from portchops_models.cli import app
from portchops_models.cli.drift import drift_check
from portchops_models.migrate import upgrade
from portchops_models.models import User, UserProgress
from portchops_models.settings import configure
from portchops_models.tables import create_table, delete_table, wait_until_active
from portchops_models.testing.engine import DynaliteEngine, LocalEngine
from portchops_models.transport.connection import current_connection
from tests.lesson_model import Lesson
from tests.school_model import Mark, School, Student

runner = CliRunner()


def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
    return current_connection().call(op, params)


def tables_under(prefix: str) -> list[str]:
    names: list[str] = call("ListTables", {})["TableNames"]
    return sorted(n for n in names if n.startswith(prefix))


def on(endpoint_url: str) -> Iterator[str]:
    """Settings on `endpoint_url` with a fresh prefix; its tables are deleted after."""
    name = f"d{uuid.uuid4().hex[:10]}-"
    configure(endpoint_url=endpoint_url, table_prefix=name)
    yield name
    configure(endpoint_url=endpoint_url, table_prefix=name)
    for table in tables_under(name):
        delete_table(table)


@pytest.fixture
def prefix(moto_engine: LocalEngine) -> Iterator[str]:
    yield from on(moto_engine.endpoint_url)


@pytest.fixture
def deployed(prefix: str) -> str:
    """The package's migrations applied (`migrate up`) under a fresh prefix."""
    upgrade(console=Console(file=io.StringIO()))
    return prefix


def check_command(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["migrate", "check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout.splitlines()


def test_a_matching_deployment_exits_0(deployed: str) -> None:
    code, lines = check_command()

    assert code == 0, lines
    assert lines == ["no drift: 2 table(s) and 5 step(s) match the models and the history"]
    assert drift_check().ok


def test_a_dropped_index_is_named(deployed: str) -> None:
    users = f"{deployed}users"
    update = [{"Delete": {"IndexName": "email-index"}}]
    call("UpdateTable", {"TableName": users, "GlobalSecondaryIndexUpdates": update})
    wait_until_active(users)

    code, lines = check_command()

    assert code == 1
    assert lines[0].startswith(f"drift {users}: global index email-index is missing")
    assert lines[-1] == "1 difference(s) in 2 table(s) and 5 step(s)"
    [difference] = drift_check().differences
    assert (difference.table, difference.what) == (users, "index email-index")


def test_a_missing_ttl_is_named(deployed: str) -> None:
    progress = f"{deployed}user-progress"
    spec = {"Enabled": False, "AttributeName": "ttl"}
    call("UpdateTimeToLive", {"TableName": progress, "TimeToLiveSpecification": spec})

    code, lines = check_command()

    assert code == 1
    assert lines[0] == (
        f"drift {progress}: TTL is disabled, the model expires items by ttl "
        "(a step turns it on with ctx.enable_ttl)"
    )
    [difference] = drift_check().differences
    assert (difference.what, difference.expected, difference.found) == ("ttl", "on ttl", "disabled")


def test_a_dropped_table_with_its_steps_applied(deployed: str) -> None:
    """The case of the issue: `status` says applied and `up` has nothing to apply."""
    delete_table(f"{deployed}users")

    code, lines = check_command()

    assert code == 1
    [line] = [x for x in lines if x.startswith("drift")]
    assert line.startswith(f"drift {deployed}users (User) does not exist, although the history")
    assert "records 5 step(s) of the package's migrations applied (last 0005)" in line
    assert "`portchops migrate up` has nothing to run" in line
    assert "restore it from a backup" in line


def test_pending_steps_and_what_they_leave_out(prefix: str) -> None:
    upgrade("0003", console=Console(file=io.StringIO()))

    found = {(d.table, d.what, d.found) for d in drift_check().differences}

    assert found == {
        (f"{prefix}users", "index email-index", "missing"),
        (f"{prefix}schema-migrations", "step 0004", "pending"),
        (f"{prefix}schema-migrations", "step 0005", "pending"),
    }


def test_the_check_creates_nothing(prefix: str) -> None:
    code, lines = check_command()

    assert code == 1
    assert lines[0].startswith(f"drift {prefix}users (User) does not exist; 5 step(s)")
    assert lines[-1] == "7 difference(s) in 2 table(s) and 5 step(s)"
    assert tables_under(prefix) == []  # not even the history table


def test_an_app_model_without_its_table(deployed: str, tmp_path: Path) -> None:
    code, lines = check_command("--model", "tests.lesson_model:Lesson")

    assert code == 1
    assert lines[0].startswith(f"drift {deployed}lessons (Lesson) does not exist")
    assert lines[-1] == "1 difference(s) in 3 table(s) and 5 step(s)"

    folder = tmp_path / "app_migrations"  # an app folder: only its models, its own history
    folder.mkdir()
    code, lines = check_command("--path", str(folder), "--model", "tests.lesson_model:Lesson")
    assert code == 1
    assert lines[0] == (
        f"drift {deployed}lessons (Lesson) does not exist and {folder} (namespace "
        "app_migrations) has no step applied or pending: add a step that creates it "
        "(ctx.create_table)"
    )

    create_table(Lesson)
    assert check_command("--path", str(folder), "--model", "tests.lesson_model:Lesson")[0] == 0
    code, lines = check_command("--path", str(folder), "--builtin")
    assert (code, lines[-1]) == (
        0,
        "no drift: 2 table(s) and 0 step(s) match the models and the history",
    )


def test_a_bad_model_reference_exits_2(prefix: str) -> None:
    result = runner.invoke(app, ["migrate", "check", "--model", "tests.lesson_model:Nope"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: --model tests.lesson_model:Nope:")


def test_entities_sharing_a_table_are_one_table(prefix: str) -> None:
    create_table(Student)
    school = f"{prefix}{School.base_table_name}"

    report = check([Student, Mark])
    assert (report.ok, report.tables) == (True, (school,))

    update = [{"Delete": {"IndexName": "gsi1"}}]
    call("UpdateTable", {"TableName": school, "GlobalSecondaryIndexUpdates": update})
    wait_until_active(school)
    [difference] = check([Student, Mark]).differences  # named once, not once per entity
    assert (difference.table, difference.what) == (school, "index gsi1")


def test_point_in_time_recovery_and_stray_ttl(prefix: str) -> None:
    create_table(User)
    users = f"{prefix}users"
    off = {"PointInTimeRecoveryEnabled": False}
    call(
        "UpdateContinuousBackups",
        {"TableName": users, "PointInTimeRecoverySpecification": off},
    )
    spec = {"Enabled": True, "AttributeName": "expiresAt"}
    call("UpdateTimeToLive", {"TableName": users, "TimeToLiveSpecification": spec})

    found = {d.what: (d.expected, d.found) for d in check([User]).differences}

    assert found == {"pitr": ("ENABLED", "DISABLED"), "ttl": ("off", "on expiresAt")}


@pytest.fixture
def on_dynalite(dynalite_engine: DynaliteEngine) -> Iterator[str]:
    yield from on(dynalite_engine.endpoint_url)


def test_an_engine_without_ttl_or_backups_says_so_once(on_dynalite: str, tmp_path: Path) -> None:
    for model in (User, UserProgress):
        create_table(model)  # dynalite: no TTL, no PITR, no encryption reported

    code, lines = check_command("--path", str(tmp_path), "--builtin")

    assert code == 0, lines
    assert lines == [
        "note point-in-time recovery: not supported by this engine, not checked; nor is "
        "encryption at rest, which it does not report",
        "note TTL: not supported by this engine, not checked",
        "no drift: 2 table(s) and 0 step(s) match the models and the history",
    ]
    delete_table(f"{on_dynalite}users")
    code, lines = check_command("--path", str(tmp_path), "--builtin")
    assert code == 1
    assert lines[0].startswith(f"drift {on_dynalite}users (User) does not exist")


def test_an_unreachable_endpoint_is_one_line(moto_engine: LocalEngine) -> None:
    configure(endpoint_url="http://127.0.0.1:9", retry_max_attempts=1, connect_timeout=0.5)

    result = runner.invoke(app, ["migrate", "check"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach DynamoDB at http://127.0.0.1:9")
    assert len(result.stderr.splitlines()) == 1

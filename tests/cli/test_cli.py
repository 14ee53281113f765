"""The ``portchops`` command: thin wrappers, one-line errors, exit codes."""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from typer.testing import CliRunner

from portchops_models.admin.iam import TABLE_ACTIONS
from portchops_models.cli import app
from portchops_models.models import BaseModel
from portchops_models.settings import configure
from portchops_models.tables import delete_table, describe_table
from portchops_models.testing.engine import LocalEngine
from portchops_models.transport.connection import current_connection

runner = CliRunner()


@pytest.fixture
def prefix(moto_engine: LocalEngine) -> Iterator[str]:
    """Settings on moto with a fresh table prefix (the commands read the settings in force)."""
    name = f"c{uuid.uuid4().hex[:10]}-"
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    yield name
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    for table in current_connection().call("ListTables", {})["TableNames"]:
        if table.startswith(name):
            delete_table(table)


def test_migrate_up_status_down(prefix: str) -> None:
    dry = runner.invoke(app, ["migrate", "up", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would apply 0001" in dry.stdout

    up = runner.invoke(app, ["migrate", "up", "--to", "0004"])
    assert up.exit_code == 0, up.output
    assert "applied 0004" in up.stdout
    assert "0005" not in up.stdout

    shown = runner.invoke(app, ["migrate", "status"])
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[1]: line for line in shown.stdout.splitlines() if "│ 000" in line}
    assert set(lines) == {"0001", "0002", "0003", "0004", "0005"}
    assert "applied" in lines["0004"]
    assert "unchanged" in lines["0004"]
    assert "pending" in lines["0005"]

    down = runner.invoke(app, ["migrate", "down", "--to", "0002"])
    assert down.exit_code == 0, down.output
    assert "reverted 0003" in down.stdout


@pytest.mark.parametrize("verb", ["up", "down"])
def test_unknown_target_exits_non_zero_with_one_line(prefix: str, verb: str) -> None:
    result = runner.invoke(app, ["migrate", verb, "--to", "0099"])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unknown migration target '0099': no migration 0099 (0001..0005)"
    ]
    assert "Traceback" not in result.output


def test_down_needs_a_target(prefix: str) -> None:
    result = runner.invoke(app, ["migrate", "down"])
    assert result.exit_code != 0
    assert "--to" in result.output


def test_status_exits_1_on_a_problem(prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    step = folder / "0001_step.py"
    step.write_text('"""Step."""\n\ndef up(ctx):\n    pass\n')
    assert runner.invoke(app, ["migrate", "up", "--path", str(folder)]).exit_code == 0
    step.write_text(step.read_text() + "# edited\n")

    result = runner.invoke(app, ["migrate", "status", "--path", str(folder)])

    assert result.exit_code == 1
    assert "EDITED" in result.stdout
    assert result.stderr.startswith("error: migration 0001_step.py was edited")


def test_a_broken_migration_is_one_line(prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_broken.py").write_text('"""Broken."""\n\nraise ImportError("nope")\n')

    result = runner.invoke(app, ["migrate", "up", "--path", str(folder)])

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "cannot import migration" in result.stderr
    assert "0001_broken.py" in result.stderr


def test_unreachable_endpoint_is_one_line(moto_engine: LocalEngine) -> None:
    configure(endpoint_url="http://127.0.0.1:9", retry_max_attempts=1, connect_timeout=0.5)

    result = runner.invoke(app, ["migrate", "status"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach DynamoDB at http://127.0.0.1:9")
    assert "PORTCHOPS_ENDPOINT_URL" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_seed_after_migrations(prefix: str) -> None:
    assert runner.invoke(app, ["migrate", "up"]).exit_code == 0

    first = runner.invoke(app, ["seed", "--users", "3", "--lessons", "2"])
    again = runner.invoke(app, ["seed", "--users", "3", "--lessons", "2"])

    assert first.exit_code == again.exit_code == 0
    assert "seeded 3 users (3 new) and 6 progress rows (6 new)" in first.stdout
    assert "seeded 3 users (0 new) and 6 progress rows (0 new)" in again.stdout


def test_seed_without_tables_is_one_line(prefix: str) -> None:
    result = runner.invoke(app, ["seed", "--users", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: table '{prefix}users' does not exist")


def test_iam_policy_prints_json(prefix: str) -> None:
    result = runner.invoke(app, ["iam-policy"])

    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["Statement"][0]["Action"] == [f"dynamodb:{a}" for a in TABLE_ACTIONS]
    arn = "arn:aws:dynamodb:*:*:table/"
    assert doc["Statement"][0]["Resource"] == [f"{arn}{prefix}users", f"{arn}{prefix}user-progress"]

    scoped = runner.invoke(
        app, ["iam-policy", "--leading-keys", "--table-arn-prefix", "arn:aws:dynamodb:x:1:table/"]
    )
    doc = json.loads(scoped.stdout)
    assert "dynamodb:Scan" not in doc["Statement"][0]["Action"]
    assert doc["Statement"][0]["Resource"][0] == f"arn:aws:dynamodb:x:1:table/{prefix}users"
    assert "dynamodb:LeadingKeys" in json.dumps(doc["Statement"][0]["Condition"])


# --------------------------------------------------------------------------- an app's own folder

APP_MODEL = """
from typing import ClassVar

from pynamodb.attributes import UnicodeAttribute

from portchops_models.models.base import BaseModel


class Lesson(BaseModel):
    base_table_name: ClassVar[str] = "app-lessons"

    lesson_id = UnicodeAttribute(hash_key=True, attr_name="lessonId")
"""


def app_folder(tmp_path: Path) -> Path:
    """An app's migrations, numbered from 0001 like the package's: a table, then a row."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "0001_create_lessons.py").write_text(
        '"""Create the app-lessons table."""\n'
        f"{APP_MODEL}\n\n"
        "def up(ctx):\n    ctx.create_table(Lesson)\n\n\n"
        "def down(ctx):\n    ctx.drop_table(Lesson)\n"
    )
    put = '{"TableName": ctx.settings.table_name("app-lessons"), "Item": ITEM}'
    key = '{"TableName": ctx.settings.table_name("app-lessons"), "Key": ITEM}'
    (folder / "0002_first_lesson.py").write_text(
        '"""Add the first lesson."""\n\n'
        'ITEM = {"lessonId": {"S": "l-001"}}\n\n\n'
        f'def up(ctx):\n    ctx.call("PutItem", {put})\n\n\n'
        f'def down(ctx):\n    ctx.call("DeleteItem", {key})\n'
    )
    return folder


def status_rows(output: str) -> dict[str, str]:
    """The rows of `migrate status`, by id (the first cell)."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if re.fullmatch(r"([\w.-]+:)?\d{4}", cells[0]):
            rows[cells[0]] = line
    return rows


def test_the_package_and_an_app_folder_side_by_side(prefix: str, tmp_path: Path) -> None:
    app_dir = str(app_folder(tmp_path))
    assert runner.invoke(app, ["migrate", "up"]).exit_code == 0

    up = runner.invoke(app, ["migrate", "up", "--path", app_dir])

    assert up.exit_code == 0, up.output
    assert "applied lessons:0001" in up.stdout
    assert "applied lessons:0002" in up.stdout
    assert describe_table(f"{prefix}app-lessons") is not None
    for args in (["migrate", "up"], ["migrate", "up", "--path", app_dir]):
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.output
        assert "nothing to apply" in again.stdout
        assert "applied" not in again.stdout

    package = runner.invoke(app, ["migrate", "status"])
    assert package.exit_code == 0, package.output
    assert set(status_rows(package.stdout)) == {"0001", "0002", "0003", "0004", "0005"}
    assert all("applied" in row for row in status_rows(package.stdout).values())
    own = runner.invoke(app, ["migrate", "status", "--path", app_dir])
    assert own.exit_code == 0, own.output
    assert "migrations: lessons" in own.stdout
    rows = status_rows(own.stdout)
    assert set(rows) == {"lessons:0001", "lessons:0002"}
    assert all("applied" in row and "unchanged" in row for row in rows.values())
    assert "EDITED" not in own.stdout
    assert own.stderr == ""

    down = runner.invoke(app, ["migrate", "down", "--to", "0000", "--path", app_dir])

    assert down.exit_code == 0, down.output
    assert "reverted lessons:0002" in down.stdout
    assert "reverted lessons:0001" in down.stdout
    assert describe_table(f"{prefix}app-lessons") is None
    assert describe_table(f"{prefix}users") is not None
    after = runner.invoke(app, ["migrate", "status"])
    assert after.exit_code == 0, after.output
    assert status_rows(after.stdout).keys() == status_rows(package.stdout).keys()
    assert all("applied" in row for row in status_rows(after.stdout).values())
    pending = status_rows(runner.invoke(app, ["migrate", "status", "--path", app_dir]).stdout)
    assert all("pending" in row for row in pending.values())


def test_an_unknown_target_in_an_app_folder_names_it(prefix: str, tmp_path: Path) -> None:
    app_dir = str(app_folder(tmp_path))

    result = runner.invoke(app, ["migrate", "up", "--path", app_dir, "--to", "0099"])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unknown migration target '0099': no migration lessons:0099 "
        "(lessons:0001..lessons:0002)"
    ]


# --------------------------------------------------------------------------- iam-policy --model


class CourseLevelIndex(GlobalSecondaryIndex["Course"]):
    class Meta:
        index_name = "level-index"
        projection = AllProjection()

    level = UnicodeAttribute(hash_key=True)


class CoursePositionIndex(LocalSecondaryIndex["Course"]):
    class Meta:
        index_name = "position-index"
        projection = AllProjection()

    course_id = UnicodeAttribute(hash_key=True, attr_name="courseId")
    position = NumberAttribute(range_key=True)


class Course(BaseModel):
    """An app model: its table and both indexes go into the policy with --model."""

    base_table_name: ClassVar[str] = "courses"

    course_id = UnicodeAttribute(hash_key=True, attr_name="courseId")
    lesson_id = UnicodeAttribute(range_key=True, attr_name="lessonId")
    level = UnicodeAttribute()
    position = NumberAttribute()
    by_level = CourseLevelIndex()
    by_position = CoursePositionIndex()


def test_iam_policy_covers_the_apps_models(prefix: str) -> None:
    arn = f"arn:aws:dynamodb:*:*:table/{prefix}"

    result = runner.invoke(app, ["iam-policy", "--model", f"{__name__}:Course"])

    assert result.exit_code == 0, result.output
    tables_stmt, index_stmt = json.loads(result.stdout)["Statement"]
    assert tables_stmt["Resource"] == [f"{arn}users", f"{arn}user-progress", f"{arn}courses"]
    assert index_stmt["Resource"][2:] == [
        f"{arn}courses/index/level-index",
        f"{arn}courses/index/position-index",
    ]

    scoped = runner.invoke(app, ["iam-policy", "--leading-keys", "--model", f"{__name__}:Course"])
    assert scoped.exit_code == 0, scoped.output
    index_stmt = json.loads(scoped.stdout)["Statement"][1]
    assert index_stmt["Resource"] == [  # level-index is not keyed by the table's courseId
        f"{arn}user-progress/index/completed-index",
        f"{arn}courses/index/position-index",
    ]


def test_iam_policy_imports_a_model_from_the_current_directory(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"shop_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(APP_MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        result = runner.invoke(app, ["iam-policy", "--model", f"{name}:Lesson"])
    finally:
        sys.modules.pop(name, None)

    assert result.exit_code == 0, result.output
    resources = json.loads(result.stdout)["Statement"][0]["Resource"]
    assert resources[-1] == f"arn:aws:dynamodb:*:*:table/{prefix}app-lessons"


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("no_colon_here", "expected package.module:ClassName"),
        ("no_such_module_for_portchops:Lesson", "cannot import no_such_module_for_portchops"),
        (f"{__name__}:Missing", f"{__name__} has no attribute Missing"),
        (f"{__name__}:runner", "is not a BaseModel subclass"),
        (f"{__name__}:CliRunner", "is not a BaseModel subclass"),
        ("portchops_models.models.base:BaseModel", "has no base_table_name"),
    ],
)
def test_a_bad_model_exits_2_with_one_line(prefix: str, reference: str, says: str) -> None:
    result = runner.invoke(
        app, ["iam-policy", "--model", f"{__name__}:Course", "--model", reference]
    )

    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: --model {reference}: ")
    assert says in result.stderr


def test_demo_runs_through_migrations_and_seed() -> None:
    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 0, result.output
    assert "applied 0005" in result.stdout
    assert "seeded 4 users" in result.stdout
    assert "get_by_email('alan@example.com') -> Alan Turing" in result.stdout

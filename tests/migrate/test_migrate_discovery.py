"""A folder's numbering and imports: gaps stop the runner, steps import the app from cwd.

Against moto over HTTP, through the typed verbs and the ``portchops migrate`` command
(typer's runner calls the command functions in this process).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portchops_models.cli import app
from portchops_models.migrate import MigrationError, discover, downgrade, status, upgrade
from portchops_models.migrate.discovery import gaps
from portchops_models.settings import configure
from portchops_models.tables import delete_table, describe_table
from portchops_models.testing.engine import LocalEngine
from tests.migrate.test_migrate import call, logging_steps, quiet, ran, table_names

cli = CliRunner()


@pytest.fixture
def prefix(moto_engine: LocalEngine) -> Iterator[str]:
    """Settings on moto with a fresh table prefix; every table under it is deleted after."""
    name = f"g{uuid.uuid4().hex[:10]}-"
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    yield name
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    for table in table_names(name):
        delete_table(table)


def history_ids(prefix: str) -> list[str]:
    """Every id in the history table (the lock included), or [] when there is no table."""
    if describe_table(f"{prefix}schema-migrations") is None:
        return []
    items = call("Scan", {"TableName": f"{prefix}schema-migrations", "ConsistentRead": True})
    return sorted(item["id"]["S"] for item in items["Items"])


# ----------------------------------------------------------------------------- finding gaps


def test_gaps_are_found_in_the_files(tmp_path: Path) -> None:
    assert gaps(discover()) == []  # the package's own folder: 0001..0005
    assert gaps(discover(logging_steps(tmp_path / "whole", "0001", "0002", "0003"))) == []

    found = gaps(discover(logging_steps(tmp_path / "m", "0001", "0002", "0004", "0007")))
    assert [(g.missing, g.before and g.before.number, g.after.number) for g in found] == [
        (("0003",), "0002", "0004"),
        (("0005", "0006"), "0004", "0007"),
    ]
    first = gaps(discover(logging_steps(tmp_path / "late", "0002")))
    assert [(g.missing, g.before, g.after.number) for g in first] == [(("0001",), None, "0002")]


# ------------------------------------------------------------------------- a gap stops `up`


def test_a_gap_stops_up_before_anything_is_applied_or_recorded(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002", "0004")

    with pytest.raises(MigrationError) as err:
        upgrade(path=folder, console=quiet())

    assert str(err.value) == (
        f"migration m:0003 is missing from {folder}: 0002_step.py is followed by "
        "0004_step.py (a gap in the numbering): add 0003_description.py, or renumber "
        "0004_step.py and the files after it"
    )
    assert ran(folder) == []
    assert history_ids(prefix) == []  # no history table, no lock taken
    assert table_names(prefix) == []
    with pytest.raises(MigrationError, match="migration m:0003 is missing"):
        upgrade("0001", path=folder, console=quiet())  # whatever the target
    with pytest.raises(MigrationError, match="migration m:0003 is missing"):
        upgrade(path=folder, console=quiet(), dry_run=True)
    assert table_names(prefix) == []

    logging_steps(folder, "0003")  # filled: all four run, in order
    assert [r.id for r in upgrade(path=folder, console=quiet())] == [
        "m:0001",
        "m:0002",
        "m:0003",
        "m:0004",
    ]
    assert ran(folder) == ["0001", "0002", "0003", "0004"]


def test_a_missing_first_step_and_a_wider_gap_are_named(prefix: str, tmp_path: Path) -> None:
    late = logging_steps(tmp_path / "late", "0002", "0003")
    with pytest.raises(MigrationError) as err:
        upgrade(path=late, console=quiet())
    assert str(err.value).startswith(
        f"migration late:0001 is missing from {late}: its first file is 0002_step.py "
        "(numbering starts at 0001)"
    )

    wide = logging_steps(tmp_path / "wide", "0001", "0004")
    with pytest.raises(MigrationError, match=r"^migrations wide:0002\.\.wide:0003 are missing"):
        upgrade(path=wide, console=quiet())
    assert ran(late) == ran(wide) == []
    assert history_ids(prefix) == []


def test_the_cli_reports_a_gap_in_one_line_and_exits_1(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002", "0004")

    for args in (["up"], ["up", "--dry-run"], ["up", "--to", "0002"], ["status"]):
        result = cli.invoke(app, ["migrate", *args, "--path", str(folder)])
        assert result.exit_code == 1, (args, result.output)
        errors = result.stderr.splitlines()
        assert len(errors) == 1, (args, errors)
        assert errors[0].startswith("error: migration m:0003 is missing from "), args
        assert "Traceback" not in result.output

    assert ran(folder) == []
    assert history_ids(prefix) == []


def test_status_shows_the_gap_on_the_file_after_it(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002")
    upgrade(path=folder, console=quiet())
    logging_steps(folder, "0004")

    rows = status(path=folder)

    assert [(s.id, s.state) for s in rows] == [
        ("m:0001", "applied"),
        ("m:0002", "applied"),
        ("m:0004", "pending"),
    ]
    assert [s.problem is None for s in rows] == [True, True, False]
    assert (rows[2].problem or "").startswith("migration m:0003 is missing")
    with pytest.raises(MigrationError, match="migration m:0003 is missing"):
        upgrade(path=folder, console=quiet())
    assert ran(folder) == ["0001", "0002"]
    assert history_ids(prefix) == ["m:0001", "m:0002"]


def test_a_gap_stops_down_too(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002")
    upgrade(path=folder, console=quiet())
    logging_steps(folder, "0004")

    with pytest.raises(MigrationError, match="migration m:0003 is missing"):
        downgrade("0000", path=folder, console=quiet())
    result = cli.invoke(app, ["migrate", "down", "--to", "0000", "--path", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: migration m:0003 is missing")

    assert ran(folder) == ["0001", "0002"]  # nothing reverted
    assert history_ids(prefix) == ["m:0001", "m:0002"]


def test_a_gap_below_steps_already_applied_is_let_be(prefix: str, tmp_path: Path) -> None:
    """A history written before gaps were refused: 0001 and 0003 applied, no 0002 ever.

    Refusing now would leave no way forward (renumbering 0003 makes it look pending),
    so the gap below an applied file is accepted; a gap above it is not.
    """
    folder = logging_steps(tmp_path / "m", "0001", "0002", "0003")
    upgrade(path=folder, console=quiet())
    (folder / "0002_step.py").unlink()
    call("DeleteItem", {"TableName": f"{prefix}schema-migrations", "Key": {"id": {"S": "m:0002"}}})
    logging_steps(folder, "0004")

    assert [s.problem for s in status(path=folder)] == [None, None, None]
    assert [r.id for r in upgrade(path=folder, console=quiet())] == ["m:0004"]

    logging_steps(folder, "0006")
    with pytest.raises(MigrationError, match="migration m:0005 is missing"):
        upgrade(path=folder, console=quiet())
    assert ran(folder) == ["0001", "0002", "0003", "0004"]


def test_an_applied_step_whose_file_is_gone_is_named_as_such(prefix: str, tmp_path: Path) -> None:
    """The gap an applied step leaves is the missing-file check's: it says to restore it."""
    folder = logging_steps(tmp_path / "m", "0001", "0002", "0003")
    upgrade(path=folder, console=quiet())
    (folder / "0002_step.py").unlink()

    with pytest.raises(MigrationError, match=r"^migration m:0002 \(Step 0002\.\) is applied but"):
        upgrade(path=folder, console=quiet())


# ------------------------------------------------------ --path: the app's package from cwd


@pytest.fixture
def app_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """An app's root: a package with its models and its migrations folder.

    The current directory is that root, and ``sys.path`` has neither it nor ``""``
    (as for a console script); the package's modules are forgotten afterwards.
    """
    package = f"shopapp_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "app"
    (root / package / "migrations").mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "models.py").write_text(
        "from typing import ClassVar\n\n"
        "from pynamodb.attributes import UnicodeAttribute\n\n"
        "from portchops_models import BaseModel\n\n\n"
        "class Lesson(BaseModel):\n"
        '    base_table_name: ClassVar[str] = "shop-lessons"\n\n'
        '    lesson_id = UnicodeAttribute(hash_key=True, attr_name="lessonId")\n'
    )
    migrations = root / package / "migrations"
    (migrations / "__init__.py").write_text('NAMESPACE = "shop"\n')
    (migrations / "0001_create_lessons.py").write_text(
        '"""Create the shop-lessons table."""\n\n'
        f"from {package}.models import Lesson\n\n\n"
        "def up(ctx):\n    ctx.create_table(Lesson)\n\n\n"
        "def down(ctx):\n    ctx.drop_table(Lesson)\n"
    )
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(root))])
    try:
        yield root, package
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]


def test_up_with_path_imports_the_apps_package_from_the_current_directory(
    prefix: str, app_root: tuple[Path, str]
) -> None:
    root, package = app_root
    relative = f"{package}/migrations"

    up = cli.invoke(app, ["migrate", "up", "--path", relative])

    assert up.exit_code == 0, up.output
    assert "applied shop:0001" in up.stdout
    assert describe_table(f"{prefix}shop-lessons") is not None
    assert sys.modules[f"{package}.models"].__file__ == str(root / package / "models.py")
    shown = cli.invoke(app, ["migrate", "status", "--path", relative])
    assert shown.exit_code == 0, shown.output
    down = cli.invoke(app, ["migrate", "down", "--to", "0000", "--path", relative])
    assert down.exit_code == 0, down.output
    assert "reverted shop:0001" in down.stdout
    assert describe_table(f"{prefix}shop-lessons") is None


def test_from_another_directory_the_import_error_says_where_to_run(
    prefix: str, app_root: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, package = app_root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    up = cli.invoke(app, ["migrate", "up", "--path", str(root / package / "migrations")])

    assert up.exit_code == 1
    [line] = up.stderr.splitlines()
    assert "cannot import migration" in line
    assert f"No module named '{package}'" in line
    assert "run it from the app's root, or install the app" in line
    assert describe_table(f"{prefix}shop-lessons") is None
    assert [i for i in history_ids(prefix) if i != "lock"] == []  # nothing recorded

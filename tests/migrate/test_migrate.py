"""The migration runner against moto over HTTP, one table prefix per test."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import io
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from portchops_models.metrics import Metrics
from portchops_models.migrate import (
    EndpointUnreachable,
    MigrationError,
    NoCredentials,
    default_path,
    discover,
    downgrade,
    namespace_of,
    status,
    upgrade,
)
from portchops_models.migrate.lock import LEASE_SECONDS
from portchops_models.settings import Settings, configure
from portchops_models.tables import delete_table, describe_table
from portchops_models.testing.engine import LocalEngine
from portchops_models.transport.connection import current_connection

ALL = ["0001", "0002", "0003", "0004", "0005"]


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
    return current_connection().call(op, params)


def table_names(prefix: str) -> list[str]:
    names: list[str] = call("ListTables", {})["TableNames"]
    return sorted(n for n in names if n.startswith(prefix))


@pytest.fixture
def prefix(moto_engine: LocalEngine) -> Iterator[str]:
    """Settings on moto with a fresh table prefix; every table under it is deleted after."""
    name = f"m{uuid.uuid4().hex[:10]}-"
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    yield name
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    for table in table_names(name):
        delete_table(table)


def write(folder: Path, name: str, body: str, doc: str = "A step.") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'"""{doc}"""\n\n{body}\n')
    return path


LOGGING = """
from pathlib import Path

def up(ctx):
    with Path(__file__).with_name("ran.log").open("a") as log:
        log.write(ctx.number + "\\n")

def down(ctx):
    with Path(__file__).with_name("ran.log").open("a") as log:
        log.write("-" + ctx.number + "\\n")
"""


def logging_steps(folder: Path, *numbers: str) -> Path:
    for number in numbers:
        write(folder, f"{number}_step.py", LOGGING, doc=f"Step {number}.")
    return folder


def ran(folder: Path) -> list[str]:
    log = folder / "ran.log"
    return log.read_text().split() if log.exists() else []


# --------------------------------------------------------------------------- the real migrations


def test_discovers_the_project_migrations_with_descriptions() -> None:
    found = discover()
    assert [m.number for m in found] == ALL
    assert found[0].path.parent == default_path()
    assert found[3].description == "Add the email-index GSI to the users table."
    assert all(len(m.checksum) == 64 for m in found)


def test_up_from_empty_creates_everything(prefix: str) -> None:
    results = upgrade(console=quiet())

    assert [(r.number, r.action) for r in results] == [(n, "applied") for n in ALL]
    assert table_names(prefix) == [
        f"{prefix}schema-migrations",
        f"{prefix}user-progress",
        f"{prefix}users",
    ]
    users = describe_table(f"{prefix}users")
    progress = describe_table(f"{prefix}user-progress")
    assert users is not None
    assert progress is not None
    assert users["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
    assert progress["KeySchema"] == [
        {"AttributeName": "userId", "KeyType": "HASH"},
        {"AttributeName": "lessonId", "KeyType": "RANGE"},
    ]
    for table in (users, progress):
        assert table["TableStatus"] == "ACTIVE"
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED"
        backups = call("DescribeContinuousBackups", {"TableName": table["TableName"]})
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    assert [(g["IndexName"], g["IndexStatus"]) for g in users["GlobalSecondaryIndexes"]] == [
        ("email-index", "ACTIVE")
    ]
    assert [(g["IndexName"], g["IndexStatus"]) for g in progress["GlobalSecondaryIndexes"]] == [
        ("completed-index", "ACTIVE")
    ]
    ttl = call("DescribeTimeToLive", {"TableName": f"{prefix}user-progress"})
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}

    rows = status()
    assert [(s.number, s.state, s.checksum_ok, s.problem) for s in rows] == [
        (n, "applied", True, None) for n in ALL
    ]
    assert all(s.applied and s.applied_at and s.duration_ms is not None for s in rows)
    assert rows[0].description == "Create the users table (its email-index comes in 0004)."


def test_second_up_does_nothing(prefix: str) -> None:
    upgrade(console=quiet())
    before = status()

    assert upgrade(console=quiet()) == []
    assert status() == before


def test_up_to_a_target_then_the_rest(prefix: str) -> None:
    assert [r.number for r in upgrade("0002", console=quiet())] == ["0001", "0002"]
    assert [s.state for s in status()] == ["applied"] * 2 + ["pending"] * 3
    assert [r.number for r in upgrade("3", console=quiet())] == ["0003"]
    assert [r.number for r in upgrade(console=quiet())] == ["0004", "0005"]


def test_down_to_0002_undoes_what_can_be_undone(prefix: str) -> None:
    upgrade(console=quiet())

    results = downgrade("0002", console=quiet())

    assert [(r.number, r.action) for r in results] == [
        ("0005", "reverted"),
        ("0004", "reverted"),
        ("0003", "reverted"),
    ]
    users = describe_table(f"{prefix}users")
    assert users is not None
    assert not users.get("GlobalSecondaryIndexes")
    ttl = call("DescribeTimeToLive", {"TableName": f"{prefix}user-progress"})
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    assert [s.state for s in status()] == ["applied", "applied", "pending", "pending", "pending"]

    assert [r.number for r in upgrade(console=quiet())] == ["0003", "0004", "0005"]
    users = describe_table(f"{prefix}users")
    assert users is not None
    assert users["GlobalSecondaryIndexes"][0]["IndexName"] == "email-index"

    assert [r.number for r in downgrade("0000", console=quiet())] == ALL[::-1]
    assert table_names(prefix) == [f"{prefix}schema-migrations"]


def test_dry_run_changes_nothing(prefix: str) -> None:
    out = io.StringIO()
    results = upgrade(dry_run=True, console=Console(file=out, width=120))

    assert [(r.number, r.action) for r in results] == [(n, "would apply") for n in ALL]
    assert "would apply 0004 Add the email-index GSI" in out.getvalue()
    assert table_names(prefix) == []  # not even the history table

    upgrade("0002", console=quiet())
    before = status()
    assert [r.number for r in upgrade(dry_run=True, console=quiet())] == ["0003", "0004", "0005"]
    assert [r.number for r in downgrade("0001", dry_run=True, console=quiet())] == ["0002"]
    assert status() == before
    assert table_names(prefix) == [
        f"{prefix}schema-migrations",
        f"{prefix}user-progress",
        f"{prefix}users",
    ]
    ttl = call("DescribeTimeToLive", {"TableName": f"{prefix}user-progress"})
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"


@pytest.mark.parametrize("target", ["0099", "99", "abc", "head"])
def test_unknown_target_names_it(prefix: str, target: str) -> None:
    with pytest.raises(MigrationError, match=f"unknown migration target '{target}'") as err:
        upgrade(target, console=quiet())
    assert "\n" not in str(err.value)
    with pytest.raises(MigrationError, match=f"unknown migration target '{target}'"):
        downgrade(target, console=quiet())
    assert table_names(prefix) == []


def test_table_with_other_keys_is_reported(prefix: str) -> None:
    call(
        "CreateTable",
        {
            "TableName": f"{prefix}users",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )

    with pytest.raises(MigrationError) as err:
        upgrade(console=quiet())

    message = str(err.value)
    assert message.startswith("migration 0001 (Create the users table")
    assert f"table {prefix}users exists with keys (id:S HASH)" in message
    assert "User needs (userId:S HASH)" in message
    first = status()[0]
    assert (first.state, first.applied) == ("failed", False)
    assert first.error is not None
    assert "exists with keys" in first.error


def test_existing_table_with_the_models_keys_is_adopted(prefix: str) -> None:
    from portchops_models.models import User
    from portchops_models.tables import create_table

    create_table(User)  # made before migrations existed, with its index already

    assert [r.number for r in upgrade(console=quiet())] == ALL
    users = describe_table(f"{prefix}users")
    assert users is not None
    assert users["GlobalSecondaryIndexes"][0]["IndexName"] == "email-index"


# --------------------------------------------------------------------------- concurrency and locks


class Signal(io.StringIO):
    """A console file that sets `event` when a runner says it waits for the lock."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def write(self, text: str) -> int:
        if "waiting for the migration lock" in text:
            self.event.set()
        return super().write(text)


# moto's CreateTable is not atomic (check, then a slow Table() with a KMS key, then set):
# two runners creating the history table at once can both succeed, the second replacing the
# first's table and its lock item. DynamoDB's CreateTable is atomic (the loser gets
# ResourceInUseException, which the runner expects), so the races below start from an
# existing history table, as two deploys of an app that is already set up would.


def test_concurrent_upgrades_apply_each_step_once(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0003", "0004")
    gate = "\n\ndef up(ctx):\n    ctx.save_checkpoint('gate', 'x')\n    _up(ctx)\n"
    write(folder, "0002_step.py", LOGGING.replace("def up(", "def _up(") + gate, "Step 0002.")
    upgrade("0001", path=folder, console=quiet())
    contender_waits = threading.Event()

    def hold_until_the_other_waits(number: str, key: str, value: str) -> None:
        """The lock holder's first step blocks until the other runner is waiting for the lock."""
        assert contender_waits.wait(timeout=60)

    start = threading.Barrier(2)
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def runner() -> None:
        start.wait()
        try:
            done = upgrade(
                path=folder,
                console=Console(file=Signal(contender_waits)),
                on_checkpoint=hold_until_the_other_waits,
            )
            results.append([r.number for r in done])
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert contender_waits.is_set()  # the two runs really overlapped
    assert ran(folder) == ["0001", "0002", "0003", "0004"]  # each up() ran exactly once
    assert sorted(results) == [[], ["0002", "0003", "0004"]]
    assert [s.state for s in status(path=folder)] == ["applied"] * 4


def test_concurrent_upgrades_of_the_real_migrations(prefix: str) -> None:
    upgrade("0001", console=quiet())
    start = threading.Barrier(2)
    results: list[list[str]] = []

    def runner() -> None:
        start.wait()
        results.append([r.number for r in upgrade(console=quiet())])

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [[], ALL[1:]]


def lock_item(prefix: str, *, expires_at: float) -> None:
    item = {
        "id": {"S": "lock"},
        "owner": {"S": "elsewhere:42"},
        "expires_at": {"N": str(int(expires_at))},
    }
    call("PutItem", {"TableName": f"{prefix}schema-migrations", "Item": item})


def test_a_held_lock_stops_the_run_with_a_clear_message(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    upgrade("0001", path=folder, console=quiet())
    logging_steps(folder, "0002")
    lock_item(prefix, expires_at=time.time() + 600)

    with pytest.raises(MigrationError, match=r"another migration run \(elsewhere:42\) holds"):
        upgrade(path=folder, console=quiet(), lock_timeout=0)
    assert ran(folder) == ["0001"]


def test_an_expired_lock_is_taken_over(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    upgrade(path=folder, console=quiet())
    logging_steps(folder, "0002")
    lock_item(prefix, expires_at=time.time() - 1)  # its runner died

    assert [r.number for r in upgrade(path=folder, console=quiet(), lock_timeout=0)] == ["0002"]
    item = call(
        "GetItem", {"TableName": f"{prefix}schema-migrations", "Key": {"id": {"S": "lock"}}}
    )
    assert "Item" not in item  # released at the end


def test_a_lock_left_by_a_runner_that_died_at_once_is_taken_over_while_waiting(
    prefix: str, tmp_path: Path
) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    upgrade(path=folder, console=quiet())
    logging_steps(folder, "0002")
    lock_item(prefix, expires_at=time.time() + 2)  # taken, then its runner died

    assert [r.number for r in upgrade(path=folder, console=quiet(), lock_timeout=10)] == ["0002"]


def test_the_lease_leaves_margin_within_the_default_lock_timeout() -> None:
    """A runner that dies right after taking the lock must not outlast the next one's wait."""
    default_timeout = inspect.signature(upgrade).parameters["lock_timeout"].default
    assert default_timeout >= LEASE_SECONDS * 2


# --------------------------------------------------------------------------- broken histories


def test_a_migration_that_does_not_import_is_named(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    write(folder, "0002_broken.py", "import no_such_module_here\n\ndef up(ctx):\n    pass")

    with pytest.raises(MigrationError, match=r"cannot import migration .*0002_broken\.py"):
        upgrade(path=folder, console=quiet())
    assert ran(folder) == []  # every file is imported before anything runs


def test_a_migration_with_a_syntax_error_is_named(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    write(folder, "0002_typo.py", "def up(ctx)\n    pass")

    with pytest.raises(MigrationError, match=r"cannot read migration .*0002_typo\.py.*line 3"):
        status(path=folder)
    assert table_names(prefix) == []


def test_a_badly_named_file_is_reported(tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001")
    write(folder, "2_add_things.py", LOGGING)
    with pytest.raises(MigrationError, match=r"named NNNN_description\.py"):
        discover(folder)


def test_an_edited_applied_file_is_detected(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002")
    upgrade("0001", path=folder, console=quiet())
    (folder / "0001_step.py").write_text((folder / "0001_step.py").read_text() + "\n# edited\n")

    with pytest.raises(MigrationError, match=r"0001_step\.py was edited after it was applied"):
        upgrade(path=folder, console=quiet())
    first = status(path=folder)[0]
    assert (first.checksum_ok, first.applied) == (False, True)
    assert first.problem is not None
    assert "--allow-edited" in first.problem

    assert [r.number for r in upgrade(path=folder, console=quiet(), allow_edited=True)] == ["0002"]


def test_a_file_that_replaces_its_applied_version_is_not_edited(
    prefix: str, tmp_path: Path
) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002")
    upgrade("0001", path=folder, console=quiet())
    step = folder / "0001_step.py"
    old = hashlib.sha256(step.read_bytes()).hexdigest()
    step.write_text(step.read_text() + f"\n\nREPLACES = ({old!r},)  # the same effect\n")

    first = status(path=folder)[0]
    assert (first.checksum_ok, first.problem) == (True, None)
    assert [r.number for r in upgrade(path=folder, console=quiet())] == ["0002"]

    step.write_text(step.read_text().replace(old, "not-a-checksum"))
    with pytest.raises(MigrationError, match="REPLACES is a tuple of sha256 checksums"):
        discover(folder)


def test_an_applied_migration_whose_file_is_gone_is_a_gap(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0002")
    upgrade(path=folder, console=quiet())
    (folder / "0002_step.py").unlink()
    logging_steps(folder, "0003")

    with pytest.raises(MigrationError, match=r"migration m:0002 \(Step 0002.\) is applied but"):
        upgrade(path=folder, console=quiet())
    rows = status(path=folder)
    assert [(s.number, s.state) for s in rows] == [
        ("0001", "applied"),
        ("0002", "missing"),
        ("0003", "pending"),
    ]
    assert ran(folder) == ["0001", "0002"]


def test_a_pending_migration_below_an_applied_one_is_a_gap(prefix: str, tmp_path: Path) -> None:
    # A history that skipped 0002 (written before gaps in the numbering were refused):
    # 0001..0003 applied, then 0002's record taken out.
    folder = logging_steps(tmp_path / "m", "0001", "0002", "0003")
    upgrade(path=folder, console=quiet())
    call("DeleteItem", {"TableName": f"{prefix}schema-migrations", "Key": {"id": {"S": "m:0002"}}})

    with pytest.raises(
        MigrationError, match=r"0002_step\.py is pending but m:0003 is already applied"
    ):
        upgrade(path=folder, console=quiet())
    assert ran(folder) == ["0001", "0002", "0003"]  # nothing ran again


def test_a_failed_step_is_recorded_and_stops_the_run(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0003")
    write(folder, "0002_fails.py", "def up(ctx):\n    raise RuntimeError('disk\\nfull')", "Fails.")

    with pytest.raises(MigrationError) as err:
        upgrade(path=folder, console=quiet())

    assert str(err.value) == "migration m:0002 (Fails.) failed: RuntimeError: disk full"
    assert ran(folder) == ["0001"]
    rows = status(path=folder)
    assert [s.state for s in rows] == ["applied", "failed", "pending"]
    assert rows[1].error == "RuntimeError: disk full"


def test_downgrade_refuses_a_step_without_down(prefix: str, tmp_path: Path) -> None:
    folder = logging_steps(tmp_path / "m", "0001", "0003")
    write(folder, "0002_one_way.py", "def up(ctx):\n    pass", "One way.")
    upgrade(path=folder, console=quiet())

    with pytest.raises(MigrationError, match=r"0002 \(One way.\) cannot be undone"):
        downgrade("0001", path=folder, console=quiet())
    assert ran(folder) == ["0001", "0003"]  # nothing was reverted
    assert [r.number for r in downgrade("0002", path=folder, console=quiet())] == ["0003"]


# --------------------------------------------------------------------------- several folders


def history_ids(prefix: str) -> list[str]:
    items = call("Scan", {"TableName": f"{prefix}schema-migrations", "ConsistentRead": True})
    return sorted(item["id"]["S"] for item in items["Items"])


def test_the_namespace_of_a_folder(tmp_path: Path) -> None:
    assert namespace_of() == namespace_of(default_path()) == ""
    assert [m.id for m in discover()] == ALL  # the package's ids are as they always were

    lessons = logging_steps(tmp_path / "lessons", "0001", "0002")
    assert namespace_of(lessons) == "lessons"
    assert [(m.number, m.namespace, m.id) for m in discover(lessons)] == [
        ("0001", "lessons", "lessons:0001"),
        ("0002", "lessons", "lessons:0002"),
    ]

    declared = logging_steps(tmp_path / "migrations", "0001")
    (declared / "__init__.py").write_text('"""Shop steps."""\n\nNAMESPACE: str = "shop"\n')
    assert namespace_of(declared) == "shop"
    assert [m.id for m in discover(declared)] == ["shop:0001"]  # __init__.py is no step

    (declared / "__init__.py").write_text("NAMESPACE = 'shop' + 'x'\n")
    with pytest.raises(MigrationError, match=r"NAMESPACE must be a string literal"):
        discover(declared)
    (declared / "__init__.py").write_text('NAMESPACE = "a:b"\n')
    with pytest.raises(MigrationError, match=r"migration namespace 'a:b' \(NAMESPACE in "):
        namespace_of(declared)
    with pytest.raises(MigrationError, match=r"namespace 'my app' \(the folder name of"):
        namespace_of(logging_steps(tmp_path / "my app", "0001"))


def test_the_package_and_an_app_folder_are_tracked_apart(prefix: str, tmp_path: Path) -> None:
    app = logging_steps(tmp_path / "lessons", "0001", "0002")
    upgrade(console=quiet())

    results = upgrade(path=app, console=quiet())

    assert [(r.id, r.number, r.action) for r in results] == [
        ("lessons:0001", "0001", "applied"),
        ("lessons:0002", "0002", "applied"),
    ]
    assert ran(app) == ["0001", "0002"]  # ctx.number is the file's number
    assert history_ids(prefix) == [*ALL, "lessons:0001", "lessons:0002"]
    assert upgrade(console=quiet()) == []
    assert upgrade(path=app, console=quiet()) == []

    own = status(path=app)
    assert [(s.id, s.namespace, s.state, s.checksum_ok, s.problem) for s in own] == [
        ("lessons:0001", "lessons", "applied", True, None),
        ("lessons:0002", "lessons", "applied", True, None),
    ]
    package = status()
    assert [(s.id, s.state, s.checksum_ok, s.problem) for s in package] == [
        (n, "applied", True, None) for n in ALL
    ]

    assert [r.id for r in downgrade("0000", path=app, console=quiet())] == [
        "lessons:0002",
        "lessons:0001",
    ]
    assert ran(app) == ["0001", "0002", "-0002", "-0001"]
    assert history_ids(prefix) == ALL
    assert status() == package
    assert [s.state for s in status(path=app)] == ["pending", "pending"]


def test_two_app_folders_keep_their_checkpoints_apart(prefix: str, tmp_path: Path) -> None:
    body = """
from pathlib import Path

def up(ctx):
    seen = ctx.checkpoint("position")
    Path(__file__).with_name("seen.log").write_text(str(seen))
    ctx.save_checkpoint("position", ctx.id)
    raise RuntimeError("stop after the checkpoint")
"""
    first = tmp_path / "first"
    second = tmp_path / "second"
    write(first, "0001_backfill.py", body)
    write(second, "0001_backfill.py", body)

    for folder in (first, second):
        with pytest.raises(MigrationError, match=r"migration \w+:0001 \(A step.\) failed"):
            upgrade(path=folder, console=quiet())

    assert (first / "seen.log").read_text() == (second / "seen.log").read_text() == "None"
    for name in ("first", "second"):
        key = {"id": {"S": f"{name}:0001"}}
        item = call("GetItem", {"TableName": f"{prefix}schema-migrations", "Key": key})["Item"]
        assert item["checkpoint:position"] == {"S": f"{name}:0001"}
        assert item["status"] == {"S": "failed"}
    assert history_ids(prefix) == ["first:0001", "second:0001"]  # the lock is released
    assert all(s.state == "pending" for s in status())  # the package's folder is untouched


def test_missing_files_are_only_reported_within_a_namespace(prefix: str, tmp_path: Path) -> None:
    big = logging_steps(tmp_path / "big", "0001", "0002", "0003")
    small = logging_steps(tmp_path / "small", "0001")
    upgrade(path=big, console=quiet())

    assert [(s.id, s.state, s.problem) for s in status(path=small)] == [
        ("small:0001", "pending", None)
    ]
    assert [r.id for r in upgrade(path=small, console=quiet())] == ["small:0001"]

    (big / "0003_step.py").unlink()
    rows = status(path=big)
    assert [(s.id, s.state) for s in rows] == [
        ("big:0001", "applied"),
        ("big:0002", "applied"),
        ("big:0003", "missing"),
    ]
    assert rows[2].problem is not None
    assert rows[2].problem.startswith("migration big:0003 (Step 0003.) is applied but its file")
    assert "applied from" not in rows[2].problem  # same folder: no hint
    assert all(s.problem is None for s in status(path=small))


def test_one_namespace_in_two_folders_is_reported_when_it_shows(
    prefix: str, tmp_path: Path
) -> None:
    here = logging_steps(tmp_path / "here" / "lessons", "0001")
    there = tmp_path / "there" / "lessons"
    write(there, "0001_other.py", "def up(ctx):\n    pass", "Another step.")
    upgrade(path=here, console=quiet())

    with pytest.raises(MigrationError) as err:
        upgrade(path=there, console=quiet())

    message = str(err.value)
    assert message.startswith("migration 0001_other.py was edited after it was applied")
    assert f"it was applied from {here.resolve()}" in message
    assert "does another folder use namespace 'lessons'?" in message
    assert "\n" not in message


def test_targets_in_an_app_folder(prefix: str, tmp_path: Path) -> None:
    app = logging_steps(tmp_path / "lessons", "0001", "0002", "0003")

    assert [r.id for r in upgrade("lessons:0001", path=app, console=quiet())] == ["lessons:0001"]
    assert [r.id for r in upgrade("2", path=app, console=quiet())] == ["lessons:0002"]
    for target in ("0099", "other:0003", "lessons:"):
        with pytest.raises(MigrationError, match=f"^unknown migration target '{target}'") as err:
            upgrade(target, path=app, console=quiet())
        assert "(lessons:0001..lessons:0003)" in str(err.value)
    with pytest.raises(MigrationError) as err:
        downgrade("0099", path=app, console=quiet())
    assert str(err.value) == (
        "unknown migration target '0099': no migration lessons:0099 (lessons:0001..lessons:0003)"
    )
    assert [r.id for r in downgrade("lessons:0001", path=app, console=quiet())] == ["lessons:0002"]


# --------------------------------------------------------------------------- connection problems


def test_an_unreachable_endpoint_is_a_clear_error(moto_engine: LocalEngine) -> None:
    configure(endpoint_url="http://127.0.0.1:9", retry_max_attempts=1, connect_timeout=0.5)
    with pytest.raises(
        EndpointUnreachable, match=re.escape("cannot reach DynamoDB at http://127.0.0.1:9")
    ):
        status()


def test_missing_credentials_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    configure(Settings(endpoint_url=None, retry_max_attempts=1))

    with pytest.raises(NoCredentials, match="set PORTCHOPS_ENDPOINT_URL for a local engine"):
        upgrade(dry_run=True, console=quiet())


# --------------------------------------------------------------------------- the ttl backfill


def load_backfill() -> Any:
    path = default_path() / "0005_backfill_progress_ttl.py"
    spec = importlib.util.spec_from_file_location("backfill_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered like `portchops migrate` registers it: pydantic resolves a
    # generic model built at import time (Projection[UserProgress]) by module name
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def put_rows(prefix: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 25):
        requests = [{"PutRequest": {"Item": row}} for row in rows[start : start + 25]]
        call("BatchWriteItem", {"RequestItems": {f"{prefix}user-progress": requests}})


def scan_all(table: str) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    params: dict[str, Any] = {"TableName": table}
    while True:
        page = call("Scan", params)
        for item in page["Items"]:
            found[(item["userId"]["S"], item["lessonId"]["S"])] = item
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def updates(metrics: Metrics) -> tuple[int, int]:
    """(row writes sent, of which written) as counted by the metrics: 0005 sends each
    row's UpdateItem fenced, in a TransactWriteItems with the lease check."""
    stats = metrics.snapshot()["operations"].get("TransactWriteItems")
    if stats is None:
        return 0, 0
    return stats["requests"], stats["requests"] - stats["errors"]


def test_backfill_interrupted_half_way_resumes_without_loss_or_rework(prefix: str) -> None:
    backfill = load_backfill()
    upgrade("0004", console=quiet())
    base = datetime(2030, 1, 1, tzinfo=UTC)
    legacy = [  # written before TTL existed: no ttl
        {
            "userId": {"S": f"u-{i:04d}"},
            "lessonId": {"S": "lesson-001"},
            "updatedAt": {"S": (base + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        }
        for i in range(360)
    ]
    no_date = [{"userId": {"S": f"n-{i:02d}"}, "lessonId": {"S": "lesson-001"}} for i in range(40)]
    current = [
        {"userId": {"S": f"c-{i:02d}"}, "lessonId": {"S": "lesson-001"}, "ttl": {"N": "1999999999"}}
        for i in range(20)
    ]
    put_rows(prefix, legacy + no_date + current)
    candidates = len(legacy) + len(no_date)
    pages = (len(legacy) + len(no_date) + len(current)) // backfill.PAGE_SIZE

    saved: list[str] = []
    fired = threading.Event()

    def interrupt(number: str, key: str, value: str) -> None:
        """Kill one segment half way: after writing a page, before its checkpoint."""
        if len(saved) >= pages // 4 and not fired.is_set():  # the others finish a page each
            fired.set()
            raise RuntimeError("killed half way")
        saved.append(key)

    first = Metrics()
    started = time.time()
    with pytest.raises(MigrationError, match=r"migration 0005 .* failed: RuntimeError: killed"):
        upgrade(console=quiet(), metrics=first, on_checkpoint=interrupt)
    rows = scan_all(f"{prefix}user-progress")
    done_first = sum(1 for key, item in rows.items() if "ttl" in item and key[0][0] != "c")
    assert 0 < done_first < candidates  # really stopped part way
    assert status()[-1].state == "failed"

    second = Metrics()
    assert [r.number for r in upgrade(console=quiet(), metrics=second)] == ["0005"]
    finished = time.time()

    hours = Settings().progress_ttl_hours * 3600
    rows = scan_all(f"{prefix}user-progress")
    assert len(rows) == candidates + len(current)
    for i in range(len(legacy)):
        expected = (base + timedelta(minutes=i)).timestamp() + hours
        assert rows[(f"u-{i:04d}", "lesson-001")]["ttl"] == {"N": str(int(expected))}
    for i in range(len(no_date)):
        ttl = int(rows[(f"n-{i:02d}", "lesson-001")]["ttl"]["N"])
        assert int(started - 3600) <= ttl - hours <= finished
    for i in range(len(current)):
        assert rows[(f"c-{i:02d}", "lesson-001")]["ttl"] == {"N": "1999999999"}

    sent_1, written_1 = updates(first)
    sent_2, written_2 = updates(second)
    assert written_1 + written_2 == candidates  # every row written exactly once
    assert sent_1 + sent_2 <= candidates + backfill.PAGE_SIZE  # at most one page redone
    assert status()[-1].state == "applied"
    history = call(
        "GetItem", {"TableName": f"{prefix}schema-migrations", "Key": {"id": {"S": "0005"}}}
    )["Item"]
    assert not [name for name in history if name.startswith("checkpoint:")]  # cleaned up

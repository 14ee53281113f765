"""The converging backfill, run through a migration folder: zero version-1 items left
(counted by `version_counts`) while threads keep updating a counter on the same rows,
and no update is lost; `portchops migrate status --model` prints the counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portchops_models import InvalidRequest, TableNotFound, User
from portchops_models.cli import app
from portchops_models.migrate import converging_backfill, status, upgrade, version_counts
from portchops_models.models.versions import STAMP
from portchops_models.settings import Settings
from portchops_models.tables import create_table, delete_table
from portchops_models.transport.connection import current_connection
from tests.person_model import Account, Person, PersonRepository

pytestmark = pytest.mark.timeout(300)

MIGRATION = '''"""People at version 2: full_name split, mail renamed."""

from portchops_models.migrate import converging_backfill
from tests.person_model import Person

BACKFILL = converging_backfill(Person, segments=4, page_size=25, threads=2, lease_seconds=10)


def up(ctx):
    BACKFILL.run(ctx)
'''


@pytest.fixture
def people(tables: Settings) -> Iterator[Settings]:
    """A fresh `Person` table; the history table the run creates is deleted after."""
    create_table(Person)
    yield tables
    delete_table(Person.table_name())
    delete_table(tables.table_name("schema-migrations"))


def seed_v1(rows: int) -> None:
    conn = current_connection()
    for start in range(0, rows, 25):
        puts = [
            {
                "PutRequest": {
                    "Item": {
                        "team": {"S": f"t{n % 7}"},
                        "personId": {"S": f"p{n:05d}"},
                        "full_name": {"S": f"Ada{n} Lovelace"},
                        "mail": {"S": f"p{n}@example.com"},
                    }
                }
            }
            for n in range(start, min(start + 25, rows))
        ]
        conn.call("BatchWriteItem", {"RequestItems": {Person.table_name(): puts}})


def test_the_converging_backfill_leaves_no_older_item_and_loses_no_update(
    people: Settings, tmp_path: Path
) -> None:
    rows, hot = 600, 20
    seed_v1(rows)
    before = version_counts(Person)
    assert (before.counts, before.counted, before.scanned, before.older) == (
        {1: rows},
        True,
        rows,
        rows,
    )
    sample = version_counts(Person, sample=100)
    assert sample.counted is False
    assert sum(sample.counts.values()) >= 100

    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "0001_people_v2.py").write_text(MIGRATION)
    hot_keys = [(f"t{n % 7}", f"p{n:05d}") for n in range(0, rows, rows // hot)]
    done = threading.Event()
    updates = [0] * 4
    errors: list[BaseException] = []

    def bump(slot: int) -> None:
        repo = PersonRepository(cache=None)
        try:
            while not done.is_set() or updates[slot] < 30:
                repo.update(hot_keys[updates[slot] % len(hot_keys)], [Person.visits.add(1)])
                updates[slot] += 1
        except BaseException as err:  # reported below
            errors.append(err)

    writers = [threading.Thread(target=bump, args=(slot,)) for slot in range(len(updates))]
    for writer in writers:
        writer.start()
    try:
        results = upgrade(path=folder)
    finally:
        done.set()
        for writer in writers:
            writer.join()
    assert errors == []
    assert [r.number for r in results] == ["0001"]
    assert [s.state for s in status(path=folder)] == ["applied"]

    after = version_counts(Person)
    assert after.counts == {2: rows}
    assert after.older == 0
    assert after.counted
    repo = PersonRepository(cache=None)
    people_read = list(repo.scan())
    assert len(people_read) == rows
    visits = {(p.team, p.person_id): p.visits for p in people_read}
    assert sum(visits.values()) == sum(updates)  # every update counted, none lost
    for n, person in enumerate(sorted(people_read, key=lambda p: p.person_id)):
        assert (person.first_name, person.last_name) == (f"Ada{n}", "Lovelace")
        assert person.email == f"p{n}@example.com"
    raw = current_connection().call("Scan", {"TableName": Person.table_name()})["Items"]
    assert all(item[STAMP] == {"N": "2"} and "full_name" not in item for item in raw)


def test_a_row_written_meanwhile_is_skipped_by_the_backfill(people: Settings) -> None:
    """The rewrite is conditional on the row as read: a newer write wins."""
    from portchops_models.migrate.backfills.worker import Batch

    seed_v1(1)
    backfill = converging_backfill(Person)
    (item,) = current_connection().call("Scan", {"TableName": Person.table_name()})["Items"]
    PersonRepository(cache=None).update(("t0", "p00000"), [Person.visits.add(3)])

    def send(operation: str, params: dict[str, object]) -> dict[str, object]:
        return current_connection().send(operation, params, table=Person.table_name())

    batch = Batch(table=Person.table_name(), segment=0, items=[item], _send=send)
    assert backfill.per_item is not None
    assert backfill.per_item(batch, item) == 0  # stale read: skipped
    fresh = current_connection().call("Scan", {"TableName": Person.table_name()})["Items"]
    assert fresh[0]["visits"] == {"N": "3"}
    assert backfill.per_item(batch, fresh[0]) == 0  # current already: nothing to do


def test_migrate_status_prints_the_version_counts(people: Settings, tmp_path: Path) -> None:
    seed_v1(30)
    PersonRepository(cache=None).update(("t0", "p00000"), [Person.visits.add(1)])
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "0001_people_v2.py").write_text(MIGRATION)
    env = {
        "PORTCHOPS_ENDPOINT_URL": str(people.endpoint_url),
        "PORTCHOPS_TABLE_PREFIX": people.table_prefix,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(
        app,
        ["migrate", "status", "--path", str(folder), "--model", "tests.person_model:Person"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Person" in result.output
    assert "v1: 29" in result.output
    assert "v2: 1" in result.output
    assert "counted" in result.output
    sampled = CliRunner().invoke(
        app,
        [
            "migrate",
            "status",
            "--path",
            str(folder),
            "--model",
            "tests.person_model:Person",
            "--sample",
            "10",
        ],
        env=env,
    )
    assert sampled.exit_code == 0, sampled.output
    assert "sampled" in sampled.output
    bad = CliRunner().invoke(
        app,
        ["migrate", "status", "--path", str(folder), "--model", "tests.person_model:Nope"],
        env=env,
    )
    assert bad.exit_code != 0
    assert "Nope" in bad.output


def test_models_without_versions_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="no schema_version"):
        version_counts(User)
    with pytest.raises(InvalidRequest, match="nothing to converge"):
        converging_backfill(User)
    with pytest.raises(InvalidRequest, match="sets per_item itself"):
        converging_backfill(Person, per_item=lambda batch, item: 0)
    with pytest.raises(InvalidRequest, match="sample"):
        version_counts(Account, sample=0)


def test_counting_a_missing_table_is_table_not_found(tables: Settings) -> None:
    with pytest.raises(TableNotFound):
        version_counts(Person)

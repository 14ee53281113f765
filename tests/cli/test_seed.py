"""`seed`: deterministic demo data, idempotent, through the repositories."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from rich.console import Console

from portchops_models.cli.seed import demo_users, seed
from portchops_models.errors import InvalidRequest, TableNotFound
from portchops_models.metrics import Metrics
from portchops_models.repositories import PASSING_SCORE, UserProgressRepository, UserRepository
from portchops_models.settings import Settings
from portchops_models.transport.connection import current_connection


def quiet() -> Console:
    return Console(file=io.StringIO())


def scan(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = current_connection().call("Scan", params)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: (i["userId"]["S"], i.get("lessonId", {}).get("S")))
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def snapshot(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return scan(settings.table_name("users")), scan(settings.table_name("user-progress"))


def test_seed_twice_leaves_identical_data(tables: Settings) -> None:
    first = seed(30, lessons=4, console=quiet())
    before = snapshot(tables)

    metrics = Metrics()
    second = seed(30, lessons=4, console=quiet(), metrics=metrics)

    assert snapshot(tables) == before  # same items, same values, timestamps included
    assert (first.users, first.progress_rows) == (second.users, second.progress_rows) == (30, 120)
    assert (first.users_created, first.progress_created) == (30, 120)
    assert (second.users_created, second.progress_created) == (0, 0)
    assert "BatchWriteItem" not in metrics.snapshot()["operations"]  # nothing rewritten
    assert len(before[0]) == 30
    assert len(before[1]) == 120


def test_seed_data_is_deterministic_and_valid(tables: Settings) -> None:
    seed(14, lessons=3, console=quiet())
    users = UserRepository(cache=None)
    progress = UserProgressRepository(cache=None)

    ada = users.get("u-0001")
    assert (ada.name, ada.email, ada.created_at.isoformat()) == (
        "Ada Lovelace",
        "ada@example.com",
        "2024-01-02T00:00:00+00:00",
    )
    assert users.get("u-0013").email == "ada2@example.com"  # past the name list
    assert users.get_by_email("alan@example.com") is not None
    rows = list(progress.iter_query("u-0002"))
    assert [r.lesson_id for r in rows] == ["lesson-001", "lesson-002", "lesson-003"]
    now = time.time()
    for row in rows:
        assert row.ttl is not None
        assert row.ttl.timestamp() > now
        assert row.score == (37 * 2 + 11 * int(row.lesson_id[-3:])) % 101
        assert (row.status == "completed") == (row.score >= PASSING_SCORE)
        assert (row.completed_at is not None) == (row.status == "completed")
    done = {r.lesson_id for r in rows if r.status == "completed"}
    assert {r.lesson_id for r in progress.completed("u-0002").items} == done
    assert [u.user_id for u in demo_users(3)] == ["u-0001", "u-0002", "u-0003"]


def test_seed_fills_in_what_is_missing_only(tables: Settings) -> None:
    seed(5, lessons=2, console=quiet())
    users = UserRepository(cache=None)
    users.delete("u-0003")
    renamed = users.get("u-0001")
    renamed.name = "Countess Lovelace"
    users.save(renamed)

    result = seed(5, lessons=2, console=quiet())

    assert (result.users_created, result.progress_created) == (1, 0)
    assert users.get("u-0003").name == "Grace Hopper"
    assert users.get("u-0001").name == "Countess Lovelace"  # never overwritten


def test_seed_without_tables_says_how_to_create_them(moto_engine: Any) -> None:
    from portchops_models.settings import configure

    configure(endpoint_url=moto_engine.endpoint_url, table_prefix="no-such-tables-")
    with pytest.raises(TableNotFound, match="portchops migrate up"):
        seed(2, console=quiet())


@pytest.mark.parametrize(("users", "lessons"), [(-1, 1), (10_000, 1), (1, -1), (1, 1000)])
def test_seed_rejects_out_of_range_counts(users: int, lessons: int) -> None:
    with pytest.raises(InvalidRequest):
        seed(users, lessons=lessons, console=quiet())

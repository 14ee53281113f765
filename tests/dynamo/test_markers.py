"""Exactly-once at a bounded cost: the markers an item carries stay few, whatever its rate.

Each test reads the item raw (markers included) from the engine after the writes.
The lost-answer tests run on moto and dynalite through the fault proxy, as in
tests/test_exactly_once.py, here through the models' own methods.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from portchops_models import User, UserProgress, UserProgressRepository, UserRepository, configure
from portchops_models.dynamo.idempotency import is_marker
from portchops_models.dynamo.limits import item_size
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry


def _raw_progress(user_id: str, lesson_id: str) -> dict[str, Any]:
    table = current_connection().settings.table_name(UserProgress.base_table_name)
    key = {"userId": {"S": user_id}, "lessonId": {"S": lesson_id}}
    params = {"TableName": table, "Key": key, "ConsistentRead": True}
    item: dict[str, Any] = current_connection().call("GetItem", params)["Item"]
    return item


def _markers(raw: dict[str, Any]) -> list[str]:
    return [name for name in raw if is_marker(name)]


def test_300_updates_through_3_repositories_leave_at_most_4_markers(tables: Settings) -> None:
    repos = [UserProgressRepository(cache=None) for _ in range(3)]
    repos[0].update("u1", "l1", add_attempts=1)
    first = item_size(_raw_progress("u1", "l1"))
    for n in range(299):
        repos[n % 3].update("u1", "l1", add_attempts=1)
    raw = _raw_progress("u1", "l1")
    assert raw["attempts"] == {"N": "300"}
    assert len(_markers(raw)) <= 4
    assert item_size(raw) <= first + 400


def test_200_record_attempts_leave_at_most_2_markers(tables: Settings) -> None:
    progress = UserProgressRepository(cache=None)
    for n in range(200):
        progress.record_attempt("u1", "l1", 40 + n % 50)
    raw = _raw_progress("u1", "l1")
    assert raw["attempts"] == {"N": "200"}
    assert len(_markers(raw)) <= 2


def test_concurrent_updates_take_one_slot_each_and_count_once(tables: Settings) -> None:
    progress = UserProgressRepository(cache=None)
    start = threading.Barrier(8)

    def attempts() -> None:
        start.wait()
        for _ in range(25):
            progress.record_attempt("u1", "l1", 50)

    threads = [threading.Thread(target=attempts) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    raw = _raw_progress("u1", "l1")
    assert raw["attempts"] == {"N": "200"}
    assert len(_markers(raw)) <= 8  # at most one per call in flight at once


def test_markers_of_calls_long_ended_elsewhere_are_pruned(tables: Settings) -> None:
    """Markers another process (or an earlier version) left, older than a call can last,
    go with the next updates; a recent foreign one stays (its call may still retry)."""
    progress = UserProgressRepository(cache=None)
    progress.update("u1", "l1", add_attempts=1)
    table = current_connection().settings.table_name(UserProgress.base_table_name)
    old = int(time.time()) - 3600
    current_connection().call(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {"userId": {"S": "u1"}, "lessonId": {"S": "l1"}},
            "UpdateExpression": "SET #a = :a, #b = :b, #c = :c",
            "ExpressionAttributeNames": {
                "#a": "_pcw_oldformat",
                "#b": "_pcw_gone_0",
                "#c": "_pcw_recent_0",
            },
            "ExpressionAttributeValues": {
                ":a": {"N": str(old)},
                ":b": {"S": f"{old}:xyz"},
                ":c": {"S": f"{int(time.time())}:abc"},
            },
        },
    )
    progress.update("u1", "l1", add_attempts=1)  # sees them
    progress.update("u1", "l1", add_attempts=1)  # removes the stale ones
    markers = _markers(_raw_progress("u1", "l1"))
    assert "_pcw_oldformat" not in markers
    assert "_pcw_gone_0" not in markers
    assert "_pcw_recent_0" in markers
    assert len(markers) == 2


# ---------------------------------------------------------------------- the models' own methods


@pytest.fixture
def lossy(any_tables: Settings, engine_url: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of each engine in turn; settings point at it."""
    with FaultProxy(upstream=engine_url, seed=23) as running:
        configure(any_tables, endpoint_url=running.endpoint_url, retry_base_delay=0.001)
        yield running


def test_the_models_own_update_counts_once_under_lost_answers(lossy: FaultProxy) -> None:
    row = UserProgressRepository(cache=None, retry=fast_retry()).save(
        UserProgress(user_id="u1", lesson_id="l1")
    )
    lossy.faults = Faults(lost_answer=0.15, operations=frozenset({"UpdateItem"}))
    for _ in range(200):
        row.update([UserProgress.attempts.add(1)])
    lossy.faults = Faults()
    assert lossy.stats.lost_answers > 0  # the hazard happened
    assert row.attempts == 200  # refreshed from the item as stored
    assert _raw_progress("u1", "l1")["attempts"] == {"N": "200"}
    assert len(_markers(_raw_progress("u1", "l1"))) <= 2


def test_the_models_own_saves_never_report_their_own_write(lossy: FaultProxy) -> None:
    lossy.faults = Faults(lost_answer=0.15, operations=frozenset({"PutItem", "UpdateItem"}))
    users = [User(user_id=f"u{i}", email=f"{i}@x.io", name="A") for i in range(200)]
    for user in users:
        user.save()  # no error for a write that landed
    for user in users[:60]:
        user.name = "B"
        user.save()  # versioned: no conflict with its own landed write
        user.update([User.name.set("C")])
    lossy.faults = Faults()
    assert lossy.stats.lost_answers > 0
    stored = UserRepository(cache=None).batch_get([f"u{i}" for i in range(200)])
    assert len(stored) == 200
    assert [(u.version, u.name) for u in stored[:60]] == [(3, "C")] * 60
    assert [(u.version, u.name) for u in stored[60:]] == [(1, "A")] * 140
    assert [u.version for u in users[:60]] == [3] * 60


def test_the_models_own_batch_write_stores_each_item_once(lossy: FaultProxy) -> None:
    lossy.faults = Faults(lost_answer=0.2, operations=frozenset({"BatchWriteItem"}))
    with UserProgress.batch_write() as batch:
        for n in range(120):
            batch.save(UserProgress(user_id="b", lesson_id=f"l{n:03d}", attempts=n))
    lossy.faults = Faults()
    rows = UserProgressRepository(cache=None).query("b", consistent=True, limit=500).items
    assert [r.attempts for r in rows] == list(range(120))

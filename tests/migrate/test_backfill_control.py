"""Backfills that cannot be half-recorded, fenced row writes, operator controls.

Real worker processes (``portchops migrate up`` / ``migrate work``) on one moto server;
the tests wait on what they can observe (segment items, marker files the test
migration writes, its page and write ledgers), never on sleeps.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portchops_models.cli import app
from portchops_models.errors import ConditionFailed
from portchops_models.migrate import MigrationError, control, status, upgrade
from portchops_models.migrate.backfills.backfill import Backfill
from portchops_models.migrate.backfills.lease import LeaseLost, LeaseTable, Observed
from portchops_models.migrate.backfills.worker import Batch, Plan, Worker
from portchops_models.models import UserProgress
from portchops_models.models.shape import RawItem
from portchops_models.retry import RetryPolicy
from portchops_models.settings import Settings
from portchops_models.tables import delete_table
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.backfill_kit import (
    Workers,
    counters,
    history_ids,
    lease_pid,
    ledger,
    owner_pid,
    pages,
    seed,
    segment_items,
    wait_for,
    write_migration,
)


def ok(result: tuple[int, str]) -> str:
    """The output of a process that exited 0, its lines joined (rich wraps them)."""
    code, out = result
    assert code == 0, out
    return " ".join(out.split())


# ---------------------------------------------------------------- fencing the row writes


def test_a_worker_paused_past_its_lease_writes_no_row_after_the_takeover(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 400)
    folder = write_migration(
        tmp_path / "bf", mode="fenced", segments=2, page_size=20, lease=2.0, delay=0.02
    )
    with Workers(history, folder) as workers:
        victim = workers.work()
        workers.up()
        workers.holding(victim)
        (folder / f"stop-{victim.pid}").touch()  # it stops itself right before a row write
        wait_for(lambda: (folder / f"stopped-{victim.pid}").exists())
        stopped = {i["id"]["S"]: i for i in segment_items(history)}
        (segment, item), *_ = [
            (k, i) for k, i in stopped.items() if owner_pid(i) == victim.pid and "state" not in i
        ]
        stale = (int(item["segment"]["N"]), int(item["fence"]["N"]))  # the lease it stopped in

        def taken_over() -> bool:
            now = {i["id"]["S"]: i for i in segment_items(history)}.get(segment)
            return now is not None and int(now["fence"]["N"]) > stale[1]

        wait_for(taken_over)
        resumed_at = time.time()
        os.kill(victim.pid, signal.SIGCONT)  # resumes inside the row function, mid-page
        results = workers.finish()
    out = ok(results[0])
    # it stopped on its own (its clock said the lease may have run out), or its write
    # was refused by the fence (a renewal that was in flight when it stopped)
    assert "may have run out by this process's clock" in out or "lost the lease" in out
    ok(results[1])
    late = [
        w for w in ledger(folder) if (w.segment, w.fence) == stale and w.t > resumed_at
    ]  # (a new lease it may claim later, once the taker's lease lapses, is its own)
    assert late == []  # not one row write sent under the lost lease after the takeover
    counts = counters(history)
    assert len(counts) == 400
    assert min(counts.values()) >= 1
    assert [s.state for s in status(path=folder)] == ["applied"]


def test_a_fenced_write_is_refused_once_the_lease_was_taken_over(history: Settings) -> None:
    conn = current_connection()
    leases = LeaseTable(conn)
    leases.ensure()
    leases.create("9999/f", "9999/f@run", 1, {})
    old = leases.claim(
        "9999/f@run", leases.segments("9999/f@run", 1)[0], owner="old", lease_seconds=1
    )
    assert old is not None
    table = history.table_name("user-progress")
    key = {"userId": {"S": "f-1"}, "lessonId": {"S": "l"}}
    batch = Batch(table, 0, [], lambda op, params: conn.send(op, params), lease=old)
    add = {
        "Key": key,
        "UpdateExpression": "ADD #n :one",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    batch.fenced("Update", add)  # ours: applied
    with pytest.raises(ConditionFailed):  # the write's own condition, told apart
        batch.fenced("Update", {**add, "ConditionExpression": "attribute_not_exists(#n)"})

    observer, now = Observed(clock=lambda: now), 0.0
    assert not observer.expired(leases.segments("9999/f@run", 1)[0], 1.0)
    now = 1.0
    seen = leases.segments("9999/f@run", 1)[0]
    assert observer.expired(seen, 1.0)
    assert leases.claim("9999/f@run", seen, owner="new", lease_seconds=1) is not None
    # the old holder's clock has not reached its deadline (it sent its check in time):
    # the transaction's lease check still refuses the write
    assert old.alive()
    with pytest.raises(LeaseLost, match="write held back"):
        batch.fenced("Update", add)
    item = conn.call("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    assert item["Item"]["n"] == {"N": "1"}
    with pytest.raises(LeaseLost):
        batch.call("GetItem", {"TableName": table, "Key": key})  # nothing more is sent


# ---------------------------------------------------------------- applied only when up returns


def test_a_step_with_two_backfills_and_code_after_them_applies_once(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 300)
    folder = write_migration(tmp_path / "bf", mode="once", segments=2, page_size=50, second=True)
    (folder / "fail-after").touch()
    with pytest.raises(MigrationError, match="the code after the backfills failed"):
        upgrade(path=folder)
    assert [s.state for s in status(path=folder)] == ["failed"]
    first = len(pages(folder))
    assert {page.attr for page in pages(folder)} == {"n", "m"}  # both ran to the end

    (folder / "fail-after").unlink()
    results = upgrade(path=folder)
    assert [r.action for r in results] == ["applied"]
    assert len(pages(folder)) == first  # resumed: both plans were done, no row read again
    assert set(counters(history, "n").values()) == {1}
    assert set(counters(history, "m").values()) == {1}
    assert history_ids(history) == ["bf:0001"]  # recorded once; the plans are dropped


def test_a_runner_killed_in_its_second_backfill_resumes_each_where_it_stopped(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, second=True, delay=0.02, lease=2.0
    )
    with Workers(history, folder) as workers:
        runner = workers.up()
        wait_for(lambda: sum(page.attr == "m" for page in pages(folder)) >= 5)
        assert [s.state for s in status(path=folder)] == ["running"]
        os.kill(runner.pid, signal.SIGKILL)
        workers.finish()
    before = pages(folder)
    first_pages = sum(page.attr == "n" for page in before)  # the same cut for both
    second_before = sum(page.attr == "m" for page in before)
    again = upgrade(path=folder)
    assert [r.action for r in again] == ["applied"]
    resumed = pages(folder)[len(before) :]
    assert {page.attr for page in resumed} == {"m"}  # the first backfill was not redone
    # the second went on from its checkpoints: only the page in flight was read again
    assert len(resumed) <= first_pages - second_before + 1
    assert set(counters(history, "n").values()) == {1}
    assert set(counters(history, "m").values()) == {1}
    assert history_ids(history) == ["bf:0001"]


def test_down_while_a_backfill_runs_cancels_it_for_good(history: Settings, tmp_path: Path) -> None:
    seed(history, 1200)
    folder = write_migration(
        tmp_path / "bf", mode="count", segments=2, page_size=20, lease=2.0, delay=0.5
    )
    (folder / "0001_count_rows.py").write_text(
        (folder / "0001_count_rows.py").read_text() + "\n\ndef down(ctx):\n    pass\n"
    )
    with Workers(history, folder) as workers:
        runner = workers.up()
        worker = workers.work()
        workers.holding(worker)
        os.kill(runner.pid, signal.SIGKILL)  # the runner dies; its worker goes on
        out = CliRunner().invoke(app, ["migrate", "down", "--to", "0000", "--path", str(folder)])
        assert out.exit_code == 0, out.output
        assert "cancelled backfill bf:0001/count" in out.output
        down_returned = time.time()
        results = workers.finish()
    assert "was cancelled" in ok(results[1])  # the worker stopped and said why
    assert [w for w in ledger(folder) if w.t > down_returned] == []  # nothing sent after
    assert [s.state for s in status(path=folder)] == ["pending"]  # unapplied, for good
    assert history_ids(history) == []


# ---------------------------------------------------------------- operator controls


def test_pause_holds_every_worker_and_resume_goes_on_from_the_checkpoints(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, lease=2.0, delay=0.03
    )
    with Workers(history, folder) as workers:
        runner = workers.up()
        worker = workers.work()
        workers.holding(worker)
        assert control("bf:0001", "pause", path=folder) == ["bf:0001/count"]
        wait_for(lambda: all(lease_pid(i) is None for i in segment_items(history)))
        handed = len(pages(folder))
        time.sleep(1.0)  # a window to observe: no page is handed out while paused
        assert len(pages(folder)) == handed
        assert runner.poll() is None
        assert worker.poll() is None
        assert control("bf:0001", "resume", path=folder) == ["bf:0001/count"]
        results = workers.finish()
    ok(results[0])
    ok(results[1])
    assert len(pages(folder)) > handed
    assert set(counters(history).values()) == {1}
    assert [s.state for s in status(path=folder)] == ["applied"]


def test_cancel_stops_every_worker_and_a_rerun_starts_over(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, lease=2.0, delay=0.03
    )
    with Workers(history, folder) as workers:
        workers.up()
        worker = workers.work()
        workers.holding(worker)
        out = CliRunner().invoke(app, ["migrate", "cancel", "0001", "--path", str(folder)])
        assert out.exit_code == 0, out.output
        cancelled_at = time.time()
        results = workers.finish()
    assert results[0][0] != 0
    assert "was cancelled" in " ".join(results[0][1].split())
    assert "was cancelled" in ok(results[1])
    assert [w for w in ledger(folder) if w.t > cancelled_at] == []
    assert [s.state for s in status(path=folder)] == ["failed"]
    assert [r.action for r in upgrade(path=folder)] == ["applied"]  # a new plan
    assert set(counters(history).values()) == {1}


def test_control_names_a_bad_step_and_says_when_nothing_runs(
    history: Settings, tmp_path: Path
) -> None:
    folder = write_migration(tmp_path / "bf", mode="log", segments=1, page_size=10)
    with pytest.raises(MigrationError, match="not a step id"):
        control("five", "pause", path=folder)
    out = CliRunner().invoke(app, ["migrate", "pause", "0001", "--path", str(folder)])
    assert out.exit_code == 0, out.output
    assert "no backfill of bf:0001 is running: nothing to pause" in out.output
    upgrade(path=folder)
    out = CliRunner().invoke(app, ["migrate", "resume", "0001", "--path", str(folder)])
    assert "no backfill of bf:0001 is running" in out.output


def test_a_dry_run_calls_the_function_on_every_row_and_writes_none(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 250)
    folder = write_migration(tmp_path / "bf", mode="count", segments=2, page_size=50)
    delete_table(history.table_name("schema-migrations"), conn=current_connection())
    out = CliRunner().invoke(app, ["migrate", "up", "--dry-run", "--path", str(folder)])
    assert out.exit_code == 0, out.output
    assert "would apply bf:0001" in out.output
    assert sum(page.n for page in pages(folder)) == 250
    chunks = sum(-(-page.n // 25) for page in pages(folder))  # one BatchWriteItem per 25
    assert f"250 row(s) scanned, {chunks} write(s) held back" in out.output
    assert set(counters(history).values()) == {0}  # not one row written
    assert history_ids(history) == []  # no record, no plan left
    assert [s.state for s in status(path=folder)] == ["pending"]


def test_sigterm_makes_up_hand_its_segments_back(history: Settings, tmp_path: Path) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, lease=60.0, delay=0.05, threads=2
    )
    with Workers(history, folder) as workers:
        runner = workers.up()
        workers.holding(runner)
        os.kill(runner.pid, signal.SIGTERM)  # a deploy job being stopped
        wait_for(
            lambda: all(lease_pid(i) != runner.pid for i in segment_items(history)), timeout=20
        )  # well before its 60 s leases would run out
        results = workers.finish()
    assert results[0][0] != 0
    assert [s.state for s in status(path=folder)] == ["running"]  # a rerun resumes it
    assert [r.action for r in upgrade(path=folder)] == ["applied"]
    assert set(counters(history).values()) == {1}


def test_a_throttled_page_backs_off_and_is_read_again(proxy: FaultProxy) -> None:
    settings = current_connection().settings
    seed(settings, 100)
    conn = current_connection()
    leases = LeaseTable(conn)
    leases.ensure()
    table = settings.table_name("user-progress")
    plan = Plan("9999/t", "9999/t@run", table, 1, 100, datetime.now(UTC))
    leases.create(plan.plan_id, plan.run, plan.total, plan.header_fields())
    seen: list[str] = []

    def note(batch: Batch, item: RawItem) -> int:
        seen.append(item["userId"]["S"])
        return 0

    no_retries = RetryPolicy(max_attempts=1)  # every throttled Scan reaches the worker
    worker = Worker(
        leases=leases,
        plan=plan,
        backfill=Backfill(name="t", model=UserProgress, per_item=note, page_size=10),
        owner="throttled",
        threads=1,
        lease_seconds=10.0,
        send=lambda op, params: conn.send(op, params, table=table, retry=no_retries),
        on_complete=lambda: None,
    )
    proxy.faults = Faults(throttle=0.2, operations=frozenset({"Scan"}))
    try:
        result = worker.run()
    finally:
        proxy.faults = Faults()
        delete_table(settings.table_name("schema-migrations"), conn=conn)
    assert result.completed
    assert result.throttled >= 1  # backed off, then read the page again
    assert sorted(seen) == sorted(set(seen))  # no row handed out twice
    assert len(seen) == 100  # none missed

"""Backfills over many worker processes, one moto server shared over HTTP.

The workers are real processes (``portchops migrate up`` and ``migrate work``);
the tests wait on what they can observe (the segment items in the history table,
the pages logged by the test migration), never on sleeps.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from portchops_models.cli import app
from portchops_models.migrate import MigrationError, Rate, backfill_status, status
from portchops_models.migrate.backfills.backfill import Backfill, plan_segments
from portchops_models.migrate.backfills.lease import LeaseLost, LeaseTable, Observed
from portchops_models.migrate.backfills.rate import SharedRate
from portchops_models.models import UserProgress
from portchops_models.settings import Settings
from portchops_models.transport.connection import current_connection
from tests.backfill_kit import (
    Workers,
    counted,
    counters,
    handed_out,
    history_ids,
    owner_pid,
    pages,
    seed,
    segment_items,
    wait_for,
    write_migration,
)


def finished(results: list[tuple[int, str]]) -> None:
    for code, out in results:
        assert code == 0, out


def test_four_workers_migrate_each_of_20000_rows_exactly_once(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 20_000)
    folder = write_migration(tmp_path / "bf", mode="count", segments=16, page_size=2000)
    with Workers(history, folder) as workers:
        workers.up()
        for _ in range(3):
            workers.work()
        results = workers.finish()
    finished(results)
    last = [out for _, out in results if "done (the last segment was here)" in out]
    assert len(last) == 1  # the plan is marked done once, by whoever finished last
    assert "applied bf:0001" in results[0][1]  # the step is recorded by its runner

    assert counted(history, 1) == (20_000, 20_000)  # every row migrated, none twice
    handed = handed_out(folder)
    assert len(handed) == 20_000
    assert set(handed.values()) == {1}  # and handed out once: no page done twice
    assert len({page.pid for page in pages(folder)}) >= 3  # the work was shared
    assert [s.state for s in status(path=folder)] == ["applied"]
    assert history_ids(history) == ["bf:0001"]  # recorded once; no plan, no lock left


def test_a_worker_killed_mid_segment_is_taken_over_without_loss_or_double(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 2000)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=8, page_size=50, lease=1.0, delay=0.03
    )
    with Workers(history, folder) as workers:
        workers.up()
        victim = workers.work()
        workers.work()

        held = workers.holding(victim)
        os.kill(victim.pid, signal.SIGKILL)
        segment = held["id"]["S"]

        def taken_over() -> bool:
            items = {i["id"]["S"]: i for i in segment_items(history)}
            item = items.get(segment)  # gone: the plan finished (so it was taken over)
            return item is None or (
                int(item["fence"]["N"]) > int(held["fence"]["N"]) and owner_pid(item) != victim.pid
            )

        running = backfill_status(path=folder)
        assert len(running) == 1
        one = running[0]
        assert (one.step_id, one.name, one.segments) == ("bf:0001", "count", 8)
        assert one.done + one.leased + one.free == 8
        out = CliRunner().invoke(app, ["migrate", "status", "--path", str(folder)]).output
        assert "backfills running" in out
        wait_for(taken_over)
        results = workers.finish()
    assert results[1][0] == -signal.SIGKILL
    finished([results[0], results[2]])

    counts = counters(history)
    assert len(counts) == 2000
    assert set(counts.values()) == {1}  # nothing missed, nothing migrated twice
    handed = handed_out(folder)
    assert set(handed) == set(counts)
    again = [key for key, times in handed.items() if times > 1]
    assert len(again) <= 50  # only the victim's page in flight was handed out again
    assert [s.state for s in status(path=folder)] == ["applied"]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_paused_worker_whose_lease_was_taken_over_cannot_checkpoint(history: Settings) -> None:
    leases = LeaseTable(current_connection())
    leases.ensure()
    leases.create("9999/x", "9999/x@run", 2, {})
    free = leases.segments("9999/x@run", 2)[0]
    paused = leases.claim("9999/x@run", free, owner="paused", lease_seconds=1.0)
    assert paused is not None
    paused.checkpoint({"userId": {"S": "a"}}, 10)
    assert leases.claim("9999/x@run", free, owner="other", lease_seconds=1.0) is None  # held

    clock = Clock()  # the observer's own monotonic clock, moved by hand
    observer = Observed(clock=lambda: clock.now)
    seen = leases.segments("9999/x@run", 2)[0]
    assert not observer.expired(seen, 1.0)  # first sight starts its own count
    clock.now += 0.9
    assert not observer.expired(leases.segments("9999/x@run", 2)[0], 1.0)
    clock.now += 0.2  # the paused worker missed its renewals for a whole lease, seen here
    seen = leases.segments("9999/x@run", 2)[0]
    assert observer.expired(seen, 1.0)
    paused.renewed_at -= 1.0  # by its own clock too, a lease has passed since its renewal
    with pytest.raises(LeaseLost, match="may have run out by this process's clock"):
        paused.check()
    successor = leases.claim("9999/x@run", seen, owner="successor", lease_seconds=1.0)
    assert successor is not None
    assert successor.fence == paused.fence + 1
    assert successor.position == {"userId": {"S": "a"}}  # resumes from the last checkpoint
    successor.checkpoint({"userId": {"S": "b"}}, 5)

    with pytest.raises(LeaseLost, match=r"segment 0 .* another worker took it over"):
        paused.checkpoint({"userId": {"S": "stale"}}, 99)
    for write in (paused.renew, lambda: paused.finish(1)):
        with pytest.raises(LeaseLost):
            write()
    paused.release()  # does nothing: not ours

    (state, _) = leases.segments("9999/x@run", 2)
    assert (state.phase, state.owner, state.scanned) == ("leased", "successor", 15)
    assert leases.claim("9999/x@run", seen, owner="third", lease_seconds=1.0) is None  # renewed
    assert not observer.expired(state, 1.0)  # the successor's heartbeat moved: a new count
    successor.finish(1)
    done = leases.segments("9999/x@run", 2)[0]
    assert done.phase == "done"
    assert leases.claim("9999/x@run", done, owner="third", lease_seconds=1.0) is None


def test_a_cancelled_segment_cannot_be_claimed_renewed_or_checkpointed(history: Settings) -> None:
    leases = LeaseTable(current_connection())
    leases.ensure()
    leases.create("9999/c", "9999/c@run", 2, {})
    held = leases.claim(
        "9999/c@run", leases.segments("9999/c@run", 2)[0], owner="w", lease_seconds=5
    )
    assert held is not None
    assert leases.cancel("9999/c@run", 2) == 2
    assert [s.phase for s in leases.segments("9999/c@run", 2)] == ["cancelled", "cancelled"]
    for write in (held.renew, lambda: held.checkpoint({"userId": {"S": "a"}}, 1)):
        with pytest.raises(LeaseLost):
            write()
    held.release()
    free = leases.segments("9999/c@run", 2)[1]
    assert leases.claim("9999/c@run", free, owner="w2", lease_seconds=5) is None


def test_the_rate_limit_holds_the_combined_rate(history: Settings, tmp_path: Path) -> None:
    seed(history, 1500)
    rate = 300.0
    folder = write_migration(
        tmp_path / "bf",
        mode="log",
        segments=4,
        page_size=25,
        rate=f"Rate(items_per_second={rate})",
    )
    with Workers(history, folder) as workers:
        workers.up()
        workers.work()
        workers.work()
        finished(workers.finish())

    seen = pages(folder)
    assert sum(page.n for page in seen) == 1500
    assert len({page.pid for page in seen}) >= 2  # the limit was shared, not one worker's
    window = seen[-1].t - seen[0].t
    measured = sum(page.n for page in seen[:-1]) / window  # pages paid before the last
    print(f"{measured:.0f} rows/s against {rate:.0f} over {window:.1f} s")
    assert rate * 0.8 <= measured <= rate * 1.2, f"{measured:.0f} rows/s against {rate:.0f}"
    # paid before it is read, no page can overrun the limit by more than itself: no 1 s
    # window holds more than the limit plus one page per worker (3 processes here)
    windows = [sum(p.n for p in seen if page.t <= p.t < page.t + 1.0) for page in seen]
    assert max(windows) <= rate + 25 * 3, f"{max(windows)} rows in 1 s against {rate:.0f}"


def test_work_with_nothing_running_exits_cleanly(history: Settings, tmp_path: Path) -> None:
    folder = write_migration(tmp_path / "bf", mode="log", segments=1, page_size=10)
    result = CliRunner().invoke(app, ["migrate", "work", "--path", str(folder)])
    assert result.exit_code == 0, result.output
    assert "no backfill is running" in result.output


def test_declaring_a_backfill_checks_its_arguments() -> None:
    def page(batch: object, items: object) -> int:
        return 0

    with pytest.raises(MigrationError, match="one of items_per_second or capacity_per_second"):
        Rate()
    with pytest.raises(Exception, match="give one of per_item or per_page"):
        Backfill(name="x", model=UserProgress)
    with pytest.raises(Exception, match="page_size must be an int >= 1"):
        Backfill(name="x", model=UserProgress, per_page=page, page_size=0)
    with pytest.raises(Exception, match="without / or @"):
        Backfill(name="a/b", model=UserProgress, per_page=page)


@given(
    items=st.integers(min_value=0, max_value=10**10),
    size=st.integers(min_value=0, max_value=10**13),
    minimum=st.integers(min_value=1, max_value=64),
)
def test_the_segment_count_is_a_power_of_two_from_the_table_size(
    items: int, size: int, minimum: int
) -> None:
    n = plan_segments(items, size, minimum=minimum)
    assert n & (n - 1) == 0
    assert min(minimum, 4096) <= n <= 4096
    assert n >= min(4096, -(-items // 100_000), -(-size // (256 * 1024 * 1024)))
    assert plan_segments(items * 2, size * 2, minimum=minimum) >= n


def test_a_worker_paused_past_its_lease_is_fenced_out_when_it_resumes(
    history: Settings, tmp_path: Path
) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, lease=1.0, delay=0.05
    )
    with Workers(history, folder) as workers:
        paused = workers.work()
        workers.up()

        held = workers.holding(paused)
        os.kill(paused.pid, signal.SIGSTOP)
        segment = held["id"]["S"]

        def taken_over() -> bool:
            item = {i["id"]["S"]: i for i in segment_items(history)}.get(segment)
            return item is None or (
                int(item["fence"]["N"]) > int(held["fence"]["N"]) and owner_pid(item) != paused.pid
            )

        wait_for(taken_over)
        os.kill(paused.pid, signal.SIGCONT)
        results = workers.finish()
    finished(results)
    out = " ".join(results[0][1].split())  # rich wraps long lines
    assert "may have run out by this process's clock" in out or "lost the lease" in out
    counts = counters(history)
    assert len(counts) == 600
    assert set(counts.values()) == {1}
    assert [s.state for s in status(path=folder)] == ["applied"]


def test_a_stopped_worker_hands_its_segment_back_at_once(history: Settings, tmp_path: Path) -> None:
    seed(history, 600)
    folder = write_migration(
        tmp_path / "bf", mode="once", segments=2, page_size=20, lease=60.0, delay=0.05
    )
    with Workers(history, folder) as workers:
        stopping = workers.work()

        workers.up()
        held = workers.holding(stopping)
        os.kill(stopping.pid, signal.SIGTERM)  # a container being stopped
        segment = held["id"]["S"]

        def handed_back() -> bool:
            item = {i["id"]["S"]: i for i in segment_items(history)}.get(segment)
            return item is None or owner_pid(item) != stopping.pid

        wait_for(handed_back, timeout=30)  # well before its 60 s lease would run out
        results = workers.finish()
    assert results[0][0] != 0  # interrupted, not finished
    finished(results[1:])
    assert set(counters(history).values()) == {1}
    assert [s.state for s in status(path=folder)] == ["applied"]


def test_the_shared_schedule_spaces_the_pages_and_saves_no_credit(history: Settings) -> None:
    clock = Clock()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    leases = LeaseTable(current_connection(), clock=clock)
    leases.ensure()
    leases.create("9999/rate", "9999/rate@run", 1, {})
    one = SharedRate(leases, "9999/rate", Rate(items_per_second=100), sleep=sleep)
    two = SharedRate(leases, "9999/rate", Rate(items_per_second=100), sleep=sleep)
    start = clock.now

    one.pay(10)  # a page of 10 rows, paid before it is read: its slot begins now
    two.pay(10)  # another worker's page at the same moment: its slot begins 0.1 s later
    assert clock.now == pytest.approx(start + 0.1, abs=1e-5)
    assert waits == [pytest.approx(0.1, abs=1e-5)]

    clock.now += 60  # a minute idle
    waits.clear()
    for _ in range(3):
        one.pay(50)  # no burst: the first begins now, each next one a slot later
    assert waits == [pytest.approx(0.5, abs=1e-5)] * 2

"""The verbs `work` (join the running step's backfill) and `backfill_status`.

``portchops migrate work [--path DIR]`` finds the plan of the step that is being
applied (its header in the history table, named on the step's history item), checks
that this process has the same migration file (checksum), loads the step's
`Backfill` and works on the plan until every segment is done, from any number of
processes or machines. The worker that completes the last segment marks the plan
done; every worker then exits, and the runner records the step as applied when its
``up`` returns.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ...models.shape import RawItem
from ...observe.metrics import Metrics
from ...repository import default_metrics
from ...transport.connection import current_connection
from ..discovery import Migration, _load, _parse_id, _step_id, discover, namespace_of
from ..errors import MigrationError, connection_errors
from ..history import _History
from .backfill import cancel_plans, find_backfill, finish_plan, owner_name, set_plans
from .lease import LeaseTable
from .worker import PAUSED, RUNNING, BackfillCancelled, BackfillResult, Plan, Worker

__all__ = ["BackfillProgress", "backfill_status", "control", "sigterm_interrupts", "work"]

_RUN_ATTRIBUTE = "backfill:"


@dataclass(frozen=True)
class BackfillProgress:
    """One running backfill, as `backfill_status` reads it from the history table.

    Attributes:
        step_id: the step applying it (``"0005"``, ``"lessons:0003"``).
        name: the backfill's name within the step.
        segments: how many segments the plan has; `done`, `leased` and `free` add up to it.
        scanned: rows scanned so far (checkpointed pages).
        estimate: the table's item count when the plan started (DynamoDB's estimate).
        rows_per_second: scanned rows over the time since the plan started.
        eta_seconds: the estimated time left, or None when it cannot be told yet.
    """

    step_id: str
    name: str
    segments: int
    done: int
    leased: int
    free: int
    scanned: int
    estimate: int
    started_at: datetime
    rows_per_second: float
    eta_seconds: float | None


def _running(leases: LeaseTable, history: _History, namespace: str) -> list[tuple[str, str, Plan]]:
    """(step id, backfill name, plan) of every live plan of this namespace, by step."""
    found: list[tuple[str, str, Plan]] = []
    for header in leases.headers():
        plan_id = header["id"]["S"]
        step_id, _, name = plan_id.partition("/")
        parsed = _parse_id(step_id)
        if parsed is None or parsed[0] != namespace or header.get("status", {}).get("S") == "done":
            continue
        record: RawItem = history.get(step_id) or {}
        live = record.get(_RUN_ATTRIBUTE + name, {}).get("S") == header["run"]["S"]
        if live and record.get("status", {}).get("S") == "running":  # not failed, not applied
            found.append((step_id, name, Plan.from_header(plan_id, header)))
    return sorted(found, key=lambda found: found[0])


def _progress(leases: LeaseTable, step_id: str, name: str, plan: Plan) -> BackfillProgress:
    states = leases.segments(plan.run, plan.total)
    count = {phase: sum(1 for s in states if s.phase == phase) for phase in ("done", "leased")}
    scanned = sum(s.scanned for s in states)
    elapsed = max((datetime.now(UTC) - plan.started_at).total_seconds(), 1e-3)
    speed = scanned / elapsed
    eta: float | None = None
    if count["done"] == plan.total:
        eta = 0.0
    elif speed > 0 and plan.estimate:
        eta = max(plan.estimate - scanned, 0) / speed
    elif count["done"]:
        eta = elapsed * (plan.total - count["done"]) / count["done"]
    return BackfillProgress(
        step_id=step_id,
        name=name,
        segments=plan.total,
        done=count["done"],
        leased=count["leased"],
        free=plan.total - count["done"] - count["leased"],
        scanned=scanned,
        estimate=plan.estimate,
        started_at=plan.started_at,
        rows_per_second=speed,
        eta_seconds=eta,
    )


def backfill_status(*, path: Path | str | None = None) -> list[BackfillProgress]:
    """The running backfills of the folder at `path` (default: the package's own):
    segments done / leased / free, rows scanned and the estimated time left.
    Reads only; empty when nothing is running."""
    with connection_errors():
        conn = current_connection()
        leases, history = LeaseTable(conn), _History(conn)
        if not (leases.exists() and history.exists()):
            return []
        return [
            _progress(leases, step_id, name, plan)
            for step_id, name, plan in _running(leases, history, namespace_of(path))
        ]


def work(
    *,
    path: Path | str | None = None,
    wait: float = 0.0,
    threads: int | None = None,
    lease_seconds: float | None = None,
    console: Console | None = None,
    metrics: Metrics | None = None,
) -> BackfillResult | None:
    """Join the backfill of the step being applied and work until every segment is done.

    Args:
        path: the migrations directory (default: the package's own).
        wait: seconds to wait for a backfill to start when none is running yet.
        threads: segments worked on at once (default: the backfill's ``threads``).
        lease_seconds: the lease length (default: the backfill's ``lease_seconds``).
        console: where the progress bar goes (default: a new rich console).
        metrics: where the requests are counted (default: `default_metrics`).

    Returns:
        What this process did, or None when no backfill was running.

    Raises:
        MigrationError: this process's migration file differs from the runner's, or
            the file declares no backfill of the plan's name.
    """
    console = console or Console()
    with connection_errors():
        conn = current_connection()
        migrations = {m.number: m for m in discover(path)}
        namespace = namespace_of(path)
        leases, history = LeaseTable(conn), _History(conn)
        deadline = time.monotonic() + wait
        while True:
            live = _running(leases, history, namespace) if leases.exists() else []
            if live or time.monotonic() >= deadline:
                break
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0.0)))
        if not live:
            console.print("no backfill is running: nothing to do")
            return None
        step_id, name, plan = live[0]
        migration = _migration(migrations, step_id, plan)
        backfill = find_backfill(_load(migration).up, name)
        used = metrics if metrics is not None else default_metrics()
        worker = Worker(
            leases=leases,
            plan=plan,
            backfill=backfill,
            owner=owner_name(),
            threads=threads or backfill.threads,
            lease_seconds=lease_seconds or backfill.lease_seconds,
            send=lambda op, params: conn.send(
                op, params, table=plan.table, retry=conn.retry, metrics=used
            ),
            on_complete=lambda: _finish(leases, plan, console),
            console=console,
        )
        console.print(f"joined backfill {escape(plan.plan_id)}: {plan.total} segment(s)")
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn())
        bar = Progress(*columns, TimeRemainingColumn(), console=console)
        with sigterm_interrupts(), bar:
            task = bar.add_task(
                f"{escape(plan.plan_id)} (this worker)", total=plan.estimate or None
            )
            try:
                result = worker.run(lambda n: bar.advance(task, n))
            except BackfillCancelled as err:
                console.print(f"[yellow]{escape(err.message)}[/]: stopped")
                return worker.result
        console.print(
            f"done: {result.segments} segment(s) here, {result.scanned} row(s) scanned, "
            f"{result.written} written, {result.lost} lease(s) lost to others"
        )
        return result


Action = Literal["pause", "resume", "cancel"]


def control(
    step: str, action: Action, *, path: Path | str | None = None, console: Console | None = None
) -> list[str]:
    """Pause, resume or cancel the backfills of the step being applied (``"0005"``, or
    with its namespace ``"lessons:0005"``); every worker honours it within a second.

    A paused plan keeps its checkpoints: workers hand their segments back after the
    page they are on and wait; ``resume`` lets them go on. ``cancel`` stops them for
    good and returns once none can write any more (at most a lease later); the
    runner's step fails with `BackfillCancelled`, and running it again starts over.

    Returns:
        The plan ids acted on (empty when the step has no backfill running).
    """
    console = console or Console()
    with connection_errors():
        conn = current_connection()
        leases, history = LeaseTable(conn), _History(conn)
        parsed = _parse_id(step)
        if parsed is None or not parsed[1]:
            raise MigrationError(f"not a step id: {step!r} (e.g. 0005, or lessons:0005)")
        namespace = parsed[0] or namespace_of(path)
        step_id = _step_id(namespace, parsed[1])
        record = history.get(step_id) if leases.exists() else None
        if action == "cancel":
            plans = cancel_plans(leases, record, console)
        else:
            plans = set_plans(leases, record, PAUSED if action == "pause" else RUNNING)
        done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
        for plan in plans:
            console.print(f"{done} backfill {escape(plan.plan_id)}")
        if not plans:
            console.print(f"no backfill of {escape(step_id)} is running: nothing to {action}")
        return [plan.plan_id for plan in plans]


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a container stopping) interrupts like Ctrl-C: the worker stores its
    pages and hands its segments back instead of leaving them to expire."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _migration(migrations: dict[str, Migration], step_id: str, plan: Plan) -> Migration:
    parsed = _parse_id(step_id)
    migration = migrations.get(parsed[1]) if parsed else None
    if migration is None:
        raise MigrationError(f"backfill {plan.plan_id} runs a step this folder does not have")
    if plan.checksum not in ("", "-", migration.checksum):
        raise MigrationError(
            f"{migration.path.name} differs from the file the runner applies "
            f"(checksum): run the same version of the migrations"
        )
    return migration


def _finish(leases: LeaseTable, plan: Plan, console: Console) -> None:
    if finish_plan(leases, plan):
        console.print(f"backfill {escape(plan.plan_id)}: done (the last segment was here)")

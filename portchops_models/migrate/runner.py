"""The verbs `upgrade`, `downgrade` and `status`, and the step runner under the lock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape

from ..errors import PortChopsError
from ..observe import logs
from ..observe.metrics import Metrics
from ..repository import default_metrics
from ..transport.connection import current_connection
from .backfills.backfill import backfills_of, cancel_plans, drop_plans
from .backfills.lease import LeaseTable
from .context import CheckpointHook, MigrationContext
from .discovery import (
    Migration,
    _load,
    _Step,
    _step_id,
    _Steps,
    default_path,
    discover,
    gaps,
    namespace_of,
)
from .errors import MigrationError, _one_line, connection_errors
from .history import _History, _Record
from .lock import _Lock
from .plan import _is_applied, _pending, _problems, _resolve, _validate


@dataclass(frozen=True)
class StepResult:
    """What `upgrade` / `downgrade` did (or, in a dry run, would do) for one step."""

    number: str
    description: str
    action: Literal["applied", "reverted", "would apply", "would revert"]
    duration_ms: float
    namespace: str = ""

    @property
    def id(self) -> str:
        """The step's id in the history table: ``"0003"``, or ``"lessons:0003"``."""
        return _step_id(self.namespace, self.number)


MigrationState = Literal["applied", "pending", "running", "failed", "missing"]


@dataclass(frozen=True)
class MigrationStatus:
    """One row of `status`.

    Attributes:
        state: ``"applied"``, ``"pending"``, ``"running"`` (its ``up`` started and has
            not returned: a runner is on it, or was killed and a rerun resumes it),
            ``"failed"`` (last run raised; it will be retried) or ``"missing"``
            (recorded as applied but its file is gone).
        checksum_ok: for applied steps, whether the file is unchanged since; else None.
        problem: why `upgrade` would refuse to run (gap, edited file), or None.
        namespace: the folder's namespace (``""`` for the package's own migrations).
    """

    number: str
    description: str
    state: MigrationState
    applied_at: datetime | None
    duration_ms: float | None
    checksum_ok: bool | None
    error: str | None
    problem: str | None
    namespace: str = ""

    @property
    def id(self) -> str:
        """The step's id in the history table: ``"0003"``, or ``"lessons:0003"``."""
        return _step_id(self.namespace, self.number)

    @property
    def applied(self) -> bool:
        """True when the step is recorded as applied."""
        return self.state in ("applied", "missing")


class _Runner:
    def __init__(
        self,
        path: Path | str | None,
        console: Console | None,
        metrics: Metrics | None,
        hook: CheckpointHook | None,
    ) -> None:
        self.folder = Path(path) if path is not None else default_path()
        self.namespace = namespace_of(self.folder)
        self.console = console or Console()
        self.metrics = metrics if metrics is not None else default_metrics()
        self.hook = hook
        self.conn = current_connection()
        self.history = _History(self.conn)

    def records(self) -> dict[str, _Record]:
        """This folder's records (none if the history table does not exist yet)."""
        return self.history.records(self.namespace) if self.history.exists() else {}

    def read(self) -> dict[str, _Record]:
        """This folder's records, the history table being there."""
        return self.history.records(self.namespace)

    def gaps(self, migrations: list[Migration], records: Mapping[str, _Record]) -> dict[str, str]:
        """The gaps in the folder's numbering that stop a run, by the number of the file
        after each (`gaps`).

        A missing number recorded as applied is the missing-file check's to report; a gap
        just below a file already applied (a history written before gaps were checked)
        is let be: the steps above it have run, and renumbering them now would only
        make them look pending.
        """
        found: dict[str, str] = {}
        for gap in gaps(migrations):
            if _is_applied(records.get(gap.after.number)):
                continue
            missing = [n for n in gap.missing if not _is_applied(records.get(n))]
            if missing:
                found[gap.after.number] = gap.message(self.folder, missing)
        return found

    def problems(
        self, migrations: list[Migration], records: Mapping[str, _Record]
    ) -> dict[str, str]:
        """Every problem that would stop `upgrade`, by number: gaps, missing or edited files."""
        found = _problems(migrations, records, namespace=self.namespace, folder=self.folder)
        for number, text in self.gaps(migrations, records).items():
            found.setdefault(number, text)
        return dict(sorted(found.items()))

    def validate(
        self, migrations: list[Migration], records: Mapping[str, _Record], *, allow_edited: bool
    ) -> None:
        """Raise the first problem that stops a run (an edited file only without
        `allow_edited`): a gap in the numbering first, then the history's checks."""
        for text in self.gaps(migrations, records).values():
            raise MigrationError(text)
        _validate(
            migrations,
            records,
            allow_edited=allow_edited,
            namespace=self.namespace,
            folder=self.folder,
        )

    def resolve(self, target: str, migrations: list[Migration], *, allow_zero: bool) -> str:
        return _resolve(target, migrations, allow_zero=allow_zero, namespace=self.namespace)

    @contextmanager
    def locked(self, timeout: float) -> Iterator[_Lock]:
        self.history.ensure()
        lock = _Lock(self.history)
        lock.acquire(timeout=timeout, console=self.console)
        try:
            yield lock
        finally:
            lock.release()

    def context(self, m: Migration, lock: _Lock) -> MigrationContext:
        """What step `m` gets, under `lock`."""
        return MigrationContext(
            number=m.number,
            namespace=m.namespace,
            conn=self.conn,
            console=self.console,
            metrics=self.metrics,
            retry=self.history.retry,
            _history=self.history,
            _lock=lock,
            _hook=self.hook,
            _migration=m,
        )

    def run(self, m: Migration, step: _Step, lock: _Lock) -> float:
        ctx = self.context(m, lock)
        start = time.perf_counter()
        step(ctx)
        return (time.perf_counter() - start) * 1000

    def plan(self, verb: str, m: Migration) -> None:
        self.console.print(f"{verb} [bold]{escape(m.id)}[/] {escape(m.description)}")


def upgrade(
    target: str | None = None,
    *,
    dry_run: bool = False,
    path: Path | str | None = None,
    console: Console | None = None,
    allow_edited: bool = False,
    lock_timeout: float = 60.0,
    metrics: Metrics | None = None,
    on_checkpoint: CheckpointHook | None = None,
) -> list[StepResult]:
    """Apply the pending migrations up to `target` (default: all), in order.

    Args:
        target: the last number to apply, e.g. ``"0003"`` (or ``"lessons:0003"``).
        dry_run: print what would be applied; change nothing.
        path: the migrations directory (default: `default_path`, the package's own).
            Each folder's history is kept apart under its namespace (`namespace_of`).
        console: where to print progress (default: a new rich console).
        allow_edited: run even though an applied file was edited since.
        lock_timeout: seconds to wait for another runner's lock before giving up.
        metrics: where data migrations count their requests (default: `default_metrics`).
        on_checkpoint: called as ``hook(number, key, value)`` before each checkpoint
            is stored; raising aborts the step there (tests use it to interrupt a run).

    Returns:
        One `StepResult` per step applied (or that would be, in a dry run).

    Raises:
        MigrationError: unknown target, gap, edited file, broken file, failed step, lock busy.
        NoCredentials, EndpointUnreachable: DynamoDB cannot be reached.

    Example:
        >>> upgrade("0002", dry_run=True)                       # doctest: +SKIP
        [StepResult(number='0001', ..., action='would apply', ...), ...]
    """
    with connection_errors():
        migrations = discover(path)
        runner = _Runner(path, console, metrics, on_checkpoint)
        if target is not None:
            last = runner.resolve(target, migrations, allow_zero=False)
        elif migrations:
            last = migrations[-1].number
        else:
            folder = escape(str(runner.folder))
            runner.console.print(f"nothing to apply: no migrations (NNNN_*.py) in {folder}")
            return []
        if dry_run:
            records = runner.records()
            runner.validate(migrations, records, allow_edited=allow_edited)
            todo = _pending(migrations, records, last)
            for m in todo:
                loaded = _load(m)
                runner.plan("would apply", m)
                _dry_backfills(runner, m, loaded)
            return [
                StepResult(m.number, m.description, "would apply", 0.0, m.namespace) for m in todo
            ]
        # the checks first, before the history table is created or the lock is taken;
        # again under the lock, where another runner may have moved the history on
        runner.validate(migrations, runner.records(), allow_edited=allow_edited)
        results: list[StepResult] = []
        with runner.locked(lock_timeout) as lock:
            records = runner.read()
            runner.validate(migrations, records, allow_edited=allow_edited)
            todo = _pending(migrations, records, last)
            steps = {m.number: _load(m) for m in todo}
            for m in todo:
                lock.check()
                if runner.history.is_applied(m.id):
                    continue  # applied by another runner whose lease ran out
                results.append(_apply(runner, m, steps[m.number], lock))
        if not results:
            up_to = escape(_step_id(runner.namespace, last))
            runner.console.print(f"nothing to apply (up to {up_to})")
        return results


def _dry_backfills(runner: _Runner, m: Migration, steps: _Steps) -> None:
    """Run the step's backfills (those its module declares) without writing a row:
    their functions see every page, the writes they would send are counted."""
    declared = backfills_of(steps.up)
    if not declared:
        return
    ctx = runner.context(m, _Lock(runner.history))  # never acquired: a dry run takes no lock
    for backfill in declared:
        backfill.dry_run(ctx)


def _apply(runner: _Runner, m: Migration, steps: _Steps, lock: _Lock) -> StepResult:
    runner.plan("applying", m)
    started = datetime.now(UTC)
    try:
        ms = runner.run(m, steps.up, lock)
    except Exception as err:
        reason = _one_line(err)
        with contextlib.suppress(PortChopsError):  # the step's error says more
            runner.history.failed(m, error=reason, at=started)
        logs.migration("failed", m.id, m.description, None)
        raise MigrationError(f"migration {m.id} ({m.description}) failed: {reason}") from err
    record = runner.history.get(m.id)
    runner.history.applied(m, at=started, duration_ms=ms)
    drop_plans(LeaseTable(runner.conn), record)  # done: no rerun will resume them
    runner.console.print(f"  applied {escape(m.id)} in {ms:.0f} ms")
    logs.migration("applied", m.id, m.description, ms)
    return StepResult(m.number, m.description, "applied", ms, m.namespace)


def downgrade(
    target: str,
    *,
    dry_run: bool = False,
    path: Path | str | None = None,
    console: Console | None = None,
    allow_edited: bool = False,
    lock_timeout: float = 60.0,
    metrics: Metrics | None = None,
) -> list[StepResult]:
    """Undo the applied migrations numbered above `target`, newest first.

    ``target="0000"`` undoes everything. Every step to undo must have ``down``;
    otherwise nothing runs and the error names the step. A ``down`` that raises
    stops the run and leaves that step recorded as applied. Only the steps of the
    folder at `path` (default: the package's own) are touched, never another
    folder's.

    Returns:
        One `StepResult` per step reverted (or that would be, in a dry run).

    Raises:
        MigrationError: unknown target, gap, edited file, a step without ``down``,
            a failing ``down``, lock busy.
    """
    with connection_errors():
        migrations = discover(path)
        runner = _Runner(path, console, metrics, None)
        floor = runner.resolve(target, migrations, allow_zero=True)

        def plan(records: Mapping[str, _Record]) -> list[tuple[Migration, _Step]]:
            runner.validate(migrations, records, allow_edited=allow_edited)
            todo: list[tuple[Migration, _Step]] = []
            for m in reversed(migrations):
                if m.number > floor and _is_applied(records.get(m.number)):
                    down = _load(m).down
                    if down is None:
                        raise MigrationError(
                            f"migration {m.id} ({m.description}) cannot be undone "
                            f"(it has no down()): downgrade to {m.id} or later"
                        )
                    todo.append((m, down))
            return todo

        if dry_run:
            todo = plan(runner.records())
            for m, _ in todo:
                runner.plan("would revert", m)
            return [
                StepResult(m.number, m.description, "would revert", 0.0, m.namespace)
                for m, _ in todo
            ]
        results: list[StepResult] = []
        if not runner.history.exists():
            runner.validate(migrations, {}, allow_edited=allow_edited)  # a gap still says so
            return results
        runner.validate(migrations, runner.read(), allow_edited=allow_edited)  # before the lock
        with runner.locked(lock_timeout) as lock:
            records = runner.read()
            for m, down in plan(records):
                lock.check()
                if not runner.history.is_applied(m.id):
                    continue
                runner.plan("reverting", m)
                try:
                    ms = runner.run(m, down, lock)
                except Exception as err:
                    reason = _one_line(err)
                    logs.migration("revert failed", m.id, m.description, None)
                    raise MigrationError(f"reverting {m.id} failed: {reason}") from err
                runner.history.forget(m.id)
                runner.console.print(f"  reverted {escape(m.id)} in {ms:.0f} ms")
                logs.migration("reverted", m.id, m.description, ms)
                results.append(StepResult(m.number, m.description, "reverted", ms, m.namespace))
            for number, record in records.items():  # failed or interrupted: drop checkpoints
                if number > floor and not _is_applied(record):
                    step_id = _step_id(runner.namespace, number)
                    # a backfill still running for it stops for good before it is forgotten
                    record_item = runner.history.get(step_id)
                    leases = LeaseTable(runner.conn)
                    cancel_plans(leases, record_item, runner.console)
                    drop_plans(leases, record_item)
                    runner.history.forget(step_id)
        return results


def status(*, path: Path | str | None = None) -> list[MigrationStatus]:
    """Every migration of the folder at `path` (files and history), by number: applied
    or not, when, how long, whether the file is unchanged, and any problem that would
    stop `upgrade`.

    Only the folder's own namespace is shown: another folder's steps are neither
    listed nor reported missing. Reads only: the history table is not created.
    """
    with connection_errors():
        migrations = discover(path)
        runner = _Runner(path, Console(quiet=True), None, None)
        records = runner.records()
    problems = runner.problems(migrations, records)
    rows: list[MigrationStatus] = []
    files = {m.number: m for m in migrations}
    for number in sorted(set(files) | {n for n, r in records.items() if r.status == "applied"}):
        m, r = files.get(number), records.get(number)
        done = r is not None and r.status == "applied"
        state: MigrationState = "pending"
        if m is None:
            state = "missing"
        elif r is not None and r.status == "running":
            state = "running"
        elif r is not None and r.status in ("applied", "failed"):
            state = "applied" if r.status == "applied" else "failed"
        rows.append(
            MigrationStatus(
                number=number,
                description=m.description if m else (r.description if r else ""),
                state=state,
                applied_at=r.applied_at if r and done else None,
                duration_ms=r.duration_ms if r and done else None,
                checksum_ok=m.matches(r.checksum) if (m and r and done) else None,
                error=r.error if r and state == "failed" else None,
                problem=problems.get(number),
                namespace=runner.namespace,
            )
        )
    return rows

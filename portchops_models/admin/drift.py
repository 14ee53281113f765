"""The drift check: the live tables against the models and the migration history.

What the models want comes from the same helpers that create the tables
(`table_spec`, `index_spec`, `ttl_attribute_name`, the model's
``Meta.stream_view_type``): keys and their types, billing mode, global and
local indexes with their keys and projections, encryption at rest, the
stream, TTL and point-in-time recovery. What is live comes from
DescribeTable, DescribeTimeToLive and DescribeContinuousBackups. Every
difference is a `Difference` with a one-line message that says what to do.

The comparisons are pure functions over those answers (the table's in
`portchops_models.admin.differences`, re-exported here; the history's,
`history_drift` and `missing_table`, here); `check` asks the engine and runs them. It is read
only: nothing is created, not even the history table. An engine that lacks a
feature (dynalite has no TTL, no backups and reports no encryption) gets a note
saying it was not checked, not a difference; telling "TTL off" from "no TTL on
this engine" takes one UpdateTimeToLive on a table name that does not exist,
sent only when a model's TTL reads as off.

The history part takes the folder's steps as `migrate.status` returns them
(any objects with the `StepState` attributes), so this module stays below the
migration runner.

Example:
    >>> from portchops_models.admin.drift import check
    >>> from portchops_models.migrate import status
    >>> report = check([User, UserProgress], steps=status())  # doctest: +SKIP
    >>> [d.message for d in report.differences]                # doctest: +SKIP
    ['port-chops-users: global index email-index is missing (the model declares it) ...']
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import PortChopsError, TableNotFound, table_not_found
from ..models.base import BaseModel
from ..transport.connection import Connection, current_connection
from .differences import (
    Difference,
    compare_encryption,
    compare_pitr,
    compare_stream,
    compare_table,
    compare_ttl,
)
from .tables import (
    MIGRATION_HISTORY_TABLE,
    UNSUPPORTED_CODES,
    describe_table,
    table_spec,
    ttl_attribute_name,
)

__all__ = [
    "Difference",
    "DriftReport",
    "StepState",
    "check",
    "compare_encryption",
    "compare_pitr",
    "compare_stream",
    "compare_table",
    "compare_ttl",
    "history_drift",
    "missing_table",
]

_UP = "portchops migrate up"


@dataclass(frozen=True)
class DriftReport:
    """What `check` found.

    Attributes:
        differences: every difference, tables in the order given, then the history.
        notes: what this engine could not tell (checked as not supported, not as drift).
        tables: the tables checked.
        steps: how many steps of the folder were checked.
    """

    differences: tuple[Difference, ...] = ()
    notes: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    steps: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.differences


class StepState(Protocol):
    """A step of the history as `portchops_models.migrate.status` describes it."""

    @property
    def id(self) -> str:
        """The step's id in the history table, e.g. ``"0004"`` or ``"lessons:0002"``."""

    @property
    def description(self) -> str:
        """The first line of the step's docstring."""

    @property
    def state(self) -> str:
        """``"applied"``, ``"pending"``, ``"running"``, ``"failed"`` or ``"missing"``
        (recorded applied, file gone)."""

    @property
    def error(self) -> str | None:
        """Why the last run failed, for a failed step."""

    @property
    def problem(self) -> str | None:
        """Why `upgrade` would refuse to run (a gap, an edited file), if anything."""


def history_drift(
    steps: Sequence[StepState], *, table: str, folder: str, up: str = _UP
) -> list[Difference]:
    """The steps of the folder that are not cleanly applied: pending, running, failed, recorded
    applied with the file gone, or with a problem that stops `upgrade` (a gap, an
    edited file). `table` is the history table, `folder` names the folder in the
    messages and `up` is the command that applies it."""
    found: list[Difference] = []
    for step in steps:
        problem = f" ({step.problem})" if step.problem else ""
        named = f'step {step.id} "{step.description.rstrip(".")}" of {folder}'
        if step.state == "pending":
            message = f"{named} is pending: run `{up}`"
        elif step.state == "running":
            message = (
                f"{named} is running (its up has not returned): let it finish, or run "
                f"`{up}` again to resume it if its runner died"
            )
        elif step.state == "failed":
            message = f"step {step.id} failed: {step.error}: fix it, then `{up}` retries it"
        elif step.state == "missing":
            message = (
                f"step {step.id} is recorded applied, but its file is gone from {folder}: "
                "restore the file"
            )
        elif step.problem:
            message, problem = f"step {step.id}: {step.problem}", ""
        else:
            continue
        found.append(Difference(table, f"step {step.id}", "applied", step.state, message + problem))
    return found


def missing_table(
    table: str,
    models: Sequence[type[BaseModel]],
    steps: Sequence[StepState],
    *,
    folder: str,
    up: str = _UP,
) -> Difference:
    """The difference for a model's table that does not exist, saying what to do given
    the folder's history: run the pending steps; or, when every step is recorded
    applied (so `up` has nothing to run), recreate it, since it was dropped."""
    names = ", ".join(m.__name__ for m in models)
    pending = [s.id for s in steps if s.state in ("pending", "running", "failed")]
    applied = [s.id for s in steps if s.state in ("applied", "missing")]
    if pending:
        message = (
            f"{table} ({names}) does not exist; {len(pending)} step(s) of {folder} are not "
            f"applied ({', '.join(pending)}): run `{up}`"
        )
    elif applied:
        message = (
            f"{table} ({names}) does not exist, although the history records "
            f"{len(applied)} step(s) of {folder} applied (last {applied[-1]}), so `{up}` "
            "has nothing to run: if one of them created it, the table was dropped since: "
            "restore it from a backup, or revert that step and apply it again "
            f"(`portchops migrate down --to NNNN`, then `{up}`); else add a step that "
            "creates it (ctx.create_table)"
        )
    else:
        message = (
            f"{table} ({names}) does not exist and {folder} has no step applied or "
            "pending: add a step that creates it (ctx.create_table)"
        )
    return Difference(table, "table", "exists", "missing", message)


class _Engine:
    """The engine's answers for `check`, learning once what it lacks (the notes)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.notes: list[str] = []
        self.has_ttl: bool | None = None
        self.has_pitr: bool | None = None

    def ask(self, operation: str, table: str) -> dict[str, Any] | None:
        """The answer, or None when the engine does not know the operation."""
        try:
            return self.conn.send(operation, {"TableName": table}, table=table)
        except PortChopsError as err:
            if err.code in UNSUPPORTED_CODES:
                return None
            if err.code == "TableNotFoundException":  # moto's DescribeContinuousBackups
                raise table_not_found(table, code=err.code) from err
            raise

    def ttl_supported(self) -> bool:
        """Whether the engine has TTL at all (dynalite answers DescribeTimeToLive with
        DISABLED but has no UpdateTimeToLive): asked once, of a table that does not exist."""
        if self.has_ttl is None:
            absent = self.conn.settings.table_name(f"drift-probe-{uuid.uuid4().hex}")
            spec = {"Enabled": False, "AttributeName": "ttl"}
            try:
                self.conn.send(
                    "UpdateTimeToLive", {"TableName": absent, "TimeToLiveSpecification": spec}
                )
            except PortChopsError as err:  # TableNotFound, AccessDenied...: it has TTL
                if err.code in UNSUPPORTED_CODES:
                    self.no_ttl()
            if self.has_ttl is None:
                self.has_ttl = True
        return self.has_ttl

    def no_ttl(self) -> None:
        """Note (once) that the engine has no TTL."""
        if self.has_ttl is not False:
            self.has_ttl = False
            self.notes.append("TTL: not supported by this engine, not checked")

    def backups(self, table: str) -> dict[str, Any] | None:
        """The ContinuousBackupsDescription, or None on an engine without backups."""
        if self.has_pitr is False:
            return None
        answer = self.ask("DescribeContinuousBackups", table)
        self.has_pitr = answer is not None
        if answer is None:
            self.notes.append(
                "point-in-time recovery: not supported by this engine, not checked; "
                "nor is encryption at rest, which it does not report"
            )
            return None
        description: dict[str, Any] = answer.get("ContinuousBackupsDescription") or {}
        return description


def check(
    models: Iterable[type[BaseModel]],
    *,
    steps: Sequence[StepState] = (),
    folder: str = "the migrations",
    up: str = _UP,
    conn: Connection | None = None,
) -> DriftReport:
    """Compare the live tables with `models` (models sharing a table, such as entities,
    are checked as one table) and with the folder's `steps` (from
    `portchops_models.migrate.status`); read only.

    Example::

        report = check([User, UserProgress], steps=status())
        for difference in report.differences:
            print(difference.message)

    Raises:
        PortChopsError: the engine could not be asked (unreachable, no credentials...).
    """
    conn = conn or current_connection()
    engine = _Engine(conn)
    groups: dict[str, list[type[BaseModel]]] = {}
    for model in models:
        group = groups.setdefault(model.table_name(), [])
        if model not in group:
            group.append(model)
    found: list[Difference] = []
    for name, group in groups.items():
        try:
            differences = _check_table(engine, name, group)
        except TableNotFound:  # dropped between two questions
            differences = None
        if differences is None:
            differences = [missing_table(name, group, steps, folder=folder, up=up)]
        found += differences
    history = conn.settings.table_name(MIGRATION_HISTORY_TABLE)
    found += history_drift(steps, table=history, folder=folder, up=up)
    return DriftReport(tuple(found), tuple(engine.notes), tuple(groups), len(steps))


def _check_table(
    engine: _Engine, name: str, models: Sequence[type[BaseModel]]
) -> list[Difference] | None:
    """The table's differences from its models; None when the table does not exist."""
    live = describe_table(name, conn=engine.conn)
    if live is None:
        return None
    spec = table_spec(models[0], table_name=name)
    views = sorted({v for m in models if (v := getattr(m.Meta, "stream_view_type", None))})
    found = compare_table(spec, live)
    found += compare_stream(name, views[0] if views else None, live)
    backups = engine.backups(name)
    if backups is not None:
        found += compare_pitr(name, backups)
        found += compare_encryption(spec, live)
    attributes = sorted({a for m in models if (a := ttl_attribute_name(m)) is not None})
    if len(attributes) > 1:
        message = (
            f"{name}: its models declare TTL attributes {', '.join(attributes)}; a table has one"
        )
        found.append(Difference(name, "ttl", "one attribute", ", ".join(attributes), message))
    ttl = engine.ask("DescribeTimeToLive", name)
    if ttl is None:
        engine.no_ttl()
    else:
        description = ttl.get("TimeToLiveDescription") or {}
        ttl_found = compare_ttl(name, attributes[0] if attributes else None, description)
        if ttl_found and engine.ttl_supported():
            found += ttl_found
    return found

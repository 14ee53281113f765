"""`MigrationContext`: what a step gets (table helpers, raw calls, checkpoints, progress)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..admin import tables
from ..errors import PortChopsError
from ..models.base import BaseModel
from ..observe.metrics import Metrics
from ..settings import Settings
from ..transport.connection import Connection
from ..transport.retry import RetryPolicy
from .discovery import Migration, _step_id
from .errors import MigrationError
from .history import _History
from .lock import _Lock

#: ``hook(number, key, value)``, called before a checkpoint is stored; raising aborts the step.
CheckpointHook = Callable[[str, str, str], None]


@dataclass(frozen=True, kw_only=True)
class MigrationContext:
    """What a step's ``up(ctx)`` / ``down(ctx)`` gets.

    Attributes:
        number: the running migration's number, e.g. ``"0004"``.
        namespace: its folder's namespace (``""`` for the package's own migrations).
        conn: the shared connection (``conn.call(op, params)`` for raw calls).
        console: where to print (rich).
        metrics: where `call` counts its requests.
        retry: the retry policy `call` uses.

    Table helpers derive everything from the model (no second copy of the
    schema) and wait until the table and its indexes are ACTIVE. A data
    migration makes itself resumable with `checkpoint` / `save_checkpoint`.
    """

    number: str
    conn: Connection
    console: Console
    metrics: Metrics
    retry: RetryPolicy
    namespace: str = ""
    _history: _History = field(repr=False)
    _lock: _Lock = field(repr=False)
    _hook: CheckpointHook | None = field(default=None, repr=False)
    _migration: Migration | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """The step's id in the history table: ``"0004"``, or ``"lessons:0004"``."""
        return _step_id(self.namespace, self.number)

    @property
    def settings(self) -> Settings:
        """The settings in force (table prefix, ``progress_ttl_hours``...)."""
        return self.conn.settings

    def table_name(self, model: type[BaseModel]) -> str:
        """The model's full table name under the settings in force."""
        return self.settings.table_name(model.base_table_name)

    def call(self, operation: str, params: Mapping[str, object]) -> dict[str, Any]:
        """One raw DynamoDB call (e.g. ``"Scan"``) with retries, metrics and the
        `portchops_models.errors` translation; returns the raw response."""
        request = dict(params)
        table = request.get("TableName")
        return self.conn.send(
            operation,
            request,
            table=table if isinstance(table, str) else None,
            retry=self.retry,
            metrics=self.metrics,
        )

    def create_table(
        self, model: type[BaseModel], *, indexes: bool = True, ttl: bool = True, pitr: bool = True
    ) -> None:
        """Create the model's table: PAY_PER_REQUEST, encrypted, its GSIs (unless
        ``indexes=False``), then TTL and PITR where the engine has them.

        A table that already exists with the model's keys is kept as it is.

        Raises:
            MigrationError: the table exists with another key schema.
        """
        name = self.table_name(model)
        spec = tables.table_spec(model, table_name=name, indexes=indexes)
        existing = tables.describe_table(name, conn=self.conn)
        if existing is not None:
            _check_keys(name, model, existing, spec)
        tables.create_table(
            model, conn=self.conn, table_name=name, indexes=indexes, ttl=False, pitr=False
        )
        notes = ["PAY_PER_REQUEST", "encrypted"]
        notes += [f"index {g['IndexName']}" for g in spec.get("GlobalSecondaryIndexes", [])]
        if ttl and tables.ttl_attribute_name(model) is not None:
            on = tables.enable_ttl(model, conn=self.conn, table_name=name)
            notes.append("TTL" if on else "no TTL on this engine")
        if pitr:
            on = tables.enable_pitr(name, conn=self.conn)
            notes.append("PITR" if on else "no PITR on this engine")
        verb = "kept existing" if existing is not None else "created"
        self.console.print(f"  {verb} table [cyan]{name}[/] ({', '.join(notes)})")

    def drop_table(self, model: type[BaseModel]) -> None:
        """Delete the model's table (and its data) and wait until it is gone."""
        name = self.table_name(model)
        gone = tables.delete_table(name, conn=self.conn)
        self.console.print(f"  {'deleted' if gone else 'no'} table [cyan]{name}[/]")

    def add_index(self, model: type[BaseModel], index_name: str) -> None:
        """Add one of the model's GSIs to its existing table (UpdateTable) and wait
        until it is ACTIVE; nothing to do if it is already there with the same keys."""
        name = self.table_name(model)
        spec = tables.index_spec(model, index_name)
        table = tables.describe_table(name, conn=self.conn)
        if table is None:
            raise MigrationError(f"cannot add {index_name}: table {name} does not exist")
        current = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
        if index_name in current:
            if _keys(current[index_name]["KeySchema"]) != _keys(spec["KeySchema"]):
                raise MigrationError(f"{name} has an index {index_name} with other keys")
        else:
            wanted = {k["AttributeName"] for k in spec["KeySchema"] + table["KeySchema"]}
            every = tables.table_spec(model, table_name=name)["AttributeDefinitions"]
            self.call(
                "UpdateTable",
                {
                    "TableName": name,
                    "AttributeDefinitions": [d for d in every if d["AttributeName"] in wanted],
                    "GlobalSecondaryIndexUpdates": [{"Create": spec}],
                },
            )
        tables.wait_until_active(name, conn=self.conn)
        self.console.print(f"  index [cyan]{index_name}[/] on [cyan]{name}[/] is ACTIVE")

    def remove_index(self, model: type[BaseModel], index_name: str) -> None:
        """Delete a GSI from the model's table and wait until it is gone."""
        name = self.table_name(model)
        table = tables.describe_table(name, conn=self.conn)
        indexes = {g["IndexName"] for g in (table or {}).get("GlobalSecondaryIndexes", [])}
        if index_name in indexes:
            update = [{"Delete": {"IndexName": index_name}}]
            self.call("UpdateTable", {"TableName": name, "GlobalSecondaryIndexUpdates": update})
            tables.wait_until_active(name, conn=self.conn)  # waits out the DELETING index
        self.console.print(f"  removed index [cyan]{index_name}[/] from [cyan]{name}[/]")

    def enable_ttl(self, model: type[BaseModel]) -> None:
        """Turn TTL on for the model's TTL attribute (skipped on engines without TTL)."""
        name = self.table_name(model)
        on = tables.enable_ttl(model, conn=self.conn, table_name=name)
        attr = tables.ttl_attribute_name(model)
        done = f"TTL on {attr}" if on else "no TTL on this engine: skipped"
        self.console.print(f"  [cyan]{name}[/]: {done}")

    def disable_ttl(self, model: type[BaseModel]) -> None:
        """Turn TTL off for the model's table (skipped when off or unsupported)."""
        name = self.table_name(model)
        attr = tables.ttl_attribute_name(model)
        try:
            state = self.call("DescribeTimeToLive", {"TableName": name})
        except PortChopsError as err:
            if err.code in {"UnknownOperationException", "UnrecognizedClientException"}:
                return
            raise
        if attr and state.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") == "ENABLED":
            spec = {"Enabled": False, "AttributeName": attr}
            self.call("UpdateTimeToLive", {"TableName": name, "TimeToLiveSpecification": spec})
            self.console.print(f"  [cyan]{name}[/]: TTL off")

    def checkpoint(self, key: str) -> str | None:
        """The value last saved under `key` for this migration, or None."""
        return self._history.checkpoint(self.id, _check_key(key))

    def save_checkpoint(self, key: str, value: str) -> None:
        """Store a resume point (e.g. a scan position) for this migration in the history."""
        key = _check_key(key)
        if self._hook is not None:
            self._hook(self.number, key, value)
        self._lock.check()
        self._history.save_checkpoint(self.id, key, value)

    def progress(self) -> Progress:
        """A rich progress bar on the run's console: ``with ctx.progress() as bar: ...``."""
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn())
        return Progress(*columns, TimeElapsedColumn(), console=self.console)


def _check_key(key: str) -> str:
    if not key or len(key) > 200:
        raise MigrationError(f"checkpoint key must be 1-200 characters, got {key!r}")
    return key


def _keys(schema: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    return sorted(((k["AttributeName"], k["KeyType"]) for k in schema), key=lambda k: k[1])


def _check_keys(
    name: str, model: type[BaseModel], table: Mapping[str, Any], spec: Mapping[str, Any]
) -> None:
    def shape(desc: Mapping[str, Any]) -> str:
        types = {d["AttributeName"]: d["AttributeType"] for d in desc["AttributeDefinitions"]}
        return ", ".join(f"{a}:{types.get(a, '?')} {t}" for a, t in _keys(desc["KeySchema"]))

    if shape(table) != shape(spec):
        raise MigrationError(
            f"table {name} exists with keys ({shape(table)}) but {model.__name__} needs "
            f"({shape(spec)}): drop or rename that table, or use another table prefix"
        )

"""The migration runner over ``migrations/NNNN_description.py`` (modelled on alembic).

Each verb is a typed function that the CLI wraps and tests call directly:
`upgrade`, `downgrade` and `status`. Scripts are plain modules found by
scanning a directory (by default the top-level ``migrations/`` folder next to
the package; pass ``path=`` / ``--path`` for another) and loaded by file path,
since their names start with digits. Each has ``up(ctx)`` and, where the step
can be undone, ``down(ctx)``; the first line of its docstring is the
description that `status` shows.

The applied state lives in the target store, table ``{prefix}schema-migrations``
(hash key ``id``, created on first use, PAY_PER_REQUEST, encrypted):

* ``id = "0003"``: one item per step, with ``status`` (``"applied"``, or
  ``"failed"`` and ``error``), ``applied_at``, ``duration_ms``, ``checksum``
  (sha256 of the file) and ``description``. A data migration's checkpoints
  (``checkpoint:KEY``) live on its item while it runs; recording the step as
  applied replaces the item and drops them, and `downgrade` deletes it.
* ``id = "lock"``: the run lock, taken with a conditional PutItem
  (``attribute_not_exists(id) OR expires_at < now``) with an owner and a lease
  that a heartbeat renews. A second runner polls until it frees up, up to
  ``lock_timeout`` seconds, then stops with a message naming the holder. Under
  the lock the history is read again before each step, so every step is
  applied once however many runners start together. A runner that dies keeps
  the lock until its lease (60 s) runs out. (This relies on CreateTable and
conditional writes being atomic, as in DynamoDB. moto's CreateTable is not:
two runners creating the history table at the same moment can both succeed,
the second replacing the first's table and its lock.)

Checks, each a `MigrationError` with a one-line message, before anything runs:
a gap (an applied step whose file is gone, or a pending step numbered below an
applied one), an applied file edited since (checksum mismatch; pass
``allow_edited=True`` / ``--allow-edited`` to run anyway, `status` keeps
reporting it), an unknown target, a file that does not import, a step to undo
without ``down``, and a table that exists with other keys than its model. A
step that raises is recorded as failed and stops the run; running again
retries it (data migrations resume from their checkpoints). A dry run prints
what would run and changes nothing: it neither creates the history table nor
takes the lock, and does not call the steps.

Tables are PAY_PER_REQUEST and encrypted; point-in-time recovery and TTL are
turned on where the engine has them (AWS and moto do; dynalite has neither, so
they are skipped with a note).

Example:
    >>> from portchops_models.migrate import status, upgrade
    >>> results = upgrade()                                    # doctest: +SKIP
    >>> [s.number for s in status() if s.applied]              # doctest: +SKIP
    ['0001', '0002', '0003', '0004', '0005']
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import tables
from .connection import Connection, current_connection
from .errors import (
    ConditionFailed,
    EndpointUnreachable,
    NoCredentials,
    PortChopsError,
    error_code,
    translate,
)
from .metrics import Metrics
from .models.base import BaseModel
from .repository import default_metrics
from .retry import RetryPolicy
from .settings import Settings, current_settings

__all__ = [
    "HISTORY_TABLE",
    "CheckpointHook",
    "EndpointUnreachable",
    "Migration",
    "MigrationContext",
    "MigrationError",
    "MigrationStatus",
    "NoCredentials",
    "StepResult",
    "connection_errors",
    "default_path",
    "discover",
    "downgrade",
    "status",
    "upgrade",
]

#: Base name of the history table (the prefix is added).
HISTORY_TABLE = "schema-migrations"
_LOCK_ID = "lock"
_LEASE_SECONDS = 60.0
_POLL_SECONDS = 0.1
_CHECKPOINT = "checkpoint:"
_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.py$")

#: ``hook(number, key, value)``, called before a checkpoint is stored; raising aborts the step.
CheckpointHook = Callable[[str, str, str], None]


# --------------------------------------------------------------------------- errors


class MigrationError(PortChopsError):
    """A migration could not be planned, applied or undone; the message is one line."""


def _setup_error(err: BaseException) -> PortChopsError | None:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import NoCredentialsError

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NoCredentialsError):
            return NoCredentials(
                "no AWS credentials found: set PORTCHOPS_ENDPOINT_URL for a local engine, "
                "or AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(cause, BotoConnectionError):
            settings = current_settings()
            where = settings.endpoint_url or f"AWS ({settings.region})"
            return EndpointUnreachable(
                f"cannot reach DynamoDB at {where}: start the engine (`portchops engine`), "
                "or set PORTCHOPS_ENDPOINT_URL or AWS credentials"
            )
        nxt = cause.__cause__ or getattr(cause, "cause", None)
        cause = nxt if isinstance(nxt, BaseException) else None
    return None


@contextmanager
def connection_errors() -> Iterator[None]:
    """Turn missing credentials and an unreachable endpoint into `NoCredentials` /
    `EndpointUnreachable` (with a hint), wherever in the cause chain they are."""
    try:
        yield
    except Exception as err:
        converted = _setup_error(err)
        if converted is None:
            raise
        raise converted from err


def _one_line(err: BaseException) -> str:
    text = err.message if isinstance(err, PortChopsError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Migration:
    """One migration file: its number, description, path and checksum (sha256)."""

    number: str
    description: str
    path: Path
    checksum: str


_Step = Callable[["MigrationContext"], None]


@dataclass(frozen=True)
class _Steps:
    up: _Step
    down: _Step | None


_PARSE_LOCK = threading.Lock()


def default_path() -> Path:
    """The migrations folder: top-level ``migrations/`` in a source checkout, else the
    copy shipped inside the installed wheel (``portchops_models/migrations``)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "migrations"
    return checkout if checkout.is_dir() else here / "migrations"


def discover(path: Path | str | None = None) -> list[Migration]:
    """The migrations in a directory, by number (files named ``NNNN_description.py``).

    Raises:
        MigrationError: no such directory, a ``.py`` file starting with a digit that
            does not follow the pattern, a number used twice, or a file that does not parse.
    """
    folder = Path(path) if path is not None else default_path()
    if not folder.is_dir():
        raise MigrationError(f"no migrations directory at {folder}: pass --path")
    found: dict[str, Migration] = {}
    for file in sorted(folder.glob("*.py")):
        match = _FILE.match(file.name)
        if match is None:
            if file.name[:1].isdigit():
                raise MigrationError(f"{file}: migration files are named NNNN_description.py")
            continue
        number = match.group(1)
        if number in found:
            raise MigrationError(f"{file}: number {number} is also {found[number].path.name}")
        source = file.read_bytes()
        try:
            with _PARSE_LOCK:  # CPython 3.11's parser is not safe to run in two threads at once
                doc = ast.get_docstring(ast.parse(source, filename=str(file)))
        except (SyntaxError, ValueError) as err:
            raise MigrationError(f"cannot read migration {file}: {_one_line(err)}") from err
        description = (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
        found[number] = Migration(
            number=number,
            description=description or match.group(2).replace("_", " "),
            path=file,
            checksum=hashlib.sha256(source).hexdigest(),
        )
    return [found[n] for n in sorted(found)]


def _load(migration: Migration) -> _Steps:
    """Import a migration file by path; its ``up`` and optional ``down``."""
    name = f"_portchops_migration_{migration.number}_{migration.checksum[:12]}"
    spec = importlib.util.spec_from_file_location(name, migration.path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"cannot import migration {migration.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _PARSE_LOCK:
            spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise MigrationError(f"cannot import migration {migration.path}: {_one_line(err)}") from err
    up, down = getattr(module, "up", None), getattr(module, "down", None)
    if not callable(up):
        raise MigrationError(f"migration {migration.path} has no up(ctx) function")
    return _Steps(up=up, down=down if callable(down) else None)


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class _Record:
    number: str
    status: str
    description: str
    checksum: str | None
    applied_at: datetime | None
    duration_ms: float | None
    error: str | None


def _record(item: Mapping[str, Mapping[str, str]]) -> _Record:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value.get("S") if value else None

    number = item.get("duration_ms", {}).get("N")
    applied = text("applied_at")
    return _Record(
        number=text("id") or "",
        status=text("status") or "pending",
        description=text("description") or "",
        checksum=text("checksum"),
        applied_at=datetime.fromisoformat(applied) if applied else None,
        duration_ms=float(number) if number else None,
        error=text("error"),
    )


def _send(
    conn: Connection,
    retry: RetryPolicy,
    metrics: Metrics | None,
    operation: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """One call with the retry policy, metrics and error translation."""
    table = params.get("TableName")
    table = table if isinstance(table, str) else None

    def attempt() -> dict[str, Any]:
        start = time.perf_counter()
        try:
            response = conn.call(operation, params)
        except Exception as err:
            if metrics is not None:
                code = error_code(err) or type(err).__name__
                seconds = time.perf_counter() - start
                metrics.record_request(operation, table=table, seconds=seconds, error_code=code)
            raise
        if metrics is not None:
            consumed = response.get("ConsumedCapacity")
            seconds = time.perf_counter() - start
            metrics.record_request(operation, table=table, seconds=seconds, consumed=consumed)
        return response

    try:
        return retry.call(attempt, table=table)
    except PortChopsError:
        raise
    except Exception as err:
        raise translate(err, table=table) from err


class _History:
    """The ``{prefix}schema-migrations`` table: step records, checkpoints and the lock."""

    def __init__(self, conn: Connection) -> None:
        s = conn.settings
        self.conn = conn
        self.table = s.table_name(HISTORY_TABLE)
        self.retry = RetryPolicy(
            max_attempts=s.retry_max_attempts,
            base_delay=min(s.retry_base_delay, s.retry_max_delay),
            max_delay=s.retry_max_delay,
        )

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return _send(self.conn, self.retry, None, operation, {"TableName": self.table, **params})

    def exists(self) -> bool:
        table = tables.describe_table(self.table, conn=self.conn)
        if table is None:
            return False
        if table.get("KeySchema") != [{"AttributeName": "id", "KeyType": "HASH"}]:
            raise MigrationError(f"table {self.table} exists but is not a migration history")
        return True

    def ensure(self) -> None:
        if self.exists():
            return
        try:
            self.call(
                "CreateTable",
                {
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "SSESpecification": {"Enabled": True},
                },
            )
        except PortChopsError as err:
            if err.code != "ResourceInUseException":  # another runner created it first
                raise
        tables.wait_until_active(self.table, conn=self.conn)

    def records(self) -> dict[str, _Record]:
        found: dict[str, _Record] = {}
        params: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.call("Scan", params)
            for item in page.get("Items", []):
                record = _record(item)
                if re.fullmatch(r"\d{4}", record.number):
                    found[record.number] = record
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, item_id: str) -> dict[str, Any] | None:
        key = {"Key": {"id": {"S": item_id}}, "ConsistentRead": True}
        item: dict[str, Any] | None = self.call("GetItem", key).get("Item")
        return item

    def is_applied(self, number: str) -> bool:
        item = self.get(number)
        return item is not None and _record(item).status == "applied"

    def applied(self, migration: Migration, *, at: datetime, duration_ms: float) -> None:
        item = {
            "id": {"S": migration.number},
            "status": {"S": "applied"},
            "description": {"S": migration.description},
            "checksum": {"S": migration.checksum},
            "applied_at": {"S": at.isoformat()},
            "duration_ms": {"N": f"{duration_ms:.3f}"},
        }
        self.call("PutItem", {"Item": item})

    def failed(self, migration: Migration, *, error: str, at: datetime) -> None:
        names = {"#s": "status", "#e": "error", "#d": "description", "#c": "checksum"}
        names["#t"] = "failed_at"
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": migration.number}},
                "UpdateExpression": "SET #s = :s, #e = :e, #d = :d, #c = :c, #t = :t",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":s": {"S": "failed"},
                    ":e": {"S": error[:2000] or "failed"},
                    ":d": {"S": migration.description},
                    ":c": {"S": migration.checksum},
                    ":t": {"S": at.isoformat()},
                },
            },
        )

    def forget(self, number: str) -> None:
        self.call("DeleteItem", {"Key": {"id": {"S": number}}})

    def checkpoint(self, number: str, key: str) -> str | None:
        item = self.get(number) or {}
        value = item.get(_CHECKPOINT + key, {}).get("S")
        return value if isinstance(value, str) else None

    def save_checkpoint(self, number: str, key: str, value: str) -> None:
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": number}},
                "UpdateExpression": "SET #k = :v",
                "ExpressionAttributeNames": {"#k": _CHECKPOINT + key},
                "ExpressionAttributeValues": {":v": {"S": value}},
            },
        )


class _Lock:
    """The run lock: a conditional PutItem with a lease, renewed by a heartbeat thread."""

    def __init__(self, history: _History, *, lease: float = _LEASE_SECONDS) -> None:
        self.history = history
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, *, timeout: float, console: Console) -> None:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            now = time.time()
            try:
                self.history.call(
                    "PutItem",
                    {
                        "Item": {
                            "id": {"S": _LOCK_ID},
                            "owner": {"S": self.owner},
                            "expires_at": {"N": str(int(now + self.lease))},
                            "acquired_at": {"S": datetime.now(UTC).isoformat()},
                        },
                        "ConditionExpression": "attribute_not_exists(#id) OR #x < :now",
                        "ExpressionAttributeNames": {"#id": "id", "#x": "expires_at"},
                        "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
                    },
                )
                break
            except ConditionFailed:
                holder = self.history.get(_LOCK_ID) or {}
                who = holder.get("owner", {}).get("S", "?")
                if time.monotonic() >= deadline:
                    until = holder.get("expires_at", {}).get("N", "0")
                    when = datetime.fromtimestamp(float(until), tz=UTC).isoformat(
                        timespec="seconds"
                    )
                    raise MigrationError(
                        f"another migration run ({who}) holds the lock in "
                        f"{self.history.table} until {when}; try again later"
                    ) from None
                if not announced:
                    console.print(f"waiting for the migration lock held by {escape(who)}")
                    announced = True
                time.sleep(_POLL_SECONDS)
        self._thread = threading.Thread(target=self._renew, daemon=True, name="portchops-lock")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.history.call(
                    "UpdateItem",
                    {
                        "Key": {"id": {"S": _LOCK_ID}},
                        "UpdateExpression": "SET #x = :t",
                        "ConditionExpression": "#o = :me",
                        "ExpressionAttributeNames": {"#o": "owner", "#x": "expires_at"},
                        "ExpressionAttributeValues": {
                            ":t": {"N": str(int(time.time() + self.lease))},
                            ":me": {"S": self.owner},
                        },
                    },
                )
            except ConditionFailed:
                self._lost.set()
                return
            except PortChopsError:
                continue  # transient: the next beat tries again while the lease lasts

    def check(self) -> None:
        if self._lost.is_set():
            raise MigrationError(f"lost the migration lock in {self.history.table}; stopping")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(ConditionFailed):  # the lease ran out: someone else has it
            self.history.call(
                "DeleteItem",
                {
                    "Key": {"id": {"S": _LOCK_ID}},
                    "ConditionExpression": "#o = :me",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": {":me": {"S": self.owner}},
                },
            )


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, kw_only=True)
class MigrationContext:
    """What a step's ``up(ctx)`` / ``down(ctx)`` gets.

    Attributes:
        number: the running migration's number, e.g. ``"0004"``.
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
    _history: _History = field(repr=False)
    _lock: _Lock = field(repr=False)
    _hook: CheckpointHook | None = field(default=None, repr=False)

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
        return _send(self.conn, self.retry, self.metrics, operation, dict(params))

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
        return self._history.checkpoint(self.number, _check_key(key))

    def save_checkpoint(self, key: str, value: str) -> None:
        """Store a resume point (e.g. a scan position) for this migration in the history."""
        key = _check_key(key)
        if self._hook is not None:
            self._hook(self.number, key, value)
        self._lock.check()
        self._history.save_checkpoint(self.number, key, value)

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


# --------------------------------------------------------------------------- verbs


@dataclass(frozen=True)
class StepResult:
    """What `upgrade` / `downgrade` did (or, in a dry run, would do) for one step."""

    number: str
    description: str
    action: Literal["applied", "reverted", "would apply", "would revert"]
    duration_ms: float


MigrationState = Literal["applied", "pending", "failed", "missing"]


@dataclass(frozen=True)
class MigrationStatus:
    """One row of `status`.

    Attributes:
        state: ``"applied"``, ``"pending"``, ``"failed"`` (last run raised; it will be
            retried) or ``"missing"`` (recorded as applied but its file is gone).
        checksum_ok: for applied steps, whether the file is unchanged since; else None.
        problem: why `upgrade` would refuse to run (gap, edited file), or None.
    """

    number: str
    description: str
    state: MigrationState
    applied_at: datetime | None
    duration_ms: float | None
    checksum_ok: bool | None
    error: str | None
    problem: str | None

    @property
    def applied(self) -> bool:
        """True when the step is recorded as applied."""
        return self.state in ("applied", "missing")


def _problems(migrations: Sequence[Migration], records: Mapping[str, _Record]) -> dict[str, str]:
    files = {m.number: m for m in migrations}
    applied = {n: r for n, r in records.items() if r.status == "applied"}
    found: dict[str, str] = {}
    for number in sorted(set(applied) - set(files)):
        found[number] = (
            f"migration {number} ({applied[number].description}) is applied but its file is "
            "missing: restore it (gap in the history)"
        )
    top = max(applied, default="0000")
    for m in migrations:
        if m.number not in applied and m.number < top:
            found[m.number] = (
                f"migration {m.path.name} is pending but {top} is already applied: "
                f"renumber it above {top} (gap in the history)"
            )
        elif m.number in applied and applied[m.number].checksum != m.checksum:
            found[m.number] = (
                f"migration {m.path.name} was edited after it was applied (checksum differs): "
                "restore it, or pass --allow-edited"
            )
    return found


def _validate(
    migrations: Sequence[Migration], records: Mapping[str, _Record], *, allow_edited: bool
) -> None:
    for text in _problems(migrations, records).values():
        if not (allow_edited and "was edited" in text):
            raise MigrationError(text)


def _resolve(target: str, migrations: Sequence[Migration], *, allow_zero: bool) -> str:
    known = [m.number for m in migrations]
    span = f"{known[0]}..{known[-1]}" if known else "none"
    text = str(target).strip()
    if not re.fullmatch(r"\d{1,4}", text):
        raise MigrationError(f"unknown migration target {target!r}: expected NNNN ({span})")
    number = f"{int(text):04d}"
    if (number == "0000" and allow_zero) or number in known:
        return number
    raise MigrationError(f"unknown migration target {target!r}: no migration {number} ({span})")


class _Runner:
    def __init__(
        self, console: Console | None, metrics: Metrics | None, hook: CheckpointHook | None
    ) -> None:
        self.console = console or Console()
        self.metrics = metrics if metrics is not None else default_metrics()
        self.hook = hook
        self.conn = current_connection()
        self.history = _History(self.conn)

    def records(self) -> dict[str, _Record]:
        return self.history.records() if self.history.exists() else {}

    @contextmanager
    def locked(self, timeout: float) -> Iterator[_Lock]:
        self.history.ensure()
        lock = _Lock(self.history)
        lock.acquire(timeout=timeout, console=self.console)
        try:
            yield lock
        finally:
            lock.release()

    def run(self, m: Migration, step: _Step, lock: _Lock) -> float:
        ctx = MigrationContext(
            number=m.number,
            conn=self.conn,
            console=self.console,
            metrics=self.metrics,
            retry=self.history.retry,
            _history=self.history,
            _lock=lock,
            _hook=self.hook,
        )
        start = time.perf_counter()
        step(ctx)
        return (time.perf_counter() - start) * 1000

    def plan(self, verb: str, m: Migration) -> None:
        self.console.print(f"{verb} [bold]{m.number}[/] {escape(m.description)}")


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
        target: the last number to apply, e.g. ``"0003"``.
        dry_run: print what would be applied; change nothing.
        path: the migrations directory (default: `default_path`).
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
        if target is not None:
            last = _resolve(target, migrations, allow_zero=False)
        elif migrations:
            last = migrations[-1].number
        else:
            return []
        runner = _Runner(console, metrics, on_checkpoint)
        if dry_run:
            records = runner.records()
            _validate(migrations, records, allow_edited=allow_edited)
            todo = _pending(migrations, records, last)
            for m in todo:
                _load(m)
                runner.plan("would apply", m)
            return [StepResult(m.number, m.description, "would apply", 0.0) for m in todo]
        results: list[StepResult] = []
        with runner.locked(lock_timeout) as lock:
            records = runner.history.records()
            _validate(migrations, records, allow_edited=allow_edited)
            todo = _pending(migrations, records, last)
            steps = {m.number: _load(m) for m in todo}
            for m in todo:
                lock.check()
                if runner.history.is_applied(m.number):
                    continue  # applied by another runner whose lease ran out
                results.append(_apply(runner, m, steps[m.number], lock))
        if not results:
            runner.console.print(f"nothing to apply (up to {last})")
        return results


def _is_applied(record: _Record | None) -> bool:
    return record is not None and record.status == "applied"


def _pending(
    migrations: Sequence[Migration], records: Mapping[str, _Record], last: str
) -> list[Migration]:
    return [m for m in migrations if m.number <= last and not _is_applied(records.get(m.number))]


def _apply(runner: _Runner, m: Migration, steps: _Steps, lock: _Lock) -> StepResult:
    runner.plan("applying", m)
    started = datetime.now(UTC)
    try:
        ms = runner.run(m, steps.up, lock)
    except Exception as err:
        reason = _one_line(err)
        with contextlib.suppress(PortChopsError):  # the step's error says more
            runner.history.failed(m, error=reason, at=started)
        raise MigrationError(f"migration {m.number} ({m.description}) failed: {reason}") from err
    runner.history.applied(m, at=started, duration_ms=ms)
    runner.console.print(f"  applied {m.number} in {ms:.0f} ms")
    return StepResult(m.number, m.description, "applied", ms)


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
    stops the run and leaves that step recorded as applied.

    Returns:
        One `StepResult` per step reverted (or that would be, in a dry run).

    Raises:
        MigrationError: unknown target, gap, edited file, a step without ``down``,
            a failing ``down``, lock busy.
    """
    with connection_errors():
        migrations = discover(path)
        floor = _resolve(target, migrations, allow_zero=True)
        runner = _Runner(console, metrics, None)

        def plan(records: Mapping[str, _Record]) -> list[tuple[Migration, _Step]]:
            _validate(migrations, records, allow_edited=allow_edited)
            todo: list[tuple[Migration, _Step]] = []
            for m in reversed(migrations):
                if m.number > floor and _is_applied(records.get(m.number)):
                    down = _load(m).down
                    if down is None:
                        raise MigrationError(
                            f"migration {m.number} ({m.description}) cannot be undone "
                            f"(it has no down()): downgrade to {m.number} or later"
                        )
                    todo.append((m, down))
            return todo

        if dry_run:
            todo = plan(runner.records())
            for m, _ in todo:
                runner.plan("would revert", m)
            return [StepResult(m.number, m.description, "would revert", 0.0) for m, _ in todo]
        results: list[StepResult] = []
        if not runner.history.exists():
            return results
        with runner.locked(lock_timeout) as lock:
            records = runner.history.records()
            for m, down in plan(records):
                lock.check()
                if not runner.history.is_applied(m.number):
                    continue
                runner.plan("reverting", m)
                try:
                    ms = runner.run(m, down, lock)
                except Exception as err:
                    reason = _one_line(err)
                    raise MigrationError(f"reverting {m.number} failed: {reason}") from err
                runner.history.forget(m.number)
                runner.console.print(f"  reverted {m.number} in {ms:.0f} ms")
                results.append(StepResult(m.number, m.description, "reverted", ms))
            for number, record in records.items():  # failed or interrupted: drop checkpoints
                if number > floor and not _is_applied(record):
                    runner.history.forget(number)
        return results


def status(*, path: Path | str | None = None) -> list[MigrationStatus]:
    """Every migration (files and history), by number: applied or not, when, how long,
    whether the file is unchanged, and any problem that would stop `upgrade`.

    Reads only: the history table is not created.
    """
    with connection_errors():
        migrations = discover(path)
        records = _Runner(Console(quiet=True), None, None).records()
    problems = _problems(migrations, records)
    rows: list[MigrationStatus] = []
    files = {m.number: m for m in migrations}
    for number in sorted(set(files) | {n for n, r in records.items() if r.status == "applied"}):
        m, r = files.get(number), records.get(number)
        done = r is not None and r.status == "applied"
        state: MigrationState = "pending"
        if m is None:
            state = "missing"
        elif r is not None and r.status in ("applied", "failed"):
            state = "applied" if r.status == "applied" else "failed"
        rows.append(
            MigrationStatus(
                number=number,
                description=m.description if m else (r.description if r else ""),
                state=state,
                applied_at=r.applied_at if r and done else None,
                duration_ms=r.duration_ms if r and done else None,
                checksum_ok=(r.checksum == m.checksum) if (m and r and done) else None,
                error=r.error if r and state == "failed" else None,
                problem=problems.get(number),
            )
        )
    return rows

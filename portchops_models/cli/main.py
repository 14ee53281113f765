"""The ``portchops`` command. Each verb is a typed function elsewhere; this only wires them.

Commands use the settings from the environment (``PORTCHOPS_ENDPOINT_URL``,
``PORTCHOPS_TABLE_PREFIX``...). A `PortChopsError` prints one line,
``error: ...``, on stderr and exits with status 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from ..admin.iam import DEFAULT_LEADING_KEY_VARIABLE, DEFAULT_TABLE_ARN_PREFIX
from ..errors import PortChopsError
from ..models.base import BaseModel

app = typer.Typer(help="port-chops data layer: demo, local engine, migrations, seeds, IAM.")
migrate_app = typer.Typer(
    help="Apply, undo and inspect the schema migrations (migrations/NNNN_*.py).",
    no_args_is_help=True,
)
app.add_typer(migrate_app, name="migrate")
streams_app = typer.Typer(
    help="Read a model's change stream: run a handler over it, or evict changed items from "
    "every process's cache.",
    no_args_is_help=True,
)
app.add_typer(streams_app, name="streams")

_TO_HELP = "Last migration to apply, e.g. 0003 (default: all)."
_PATH_HELP = (
    "Migrations directory (default: the package's own). An app folder's history is "
    "kept apart under its namespace: NAMESPACE in its __init__.py, else the folder name. "
    "Its steps import the app's modules from sys.path or the current directory."
)
_MODEL_HELP = (
    "An app model to cover too, as package.module:ClassName (repeatable); "
    "the module is imported from sys.path or the current directory."
)
_EDITED_HELP = "Run even though an applied migration file was edited since."
_YES_HELP = "Confirm reverting on an endpoint that is not loopback (e.g. real AWS)."


@contextmanager
def _errors() -> Iterator[None]:
    """Print a `PortChopsError` as one ``error:`` line on stderr and exit 1."""
    try:
        yield
    except PortChopsError as err:
        typer.echo(f"error: {' '.join(str(err).split())}", err=True)
        raise typer.Exit(1) from None


@app.command()
def demo() -> None:
    """Run the demo on the embedded engine and print a summary."""
    from .demo import run_demo

    run_demo()


@app.command()
def engine(
    port: int = typer.Option(8000, help="Port on 127.0.0.1, 1-65535 (0 picks a free one)."),
) -> None:
    """Serve the embedded engine (moto) on 127.0.0.1 until interrupted.

    A port out of range or already taken exits 2 at once with one ``error:`` line.
    """
    import threading

    from ..testing.engine import LocalEngine

    try:
        running = LocalEngine(port=port).start()
    except OSError as err:
        typer.echo(f"error: --port {port}: {err.strerror or err}", err=True)
        raise typer.Exit(2) from None
    with running:
        typer.echo(f"DynamoDB-compatible engine at {running.endpoint_url} (Ctrl-C stops it)")
        typer.echo(f"export PORTCHOPS_ENDPOINT_URL={running.endpoint_url}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopped")


PathOption = Annotated[Path | None, typer.Option("--path", help=_PATH_HELP)]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print what would run; change nothing (up also runs the backfills' "
        "functions on every row, sending no write, and reports the counts).",
    ),
]
EditedOption = Annotated[bool, typer.Option("--allow-edited", help=_EDITED_HELP)]


def importable_from_cwd() -> None:
    """Let the modules of the current directory import, as ``iam-policy --model`` does.

    A console script's ``sys.path`` starts with its own folder, not the current
    directory; the directory is put first when it is missing, so a step in
    ``myapp/migrations`` can ``from myapp.models import Lesson`` when ``portchops
    migrate`` runs from the app's root.
    """
    import importlib

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a module written since the last import is found


@migrate_app.command("up")
def migrate_up(
    to: Annotated[str | None, typer.Option("--to", metavar="NNNN", help=_TO_HELP)] = None,
    dry_run: DryRunOption = False,
    allow_edited: EditedOption = False,
    path: PathOption = None,
) -> None:
    """Apply the pending migrations, in order."""
    from ..migrate import upgrade
    from ..migrate.backfills.command import sigterm_interrupts

    importable_from_cwd()
    with _errors(), sigterm_interrupts():  # SIGTERM hands the backfill segments back
        upgrade(to, dry_run=dry_run, path=path, allow_edited=allow_edited)


@migrate_app.command("down")
def migrate_down(
    to: Annotated[str, typer.Option("--to", metavar="NNNN", help="Undo the ones after this.")],
    dry_run: DryRunOption = False,
    allow_edited: EditedOption = False,
    path: PathOption = None,
    yes: Annotated[bool, typer.Option("--yes", help=_YES_HELP)] = False,
) -> None:
    """Undo the applied migrations numbered above --to (0000: all), newest first.

    Reverting drops tables or data: unless the endpoint is loopback (or it is a dry
    run), it needs --yes; without it nothing is sent and the command exits 2.
    """
    from ..migrate import downgrade
    from ..settings import current_settings
    from .guard import is_loopback

    with _errors():
        settings = current_settings()
        if not (dry_run or yes or is_loopback(settings.endpoint_url)):
            where = settings.endpoint_url or f"AWS ({settings.region})"
            typer.echo(
                f"error: migrate down --to {to} drops tables or data on {where}, not a "
                "loopback endpoint: add --yes to confirm (--dry-run shows what would be undone)",
                err=True,
            )
            raise typer.Exit(2)
        importable_from_cwd()
        downgrade(to, dry_run=dry_run, path=path, allow_edited=allow_edited)


_STEP_ARGUMENT = typer.Argument(metavar="STEP", help="The step, e.g. 0005 (or lessons:0005).")


@migrate_app.command("pause")
def migrate_pause(step: Annotated[str, _STEP_ARGUMENT], path: PathOption = None) -> None:
    """Pause the step's backfills: workers hand their segments back after the page they
    are on and wait (checkpoints kept) until `migrate resume`."""
    _control(step, "pause", path)


@migrate_app.command("resume")
def migrate_resume(step: Annotated[str, _STEP_ARGUMENT], path: PathOption = None) -> None:
    """Resume the step's paused backfills where they stopped."""
    _control(step, "resume", path)


@migrate_app.command("cancel")
def migrate_cancel(step: Annotated[str, _STEP_ARGUMENT], path: PathOption = None) -> None:
    """Cancel the step's backfills for good; returns once no worker can write for them
    (at most a lease later). The step fails; running it again starts over."""
    _control(step, "cancel", path)


def _control(step: str, action: Literal["pause", "resume", "cancel"], path: Path | None) -> None:
    from ..migrate import control

    with _errors():
        control(step, action, path=path)


_VERSIONS_HELP = (
    "A versioned model (package.module:ClassName, repeatable): print its rows by schema "
    "version after the steps."
)
_SAMPLE_HELP = "Count the versions of the first N rows of each --model only (a sample)."


@migrate_app.command("status")
def migrate_status(
    path: PathOption = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="MODULE:CLASS", help=_VERSIONS_HELP)
    ] = None,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help=_SAMPLE_HELP)] = None,
) -> None:
    """Show the folder's migrations (only its own namespace): applied or pending, when,
    how long; with --model, each model's rows by schema version; exit 1 on a problem."""
    from rich.console import Console
    from rich.table import Table

    from ..migrate import namespace_of, status

    with _errors():
        rows = status(path=path)
        namespace = namespace_of(path)
    table = Table(title=f"migrations: {escape(namespace)}" if namespace else "migrations")
    table.add_column("id", no_wrap=True)
    for column in ("description", "state", "applied at", "took", "file"):
        table.add_column(column)
    colours = {"applied": "green", "pending": "yellow", "running": "cyan", "failed": "red"}
    colours["missing"] = "red"
    for row in rows:
        when = row.applied_at.strftime("%Y-%m-%d %H:%M:%S") if row.applied_at else ""
        took = f"{row.duration_ms:.0f} ms" if row.duration_ms is not None else ""
        file = {True: "unchanged", False: "EDITED", None: ""}[row.checksum_ok]
        state = f"[{colours[row.state]}]{row.state}[/]"
        table.add_row(escape(row.id), escape(row.description), state, when, took, file)
    Console().print(table)
    _print_backfills(path)
    if model:
        from .versions import print_version_counts

        with _errors():
            print_version_counts(_models("--model", model), sample=sample, console=Console())
    problems = [row.problem for row in rows if row.problem] + [
        f"migration {row.id} failed: {row.error}" for row in rows if row.error
    ]
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


def _print_backfills(path: Path | None) -> None:
    """The running backfills: segments done / leased / free, rows and the time left."""
    from rich.console import Console
    from rich.table import Table

    from ..migrate.backfills.command import backfill_status

    with _errors():
        running = backfill_status(path=path)
    if not running:
        return
    table = Table(title="backfills running")
    for column in ("step", "backfill", "done", "leased", "free", "rows", "rows/s", "left"):
        table.add_column(column)
    for b in running:
        left = "?" if b.eta_seconds is None else f"{b.eta_seconds:.0f} s"
        rows = f"{b.scanned:,}" + (f" of ~{b.estimate:,}" if b.estimate else "")
        table.add_row(
            escape(b.step_id), escape(b.name), f"{b.done}/{b.segments}", str(b.leased),
            str(b.free), rows, f"{b.rows_per_second:,.0f}", left,
        )  # fmt: skip
    Console().print(table)


@migrate_app.command("check")
def migrate_check(
    path: PathOption = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="MODULE:CLASS", help=_MODEL_HELP)
    ] = None,
    builtin: Annotated[
        bool,
        typer.Option("--builtin", help="The package's User and UserProgress too (an app folder)."),
    ] = False,
) -> None:
    """Compare the live tables (keys, indexes and projections, TTL, stream, PITR,
    encryption) with the models and the folder's history; print every difference and
    exit 1 if there is any (read only, for CI before a deploy)."""
    from rich.console import Console

    from .drift import drift_check, print_report

    models = _models("--model", model)
    with _errors():
        report = drift_check(path=path, models=models, builtin=builtin)
    print_report(report, Console(soft_wrap=True, highlight=False))
    if not report.ok:
        raise typer.Exit(1)


_WAIT_HELP = "Seconds to wait for a backfill to start (0: exit at once when none is running)."
_THREADS_HELP = "Segments this process works on at once (default: the backfill's threads)."
_LEASE_HELP = "Lease length in seconds (default: the backfill's lease_seconds)."


@migrate_app.command("work")
def migrate_work(
    path: PathOption = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help=_WAIT_HELP)] = 0.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help=_THREADS_HELP)] = None,
    lease_seconds: Annotated[
        float | None, typer.Option("--lease-seconds", min=0.1, help=_LEASE_HELP)
    ] = None,
) -> None:
    """Join the backfill of the step being applied (from any number of processes or
    machines); exit when every segment is done."""
    from ..migrate.backfills.command import work

    importable_from_cwd()
    with _errors():
        work(path=path, wait=wait, threads=threads, lease_seconds=lease_seconds)


_STREAM_MODEL_HELP = "The model whose table's stream is read, as package.module:ClassName."
_UNTIL_IDLE_HELP = "Exit once every shard has been read to the stream's head."
_STREAM_LEASE_HELP = (
    "Seconds a shard's lease lasts unrenewed (a dead worker's shards move after it)."
)


def _model_option(reference: str) -> type[BaseModel]:
    try:
        return import_model(reference)
    except ValueError as err:
        typer.echo(f"error: --model {reference}: {' '.join(str(err).split())}", err=True)
        raise typer.Exit(2) from None


@streams_app.command("run")
def streams_run(
    model: Annotated[str, typer.Option("--model", metavar="MODULE:CLASS", help=_STREAM_MODEL_HELP)],
    handler: Annotated[
        str,
        typer.Option(
            "--handler", metavar="MODULE:FUNC", help="Called with each list[Change] batch."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="The fleet's name (shared checkpoints).")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=1000)] = 100,
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", min=0.1, help=_STREAM_LEASE_HELP)
    ] = 30.0,
    until_idle: Annotated[bool, typer.Option("--until-idle", help=_UNTIL_IDLE_HELP)] = False,
) -> None:
    """Run a handler over a model's change stream, as one worker of a fleet: every shard,
    in order per key, checkpointed after each batch; a failing batch is retried and a
    record that keeps failing reported."""
    from rich.console import Console

    from .streams import run

    chosen = _model_option(model)
    try:
        func = import_object(handler, "function")
    except ValueError as err:
        typer.echo(f"error: --handler {handler}: {' '.join(str(err).split())}", err=True)
        raise typer.Exit(2) from None
    if not callable(func):
        typer.echo(f"error: --handler {handler}: not callable", err=True)
        raise typer.Exit(2)
    with _errors():
        run(
            chosen, func, name=name, batch_size=batch_size, lease_seconds=lease_seconds,
            until_idle=until_idle, console=Console(),
        )  # fmt: skip


@streams_app.command("evict")
def streams_evict(
    model: Annotated[str, typer.Option("--model", metavar="MODULE:CLASS", help=_STREAM_MODEL_HELP)],
    name: Annotated[
        str | None, typer.Option("--name", help="The fleet's name (default: evict-<table>).")
    ] = None,
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", min=0.1, help=_STREAM_LEASE_HELP)
    ] = 30.0,
    until_idle: Annotated[bool, typer.Option("--until-idle", help=_UNTIL_IDLE_HELP)] = False,
) -> None:
    """Publish the key of every change to a model's table on the cache bus
    (PORTCHOPS_CACHE_BUS_URL), so writes from any origin evict every process's cache."""
    from rich.console import Console

    from .streams import evict

    chosen = _model_option(model)
    with _errors():
        evict(
            chosen, name=name, lease_seconds=lease_seconds, until_idle=until_idle, console=Console()
        )


@app.command("seed")
def seed_command(
    users: Annotated[int, typer.Option(min=0, max=9999, help="How many demo users.")] = 25,
    lessons: Annotated[int, typer.Option(min=0, max=999, help="Lessons per user.")] = 10,
) -> None:
    """Load deterministic demo data; only what is missing is written (idempotent)."""
    from .seed import seed

    with _errors():
        seed(users, lessons=lessons)


@app.command("iam-policy")
def iam_policy(
    table_arn_prefix: Annotated[
        str, typer.Option(help="Prepended to the table names.")
    ] = DEFAULT_TABLE_ARN_PREFIX,
    leading_keys: Annotated[
        bool, typer.Option("--leading-keys", help="Restrict callers to items keyed by their id.")
    ] = False,
    leading_key_variable: Annotated[
        str, typer.Option(help="IAM policy variable holding the caller's id.")
    ] = DEFAULT_LEADING_KEY_VARIABLE,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="MODULE:CLASS", help=_MODEL_HELP)
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="reader, writer, stream-worker or migrator (repeatable): only what that "
            "role's code sends, on the --model tables only.",
        ),
    ] = None,
    builtin: Annotated[
        bool,
        typer.Option("--builtin", help="With --role: the package's User and UserProgress too."),
    ] = False,
    scans: Annotated[
        bool, typer.Option("--scans", help="With --role: the code scans (grant Scan).")
    ] = False,
    identity_model: Annotated[
        list[str] | None,
        typer.Option(
            "--identity-model",
            metavar="MODULE:CLASS",
            help="With --role: a model keyed by the caller's identity (dynamodb:LeadingKeys).",
        ),
    ] = None,
) -> None:
    """Print an IAM policy (JSON). Without --role: the runtime policy, data-plane actions on
    the project's tables (User, UserProgress and every --model) and Query on their
    indexes. With --role: least privilege for that role, on the models named."""
    from ..admin.iam import policy_document
    from ..admin.roles import ROLES, role_policy

    models = _models("--model", model)
    identity = _models("--identity-model", identity_model)
    with _errors():
        if role:
            unknown = [r for r in role if r not in ROLES]
            if unknown:
                typer.echo(f"error: --role {unknown[0]}: one of {', '.join(ROLES)}", err=True)
                raise typer.Exit(2)
            try:
                doc = role_policy(
                    role,  # type: ignore[arg-type]  # checked against ROLES above
                    [*models, *identity],
                    builtin=builtin,
                    scans=scans,
                    identity=identity,
                    leading_key_variable=leading_key_variable,
                    table_arn_prefix=table_arn_prefix,
                )
            except ValueError as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(2) from None
        else:
            doc = policy_document(
                table_arn_prefix=table_arn_prefix,
                leading_keys=leading_keys,
                leading_key_variable=leading_key_variable,
                models=models,
            )
    typer.echo(json.dumps(doc, indent=2))


def _models(option: str, references: list[str] | None) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for reference in references or []:
        try:
            models.append(import_model(reference))
        except ValueError as err:
            typer.echo(f"error: {option} {reference}: {' '.join(str(err).split())}", err=True)
            raise typer.Exit(2) from None
    return models


def import_object(reference: str, shape: str = "name") -> object:
    """What ``package.module:name`` names (``name`` may be dotted).

    The module is imported as usual, from ``sys.path``; the current directory is
    put on it first if it is missing (a console script does not have it), so a
    module of the app next to where the command runs is found.

    Raises:
        ValueError: no colon, the module does not import, or no such attribute.
    """
    import importlib

    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected package.module:{shape}")
    importable_from_cwd()
    try:
        found: object = importlib.import_module(module_name)
    except Exception as err:
        raise ValueError(f"cannot import {module_name}: {type(err).__name__}: {err}") from err
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{module_name} has no attribute {attribute}")
        found = getattr(found, part)
    return found


def import_model(reference: str) -> type[BaseModel]:
    """The model class that ``package.module:ClassName`` names (see `import_object`).

    Raises:
        ValueError: the reference does not import, or it is not a `BaseModel` subclass
            with a ``base_table_name``.
    """
    found = import_object(reference, "ClassName")
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ValueError(f"{reference} is not a BaseModel subclass")
    if not found.base_table_name:
        raise ValueError(f"{reference} has no base_table_name (no table of its own)")
    return found


def main() -> None:
    """Entry point of the ``portchops`` console script."""
    app()

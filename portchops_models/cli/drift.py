"""`drift_check` (``portchops migrate check``): the live tables against the models and
the folder's history, for CI before a deploy.

The models checked are the ones given, plus the package's `User` and
`UserProgress` when the folder is the package's own migrations (the default) or
with ``builtin=True``. Read only (see `portchops_models.admin.drift`).

Example:
    >>> from portchops_models.cli.drift import drift_check
    >>> drift_check().ok                                       # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..admin.drift import DriftReport, check
from ..migrate import connection_errors, default_path, namespace_of, status
from ..models import BaseModel, User, UserProgress

__all__ = ["drift_check", "print_report"]


def drift_check(
    *,
    path: Path | str | None = None,
    models: Sequence[type[BaseModel]] = (),
    builtin: bool = False,
) -> DriftReport:
    """Check the tables of `models` (and of the package's models, for its own folder or
    with `builtin`) and the history of the migrations folder at `path`.

    Raises:
        PortChopsError: the engine could not be asked; `MigrationError` for a folder
            that cannot be read.
    """
    own = path is None or Path(path).resolve() == default_path().resolve()
    chosen = [*((User, UserProgress) if own or builtin else ()), *models]
    with connection_errors():
        steps = status(path=path)
        if own:
            folder, up = "the package's migrations", "portchops migrate up"
        else:
            folder = f"{path} (namespace {namespace_of(path)})"
            up = f"portchops migrate up --path {path}"
        return check(chosen, steps=steps, folder=folder, up=up)


def print_report(report: DriftReport, console: Console) -> None:
    """Each difference on a line of its own, the notes, then a summary line."""
    for difference in report.differences:
        console.print(f"[red]drift[/] {escape(difference.message)}")
    for note in report.notes:
        console.print(f"[yellow]note[/] {escape(note)}")
    checked = f"{len(report.tables)} table(s) and {report.steps} step(s)"
    if report.ok:
        console.print(f"[green]no drift[/]: {checked} match the models and the history")
    else:
        count = len(report.differences)
        console.print(f"[red]{count} difference(s)[/] in {checked}")

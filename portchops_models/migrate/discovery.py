"""Finding migration files (``NNNN_description.py``) and loading their ``up`` / ``down``."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MigrationError, _one_line

if TYPE_CHECKING:
    from .context import MigrationContext

_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.py$")


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
    package = Path(__file__).resolve().parent.parent  # portchops_models/
    checkout = package.parent / "migrations"
    return checkout if checkout.is_dir() else package / "migrations"


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

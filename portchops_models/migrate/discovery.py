"""Finding migration files (``NNNN_description.py``) and loading their ``up`` / ``down``."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import MigrationError, _one_line

_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.py$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A history id: ``NNNN`` (the package's own folder) or ``NAMESPACE:NNNN``.
_ID = re.compile(r"^(?:([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):)?(\d{4})$")


@dataclass(frozen=True)
class Migration:
    """One migration file: its number, description, path, checksum (sha256) and the
    namespace of its folder (``""`` for the package's own migrations).

    ``replaces`` holds the checksums of earlier versions of the file that a history
    may record for it (``REPLACES = (...)`` in the file): a step edited in how it runs,
    not in what it does (0005 moved its row writes under the lease's fence).
    """

    number: str
    description: str
    path: Path
    checksum: str
    namespace: str = ""
    replaces: frozenset[str] = frozenset()

    def matches(self, checksum: str | None) -> bool:
        """Whether a history's recorded `checksum` is this file (or one it replaces)."""
        return checksum == self.checksum or checksum in self.replaces

    @property
    def id(self) -> str:
        """Its item id in the history table: ``"0003"``, or ``"lessons:0003"`` in an app folder."""
        return _step_id(self.namespace, self.number)


def _step_id(namespace: str, number: str) -> str:
    return f"{namespace}:{number}" if namespace else number


def _parse_id(item_id: str) -> tuple[str, str] | None:
    """``"lessons:0003"`` -> ``("lessons", "0003")``, ``"0003"`` -> ``("", "0003")``; else None."""
    match = _ID.match(item_id)
    return (match.group(1) or "", match.group(2)) if match else None


#: A step's ``up`` or ``down``: called with the run's `MigrationContext` (not imported
#: here: the context reads the discovered steps, so the arrow runs from it to this module).
_Step = Callable[..., None]


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


def namespace_of(path: Path | str | None = None) -> str:
    """The namespace that keeps a folder's history apart from the others'.

    * The package's own folder (`default_path`, also when `path` is None): ``""``,
      so its steps keep the ids ``"0001"``, ``"0002"``... they always had.
    * Another folder: the string given by a module-level ``NAMESPACE = "lessons"``
      in the folder's ``__init__.py`` (read, not imported), else the folder's name.
      Its steps are recorded as ``"lessons:0001"``, ``"lessons:0002"``...

    A namespace is 1-64 letters, digits, ``_``, ``.`` or ``-``, starting with a
    letter or digit.

    Raises:
        MigrationError: ``NAMESPACE`` is not a string literal, or the namespace
            does not follow the rule above.
    """
    folder = Path(path) if path is not None else default_path()
    if folder.resolve() == default_path().resolve():
        return ""
    init = folder / "__init__.py"
    namespace, source = folder.resolve().name, f"the folder name of {folder}"
    if init.is_file():
        declared = _declared_namespace(init)
        if declared is not None:
            namespace, source = declared, f"NAMESPACE in {init}"
    if not _NAMESPACE.match(namespace):
        raise MigrationError(
            f"migration namespace {namespace!r} ({source}) must be 1-64 letters, digits, "
            "'_', '.' or '-': set NAMESPACE = \"name\" in the folder's __init__.py"
        )
    return namespace


def _declared_namespace(init: Path) -> str | None:
    try:
        with _PARSE_LOCK:
            tree = ast.parse(init.read_bytes(), filename=str(init))
    except (SyntaxError, ValueError) as err:
        raise MigrationError(f"cannot read {init}: {_one_line(err)}") from err
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "NAMESPACE" for t in targets):
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
            raise MigrationError(f"{init}: NAMESPACE must be a string literal")
    return None


def discover(path: Path | str | None = None) -> list[Migration]:
    """The migrations in a directory, by number (files named ``NNNN_description.py``),
    each with the folder's namespace (`namespace_of`).

    Raises:
        MigrationError: no such directory, a ``.py`` file starting with a digit that
            does not follow the pattern, a number used twice, a file that does not
            parse, or a bad namespace.
    """
    folder = Path(path) if path is not None else default_path()
    if not folder.is_dir():
        raise MigrationError(f"no migrations directory at {folder}: pass --path")
    namespace = namespace_of(folder)
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
                tree = ast.parse(source, filename=str(file))
            doc = ast.get_docstring(tree)
        except (SyntaxError, ValueError) as err:
            raise MigrationError(f"cannot read migration {file}: {_one_line(err)}") from err
        description = (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
        found[number] = Migration(
            number=number,
            description=description or match.group(2).replace("_", " "),
            path=file,
            checksum=hashlib.sha256(source).hexdigest(),
            namespace=namespace,
            replaces=_replaces(tree, file),
        )
    return [found[n] for n in sorted(found)]


def _replaces(tree: ast.Module, file: Path) -> frozenset[str]:
    """The checksums a file declares in ``REPLACES = ("<sha256>", ...)``: earlier
    versions of it with the same effect, read without importing it."""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id == "REPLACES"):
            continue
        values = node.value.elts if isinstance(node.value, ast.Tuple | ast.List) else []
        found = [v.value for v in values if isinstance(v, ast.Constant)]
        if len(found) != len(values) or not all(
            isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in found
        ):
            raise MigrationError(f"{file}: REPLACES is a tuple of sha256 checksums (hex)")
        return frozenset(str(v) for v in found)
    return frozenset()


@dataclass(frozen=True)
class Gap:
    """Numbers missing from a folder's sequence (``0001``, ``0002``, ``0004``: ``0003``).

    Attributes:
        missing: the absent numbers, in order (``("0003",)``).
        before: the file numbered just below the gap, or None when ``0001`` is missing.
        after: the first file above the gap.
    """

    missing: tuple[str, ...]
    before: Migration | None
    after: Migration

    def message(self, folder: Path, missing: Sequence[str] | None = None) -> str:
        """The one-line error: which step is missing, where, and how to fix it.

        Args:
            folder: the migrations folder, named in the message.
            missing: the numbers to name (default: all of `missing`).
        """
        numbers = list(missing if missing is not None else self.missing)
        space = self.after.namespace
        first, last = _step_id(space, numbers[0]), _step_id(space, numbers[-1])
        named = f"migration {first} is" if len(numbers) == 1 else f"migrations {first}..{last} are"
        where = (
            f"{self.before.path.name} is followed by {self.after.path.name}"
            if self.before is not None
            else f"its first file is {self.after.path.name} (numbering starts at 0001)"
        )
        return (
            f"{named} missing from {folder}: {where} (a gap in the numbering): "
            f"add {numbers[0]}_description.py, or renumber {self.after.path.name} and the "
            "files after it"
        )


def gaps(migrations: Sequence[Migration]) -> list[Gap]:
    """The gaps in the numbering of one folder's migrations (as `discover` returns them).

    A folder is numbered ``0001``, ``0002``... with no number skipped; each run of
    skipped numbers (``0001`` included, when the first file is above it) is a `Gap`.
    """
    found: list[Gap] = []
    previous: Migration | None = None
    for m in sorted(migrations, key=lambda m: m.number):
        below = int(previous.number) if previous is not None else 0
        if int(m.number) > below + 1:
            missing = tuple(f"{n:04d}" for n in range(below + 1, int(m.number)))
            found.append(Gap(missing=missing, before=previous, after=m))
        previous = m
    return found


def _load(migration: Migration) -> _Steps:
    """Import a migration file by path; its ``up`` and optional ``down``."""
    space = re.sub(r"\W", "_", migration.namespace)
    name = f"_portchops_migration_{space}_{migration.number}_{migration.checksum[:12]}"
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
        hint = ""
        if isinstance(err, ModuleNotFoundError):
            hint = (
                " (searched sys.path; `portchops migrate` adds the current directory to it: "
                "run it from the app's root, or install the app)"
            )
        raise MigrationError(
            f"cannot import migration {migration.path}: {_one_line(err)}{hint}"
        ) from err
    up, down = getattr(module, "up", None), getattr(module, "down", None)
    if not callable(up):
        raise MigrationError(f"migration {migration.path} has no up(ctx) function")
    return _Steps(up=up, down=down if callable(down) else None)

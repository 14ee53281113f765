"""Planning a run: what is pending, the target, and the checks (gaps, edited files).

Everything here works on one folder's namespace: the records passed in are that
namespace's, keyed by number, so another folder's steps never count as a gap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .discovery import Migration, _step_id
from .errors import MigrationError
from .history import _Record


def _elsewhere(record: _Record, folder: Path | None) -> str:
    """A hint when an app namespace's step was recorded from another folder."""
    if not record.namespace or record.folder is None or folder is None:
        return ""
    if record.folder == str(folder.resolve()):
        return ""
    return (
        f" (it was applied from {record.folder}: does another folder use "
        f"namespace {record.namespace!r}?)"
    )


def _problems(
    migrations: Sequence[Migration],
    records: Mapping[str, _Record],
    *,
    namespace: str = "",
    folder: Path | None = None,
) -> dict[str, str]:
    files = {m.number: m for m in migrations}
    applied = {n: r for n, r in records.items() if r.status == "applied"}
    found: dict[str, str] = {}
    for number in sorted(set(applied) - set(files)):
        record = applied[number]
        found[number] = (
            f"migration {_step_id(namespace, number)} ({record.description}) is applied but "
            f"its file is missing: restore it (gap in the history){_elsewhere(record, folder)}"
        )
    top = max(applied, default="0000")
    for m in migrations:
        if m.number not in applied and m.number < top:
            found[m.number] = (
                f"migration {m.path.name} is pending but {_step_id(namespace, top)} is already "
                f"applied: renumber it above {top} (gap in the history)"
            )
        elif m.number in applied and not m.matches(applied[m.number].checksum):
            found[m.number] = (
                f"migration {m.path.name} was edited after it was applied (checksum differs): "
                f"restore it, or pass --allow-edited{_elsewhere(applied[m.number], folder)}"
            )
    return found


def _validate(
    migrations: Sequence[Migration],
    records: Mapping[str, _Record],
    *,
    allow_edited: bool,
    namespace: str = "",
    folder: Path | None = None,
) -> None:
    for text in _problems(migrations, records, namespace=namespace, folder=folder).values():
        if not (allow_edited and "was edited" in text):
            raise MigrationError(text)


def _resolve(
    target: str, migrations: Sequence[Migration], *, allow_zero: bool, namespace: str = ""
) -> str:
    """The four-digit number `target` names in this folder: ``"3"``, ``"0003"``, or
    ``"lessons:0003"`` when the folder's namespace is ``lessons``."""
    known = [m.number for m in migrations]
    span = f"{_step_id(namespace, known[0])}..{_step_id(namespace, known[-1])}" if known else "none"
    text = str(target).strip()
    if namespace and text.startswith(f"{namespace}:"):
        text = text[len(namespace) + 1 :]
    if not re.fullmatch(r"\d{1,4}", text):
        raise MigrationError(f"unknown migration target {target!r}: expected NNNN ({span})")
    number = f"{int(text):04d}"
    if (number == "0000" and allow_zero) or number in known:
        return number
    raise MigrationError(
        f"unknown migration target {target!r}: no migration {_step_id(namespace, number)} ({span})"
    )


def _is_applied(record: _Record | None) -> bool:
    return record is not None and record.status == "applied"


def _pending(
    migrations: Sequence[Migration], records: Mapping[str, _Record], last: str
) -> list[Migration]:
    return [m for m in migrations if m.number <= last and not _is_applied(records.get(m.number))]

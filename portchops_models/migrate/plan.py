"""Planning a run: what is pending, the target, and the checks (gaps, edited files)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .discovery import Migration
from .errors import MigrationError
from .history import _Record


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


def _is_applied(record: _Record | None) -> bool:
    return record is not None and record.status == "applied"


def _pending(
    migrations: Sequence[Migration], records: Mapping[str, _Record], last: str
) -> list[Migration]:
    return [m for m in migrations if m.number <= last and not _is_applied(records.get(m.number))]

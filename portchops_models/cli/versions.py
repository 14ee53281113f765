"""``portchops migrate status --model mod:Model``: rows by schema version, after the steps."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from ..migrate.backfills.upcast import VersionCounts, version_counts
from ..models.base import BaseModel

__all__ = ["print_version_counts"]


def print_version_counts(
    models: Sequence[type[BaseModel]], *, sample: int | None, console: Console
) -> list[VersionCounts]:
    """Count each model's rows by version (`version_counts`) and print one row per model:
    ``v1: 29, v2: 1``, how many are older than the model, and whether the whole table was
    counted or a sample of it scanned."""
    found = [version_counts(model, sample=sample) for model in models]
    if not found:
        return found
    table = Table(title="schema versions")
    for column in ("model", "current", "rows by version", "older", "how"):
        table.add_column(column)
    for counts in found:
        by_version = ", ".join(f"v{v}: {n}" for v, n in sorted(counts.counts.items())) or "none"
        how = "counted" if counts.counted else f"sampled ({counts.scanned} rows)"
        colour = "green" if counts.older == 0 else "yellow"
        table.add_row(
            counts.model, str(counts.current), by_version, f"[{colour}]{counts.older}[/]", how
        )
    console.print(table)
    return found

"""Pins the backfill types with `assert_type`; checked by `mypy --strict` in `make test`.

The functions are never called: mypy reading them is the test.
"""

from __future__ import annotations

from typing import Any, Literal, assert_type

from portchops_models.migrate import (
    Backfill,
    BackfillProgress,
    BackfillResult,
    Batch,
    MigrationContext,
    Rate,
    backfill_status,
    work,
)
from portchops_models.models import UserProgress
from portchops_models.models.shape import RawItem


def one_row(batch: Batch, item: RawItem) -> bool:
    assert_type(batch.call("UpdateItem", {"TableName": batch.table}), dict[str, Any])
    assert_type(batch.segment, int)
    return True


def one_page(batch: Batch, items: list[RawItem]) -> int:
    assert_type(batch.items, list[RawItem])
    assert_type(batch.capacity, float)
    return len(items)


BY_ROW = Backfill(name="rows", model=UserProgress, per_item=one_row, rate=Rate(items_per_second=1))
BY_PAGE = Backfill(name="pages", model=UserProgress, per_page=one_page, segments=16)


def up(ctx: MigrationContext) -> None:
    result = BY_ROW.run(ctx)
    assert_type(result, BackfillResult)
    assert_type(result.written, int)
    assert_type(BY_PAGE.run(ctx, threads=8, lease_seconds=10.0).completed, bool)


def workers() -> None:
    assert_type(work(path="migrations", wait=60), BackfillResult | None)
    running = backfill_status(path="migrations")
    assert_type(running, list[BackfillProgress])
    assert_type(running[0].eta_seconds, float | None)
    assert_type(Rate(capacity_per_second=50).unit, Literal["items", "capacity"])

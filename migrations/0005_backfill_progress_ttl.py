"""Backfill ttl on progress rows written before TTL existed.

A row without ``ttl`` gets ``updatedAt + progress_ttl_hours`` (now + hours
when it has no readable ``updatedAt``), so it expires when it would have had
TTL existed (at once, if that moment has passed). Rows that have a ``ttl`` are
left untouched.

How: a parallel scan (`SEGMENTS` segments, `PAGE_SIZE` rows a page, reading
only the keys, ``updatedAt`` and ``ttl``), with one conditional UpdateItem per
row that lacks a ttl: ``SET ttl`` only if the row still exists and still has
no ttl. Not BatchWriteItem: a batch put rewrites the whole row from the scan
and cannot carry a condition, so an app write landing between the scan and the
put (``record_attempt`` on a live table) would be lost, and a row deleted
meanwhile would come back. The write capacity used is the same.

Resumable: after a page is written, its segment's scan position is saved as a
checkpoint in the history table. Run again after an interruption, each segment
resumes from its last checkpoint, so at most the pages in flight are scanned
again, and rewriting them is a no-op (the condition fails): no row is written
twice and none is missed. When one segment fails, the others finish and save
the page they are on before the step stops.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from portchops_models.errors import ConditionFailed
from portchops_models.migrate import MigrationContext
from portchops_models.models import UserProgress

SEGMENTS = 4
PAGE_SIZE = 50
_DONE = "done"

_HASH = UserProgress.user_id.attr_name
_RANGE = UserProgress.lesson_id.attr_name
_UPDATED = UserProgress.updated_at.attr_name
_TTL = UserProgress.ttl.attr_name


def up(ctx: MigrationContext) -> None:
    """Set the missing ttl values, segment by segment, page by page."""
    table = ctx.table_name(UserProgress)
    count = ctx.call("DescribeTable", {"TableName": table})["Table"].get("ItemCount", 0)
    stop = threading.Event()
    with ctx.progress() as bar:
        task = bar.add_task("backfill ttl", total=int(count) or None)

        def run(segment: int) -> int:
            try:
                return _segment(ctx, table, segment, stop, lambda n: bar.advance(task, n))
            except BaseException:
                stop.set()  # the others finish the page they are on, then stop
                raise

        with ThreadPoolExecutor(SEGMENTS, thread_name_prefix="backfill-ttl") as pool:
            futures = [pool.submit(run, segment) for segment in range(SEGMENTS)]
        written = sum(future.result() for future in futures)
    ctx.console.print(f"  set ttl on {written} row(s)")


def down(ctx: MigrationContext) -> None:
    """Nothing to undo: the ttl values are valid data (0003's down turns TTL off)."""


def _segment(
    ctx: MigrationContext,
    table: str,
    segment: int,
    stop: threading.Event,
    advance: Callable[[int], None],
) -> int:
    key = f"segment-{segment}-of-{SEGMENTS}"
    saved = ctx.checkpoint(key)
    if saved == _DONE:
        return 0
    start: dict[str, Any] | None = json.loads(saved) if saved else None
    hours = ctx.settings.progress_ttl_hours
    written = 0
    while not stop.is_set():
        params: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": SEGMENTS,
            "Limit": PAGE_SIZE,
            "ProjectionExpression": "#h, #r, #u, #t",
            "ExpressionAttributeNames": {"#h": _HASH, "#r": _RANGE, "#u": _UPDATED, "#t": _TTL},
        }
        if start:
            params["ExclusiveStartKey"] = start
        page = ctx.call("Scan", params)
        items = page.get("Items", [])
        written += sum(_set_ttl(ctx, table, item, hours) for item in items if _TTL not in item)
        last = page.get("LastEvaluatedKey")
        ctx.save_checkpoint(key, json.dumps(last, sort_keys=True) if last else _DONE)
        advance(len(items))
        if not last:
            break
        start = last
    return written


def _expiry(item: dict[str, Any], hours: float) -> int:
    base = time.time()
    raw = item.get(_UPDATED, {}).get("S")
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):  # unreadable: treated as absent
            base = datetime.fromisoformat(raw).timestamp()
    return int(base + hours * 3600)


def _set_ttl(ctx: MigrationContext, table: str, item: dict[str, Any], hours: float) -> int:
    try:
        ctx.call(
            "UpdateItem",
            {
                "TableName": table,
                "Key": {_HASH: item[_HASH], _RANGE: item[_RANGE]},
                "UpdateExpression": "SET #t = :t",
                "ConditionExpression": "attribute_exists(#h) AND attribute_not_exists(#t)",
                "ExpressionAttributeNames": {"#h": _HASH, "#t": _TTL},
                "ExpressionAttributeValues": {":t": {"N": str(_expiry(item, hours))}},
            },
        )
    except ConditionFailed:
        return 0  # set meanwhile (by the app, or by the run this one resumes), or deleted
    return 1

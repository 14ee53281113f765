"""Backfill ttl on progress rows written before TTL existed.

A row without ``ttl`` gets ``updatedAt + progress_ttl_hours`` (now + hours
when it has no readable ``updatedAt``), so it expires when it would have had
TTL existed (at once, if that moment has passed). Rows that have a ``ttl`` are
left untouched.

How: a `Backfill` (`portchops_models.migrate.backfills.backfill`), a parallel scan of
`SEGMENTS` segments, `PAGE_SIZE` rows a page, handing over only the rows without
a ttl and reading only their keys and ``updatedAt``, with one conditional
UpdateItem per row: ``SET ttl`` only if the row still exists and still has no
ttl, fenced by the segment's lease (`Batch.fenced`: applied only while the lease
is still this worker's, so a worker frozen past its lease writes nothing when it
wakes). Not BatchWriteItem: a batch put rewrites the whole row from the scan and
cannot carry a condition, so an app write landing between the scan and the put
(``record_attempt`` on a live table) would be lost, and a row deleted meanwhile
would come back. The fence makes each row write a two-item transaction (4 write units
for a small row, against 1): the price of never writing under a lost lease.

Resumable and shared: after a page is written, its segment's scan position is
saved as a checkpoint under the segment's lease. Run again after an
interruption, each segment resumes from its last checkpoint, so at most the pages
in flight are scanned again, and rewriting them is a no-op (the condition
fails): no row is written twice and none is missed. `portchops migrate work`
processes started meanwhile take segments of their own. When one segment fails,
the others finish and save the page they are on before the step stops.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from portchops_models.errors import ConditionFailed
from portchops_models.migrate import MigrationContext
from portchops_models.migrate.backfills.backfill import Backfill, Batch
from portchops_models.models import UserProgress
from portchops_models.models.projections import Projection
from portchops_models.models.shape import RawItem, shape_of
from portchops_models.settings import current_settings

#: Earlier versions of this file, with the same effect (the writes were not fenced).
REPLACES = (
    "9287336d337f2a5e72e89813342e857b757cd940360cb7373ddc78eb7d278532",
    "3af079af19573ad9b5e8ab6561999f01126fb45060feb70a3d64cf1e9c4e8b71",
    "139059af2c045425344486b98ca452a8f3c629789def63b216bb14b42f92723c",
)
SEGMENTS = 4
PAGE_SIZE = 50

_SHAPE = shape_of(UserProgress)
_UPDATED = UserProgress.updated_at.attr_name
_TTL = UserProgress.ttl.attr_name


class _Dates(Projection[UserProgress]):
    """What the scan reads: the keys (always), ``updatedAt`` and ``ttl``."""

    updated_at: datetime | None = None


def _expiry(item: RawItem, hours: float) -> int:
    base = time.time()
    raw = item.get(_UPDATED, {}).get("S")
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):  # unreadable: treated as absent
            base = datetime.fromisoformat(raw).timestamp()
    return int(base + hours * 3600)


def _set_ttl(batch: Batch, item: RawItem) -> bool:
    hours = current_settings().progress_ttl_hours
    try:
        batch.fenced(
            "Update",
            {
                "Key": {name: item[name] for name in _SHAPE.key_names},
                "UpdateExpression": "SET #t = :t",
                "ConditionExpression": "attribute_exists(#h) AND attribute_not_exists(#t)",
                "ExpressionAttributeNames": {"#h": _SHAPE.hash_key.name, "#t": _TTL},
                "ExpressionAttributeValues": {":t": {"N": str(_expiry(item, hours))}},
            },
        )
    except ConditionFailed:
        return False  # set meanwhile (by the app, or by the run this one resumes), or deleted
    return True


BACKFILL = Backfill(
    name="ttl",
    model=UserProgress,
    per_item=_set_ttl,
    projection=_Dates,
    filter_condition=UserProgress.ttl.does_not_exist(),
    segments=SEGMENTS,
    page_size=PAGE_SIZE,
)


def up(ctx: MigrationContext) -> None:
    """Set the missing ttl values, segment by segment, page by page."""
    result = BACKFILL.run(ctx)
    ctx.console.print(f"  set ttl on {result.written} row(s)")


def down(ctx: MigrationContext) -> None:
    """Nothing to undo: the ttl values are valid data (0003's down turns TTL off)."""

"""The converging backfill and the version counts of a versioned model's table.

A model moved to a new ``schema_version`` (`portchops_models.models.versions`) reads its
older items through its upcasters; `converging_backfill` rewrites them in the current
shape, so the upcasters stop running and the table holds one shape again::

    # migrations/0002_people_v2.py
    BACKFILL = converging_backfill(Person)

    def up(ctx: MigrationContext) -> None:
        BACKFILL.run(ctx)

Each row below the current version is upcast, decoded and written back with a PutItem
conditional on the row being still what the scan read (its stamp, and its
optimistic-lock version when the model has one): a concurrent write wins and the row
is skipped (it is current already, or will be converged by the write that needs it).
A page handed out again after a crash rewrites nothing twice: rows already converged
are current. `version_counts` says how many rows of each version remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import ConditionFailed, InvalidRequest
from ...models.base import BaseModel
from ...models.decoding import model_decoder
from ...models.shape import RawItem, TableShape, shape_of
from ...models.versions import STAMP, SchemaVersions
from ...ops.converge import converge_put
from ...transport.connection import current_connection
from .backfill import Backfill
from .worker import Batch

__all__ = ["VersionCounts", "converging_backfill", "version_counts"]


def _versions(shape: TableShape) -> SchemaVersions:
    versions = shape.versions
    if versions is None or not versions.upcasts:
        raise InvalidRequest(
            f"{shape.model.__name__} declares no schema_version above 1: nothing to converge"
        )
    return versions


def converging_backfill(
    model: type[BaseModel], *, name: str = "upcast", **options: Any
) -> Backfill:
    """A `Backfill` that rewrites every row of `model` older than its ``schema_version``
    through its upcasters (see the module docstring); `options` go to `Backfill`
    (``segments``, ``page_size``, ``rate``, ``threads``, ``lease_seconds``).

    Raises:
        InvalidRequest: the model has no schema version above 1, or `options` name a
            projection or a row function (the rewrite needs whole rows).
    """
    shape = shape_of(model)
    versions = _versions(shape)
    clash = sorted({"per_item", "per_page", "projection"} & set(options))
    if clash:
        raise InvalidRequest(f"converging_backfill sets {clash[0]} itself")
    decode = model_decoder(model)

    def converge(batch: Batch, item: RawItem) -> int:
        if not versions.older(item):
            return 0
        params = converge_put(shape, batch.table, item, decode)
        if params is None:
            return 0
        try:
            batch.call("PutItem", params)
        except ConditionFailed:
            return 0  # written meanwhile (a newer write, or another converge): it wins
        return 1

    return Backfill(name=name, model=model, per_item=converge, **options)


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """How many rows of a table are at each schema version.

    Attributes:
        model: the model's class name.
        current: the model's schema version.
        counts: rows by version (an unstamped row is version 1).
        counted: ``True`` when every row was read (exact counts); ``False`` when the scan
            stopped after `sample` rows (the counts are a sample).
        scanned: rows read.
    """

    model: str
    current: int
    counts: dict[int, int] = field(default_factory=dict)
    counted: bool = True
    scanned: int = 0

    @property
    def older(self) -> int:
        """Rows below the current version (read through upcasters until converged)."""
        return sum(n for version, n in self.counts.items() if version < self.current)


def version_counts(model: type[BaseModel], *, sample: int | None = None) -> VersionCounts:
    """Count `model`'s rows by schema version: a Scan reading only the keys and the stamp,
    of the whole table, or of its first `sample` rows (then ``counted`` is ``False``).

    Raises:
        InvalidRequest: the model declares no ``schema_version``, or `sample` is not a
            positive int.
    """
    shape = shape_of(model)
    versions = shape.versions
    if versions is None:
        raise InvalidRequest(f"{model.__name__} declares no schema_version")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)):
        raise InvalidRequest(f"sample must be a positive int, got {sample!r}")
    if sample is not None and sample < 1:
        raise InvalidRequest(f"sample must be a positive int, got {sample!r}")
    conn = current_connection()
    table = model.table_name()
    names = {f"#k{n}": name for n, name in enumerate((*shape.key_names, STAMP))}
    params: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    counts: dict[int, int] = {}
    scanned = 0
    while True:
        if sample is not None:
            params["Limit"] = min(1000, sample - scanned)
        page = conn.send("Scan", params, table=table)
        for item in shape.own(page.get("Items", [])):
            version = versions.version_of(item)
            counts[version] = counts.get(version, 0) + 1
        scanned += int(page.get("ScannedCount", len(page.get("Items", []))))
        last = page.get("LastEvaluatedKey")
        if last is None:
            return VersionCounts(model.__name__, versions.current, counts, True, scanned)
        if sample is not None and scanned >= sample:
            return VersionCounts(model.__name__, versions.current, counts, False, scanned)
        params["ExclusiveStartKey"] = last

"""Converging an item to its model's current schema version: one conditional PutItem.

An item stored in an older shape (`portchops_models.models.versions`) is rewritten as
its upcasters read it: upcast, decoded as the model, serialised again (sealed when the
model encrypts) and stamped with the current version. The put applies only while the
item is still exactly what was read: the same stamp (or none), and the same
optimistic-lock version when the model has one. A write that got there first (a save,
or another converge) wins, and the rewrite changes nothing.

The rewrite is a change of representation, not of content: it keeps the item's
version attribute, write stamps and TTL as stored, and carries the item's
exactly-once markers over (a retry of a call in flight must still find its marker).

Both the layer's own writes (an update that found an older item converges it and
tries again, `portchops_models.ops.writes`) and the converging backfill
(`portchops_models.migrate.backfills.upcast`) send what `converge_put` builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value

from ..dynamo.expressions import Expression
from ..dynamo.idempotency import is_marker
from ..dynamo.limits import check_item
from ..models.base import BaseModel
from ..models.shape import RawItem, TableShape
from ..models.versions import STAMP
from .requests import serialize_item

__all__ = ["converge_put"]

Params = dict[str, Any]


def converge_put(
    shape: TableShape, table: str, stored: RawItem, decode: Callable[[RawItem], BaseModel]
) -> Params | None:
    """The PutItem that rewrites `stored` in the current shape, conditional on it being
    unchanged; ``None`` when it is current already (or the model has no upcasters).

    `decode` is the model's decoder (`portchops_models.models.decoding.model_decoder`),
    which runs the upcasters.

    Raises:
        InvalidRequest: an upcaster failed, or the upcast item is not a valid item of
            the model (naming the attribute).
    """
    versions = shape.versions
    if versions is None or not versions.upcasts or not versions.older(stored):
        return None
    raw = serialize_item(shape, decode(stored), table)
    kept = set(shape.stamped_names)
    if shape.version_attribute is not None:
        kept.add(shape.version_attribute.attr_name)
    for name, value in stored.items():
        if name in kept or is_marker(name):
            raw[name] = value  # as stored: the rewrite changes no content
    check_item(raw, table=table)
    expr = Expression()
    condition = _unchanged(shape, stored)
    params: Params = {
        "TableName": table,
        "Item": raw,
        "ConditionExpression": expr.condition(condition),
        "ReturnConsumedCapacity": "TOTAL",
    }
    params.update(expr.placeholders())
    return params


def _unchanged(shape: TableShape, stored: RawItem) -> Condition:
    """The item exists and still has the stamp and the lock version it was read with."""
    stamp = Path(STAMP)
    hash_key = getattr(shape.model, shape.hash_key.python_name)
    held = stored.get(STAMP)
    same: Condition = (
        hash_key.exists() & stamp.does_not_exist() if held is None else stamp == Value(held)
    )
    version = shape.version_attribute
    if version is not None:
        value = stored.get(version.attr_name)
        if value is None:
            same = same & version.does_not_exist()
        else:
            same = same & (Path(version) == Value(value))
    return same

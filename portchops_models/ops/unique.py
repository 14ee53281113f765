"""Saves and deletes of entities with unique attributes, written once for both APIs.

Each value of a unique attribute is held by a guard item on the entity's table
(`portchops_models.models.entity.guard_entity`) that names its owner. A save reads
the stored item (strongly consistent), then writes in one transaction: the item,
on condition that its unique values are still the ones read; a guard for each
current value, on condition that no other item holds it; the deletion of each
guard of a value the item gave up, on condition that it is the item's. A delete
drops the item and its guards the same way. So an item and its guards change
together or not at all, and a value is never held twice.

Lost answers: the transaction carries one client request token for all its
attempts, so a resend after a reset applies nothing twice; a save that reads an
item changed under it (by a concurrent writer) starts over, at most
`_ATTEMPTS` times.

Cost, per save: one consistent read of the item and a TransactWriteItems of the
item and one guard per unique attribute (two write units per KB each), plus a
guard deletion per value changed.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

from pynamodb.expressions.condition import Condition

from ..dynamo import idempotency
from ..dynamo.limits import number_text
from ..errors import ConditionFailed, InvalidRequest, TransactionCanceled, UniqueViolation
from ..models.base import BaseModel
from ..models.entity import EntityKeys, guard_entity
from ..models.shape import RawItem, TableShape, shape_of
from . import requests
from . import transaction_plan as plan
from .context import Bound
from .transactions import TransactionCore

__all__ = ["delete", "save"]

#: Reads and transactions of one save whose item kept changing under it.
_ATTEMPTS = 3


async def save(
    ctx: Bound[Any], item: Any, condition: Condition | None, *, version_check: bool
) -> Any:
    """Save an entity with unique attributes: the item and its guards in one transaction.

    Raises:
        UniqueViolation: another item holds one of its unique values (nothing written).
        ConditionFailed: `condition` or the version check failed.
    """
    shape = ctx.shape
    keys = _keys(shape)
    if not isinstance(item, shape.model):
        raise InvalidRequest(f"expected a {shape.model.__name__}, got {type(item).__name__}")
    key = shape.canonical(shape.key_of_model(item))
    with idempotency.marker(ctx.table, key) as marker:
        for _ in range(_ATTEMPTS):
            stored = await _stored(ctx, key)
            shape.stamp(item)
            core = TransactionCore(retry=ctx.retry, metrics=ctx.metrics)
            put = plan.put_operation(
                shape,
                ctx.table,
                item,
                condition=_all(condition, _still(ctx, keys, stored)),
                version_check=version_check,
                marker=marker,
            )
            core._add(put)
            claims: dict[int, tuple[str, str]] = {}
            for op, claim in _guard_ops(ctx, keys, item, stored):
                if claim is not None:
                    claims[len(core)] = claim
                core._add(op)
            try:
                await core._commit(ctx.runtime)
                return item
            except TransactionCanceled as canceled:
                core._invalidate()
                if marker.landed(await _stored(ctx, key)):  # an earlier attempt applied it all
                    if put.version is not None and shape.version_name is not None:
                        setattr(item, shape.version_name, put.version)
                    return item
                _raise_clash(canceled, claims, keys, key, ctx.table)
                if condition is not None or shape.version_name is not None:
                    raise ConditionFailed(
                        f"{ctx.table}: version conflict (stale item) or condition failed for "
                        f"key {key!r}",
                        table=ctx.table,
                        key=key,
                    ) from canceled
    raise ConditionFailed(
        f"{ctx.table}: {shape.model.__name__} {key!r} kept changing while its unique "
        f"values were saved ({_ATTEMPTS} attempts)",
        table=ctx.table,
        key=key,
    )


async def delete(ctx: Bound[Any], key_or_item: object, condition: Condition | None) -> None:
    """Delete an entity with unique attributes and the guards of its values, together."""
    shape = ctx.shape
    keys = _keys(shape)
    raw = shape.key_of_model(key_or_item) if isinstance(key_or_item, BaseModel) else key_or_item
    key = shape.canonical(raw)
    guard = guard_entity(keys.table_class)
    guard_shape = shape_of(guard)
    for _ in range(_ATTEMPTS):
        stored = await _stored(ctx, key)
        if stored is None:
            return  # nothing to delete: no guard of it either
        core = TransactionCore(retry=ctx.retry, metrics=ctx.metrics)
        core._add(
            plan.delete_operation(
                shape, ctx.table, key, condition=_all(condition, _still(ctx, keys, stored))
            )
        )
        pk, sk = _owner(shape, key)
        for name, value in _values(keys, stored).items():
            if value is not None:
                core._add(_drop_guard(guard_shape, ctx.table, keys, name, value, pk, sk))
        try:
            await core._commit(ctx.runtime)
            return
        except TransactionCanceled as canceled:
            if condition is not None:
                raise ConditionFailed(
                    f"{ctx.table}: condition failed for key {key!r}", table=ctx.table, key=key
                ) from canceled
    raise ConditionFailed(
        f"{ctx.table}: {shape.model.__name__} {key!r} kept changing while it was deleted",
        table=ctx.table,
        key=key,
    )


# ---------------------------------------------------------------------- the parts


def _keys(shape: TableShape) -> EntityKeys:
    keys = shape.entity
    assert keys is not None
    return keys


async def _stored(ctx: Bound[Any], key: Hashable) -> RawItem | None:
    params = requests.get_item(ctx.shape, ctx.table, key, consistent=True)
    found: RawItem | None = (await ctx.send("GetItem", params)).get("Item")
    return found


def _values(keys: EntityKeys, raw: RawItem | None) -> dict[str, str | None]:
    """The unique attributes' values in a stored item, as guard values."""
    attributes = keys.model.get_attributes()
    values: dict[str, str | None] = {}
    for name in keys.unique:
        stored = None if raw is None else raw.get(attributes[name].attr_name)
        if stored is None or "NULL" in stored:
            values[name] = None
        else:
            values[name] = str(stored.get("S", stored.get("N")))
    return values


def _value(item: BaseModel, name: str) -> str | None:
    value = getattr(item, name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return number_text(value, name=name)


def _still(ctx: Bound[Any], keys: EntityKeys, stored: RawItem | None) -> Condition:
    """The stored item still is as read: absent, or with the same unique values."""
    model = cast(Any, ctx.shape.model)
    if stored is None:
        absent: Condition = getattr(model, keys.pk_python).does_not_exist()
        return absent
    before = ctx.decoders.model(stored)
    condition: Condition | None = None
    for name in keys.unique:
        value = getattr(before, name)
        attr = getattr(model, name)
        part: Condition = attr.does_not_exist() if value is None else attr == value
        condition = part if condition is None else condition & part
    assert condition is not None
    return condition


def _all(*conditions: Condition | None) -> Condition | None:
    combined: Condition | None = None
    for condition in conditions:
        if condition is not None:
            combined = condition if combined is None else combined & condition
    return combined


def _owner(shape: TableShape, key: Hashable) -> tuple[str, str]:
    raw = shape.raw_key(key)
    assert shape.range_key is not None
    return raw[shape.hash_key.name]["S"], raw[shape.range_key.name]["S"]


def _guard_ops(
    ctx: Bound[Any], keys: EntityKeys, item: BaseModel, stored: RawItem | None
) -> list[tuple[plan.Operation, tuple[str, str] | None]]:
    """Puts of the guards of the item's values (with the value each claims), and
    deletions of the values it gave up."""
    guard = cast(Any, guard_entity(keys.table_class))
    guard_shape = shape_of(guard)
    pk, sk = _owner(ctx.shape, ctx.shape.canonical(ctx.shape.key_of_model(item)))
    before = _values(keys, stored)
    ops: list[tuple[plan.Operation, tuple[str, str] | None]] = []
    for name in keys.unique:
        value = _value(item, name)
        if value is not None:
            held = guard(of=keys.name, attribute=name, value=value, owner_pk=pk, owner_sk=sk)
            free = guard.pk.does_not_exist() | ((guard.owner_pk == pk) & (guard.owner_sk == sk))
            claim = plan.put_operation(guard_shape, ctx.table, held, condition=free)
            ops.append((claim, (name, value)))
        old = before[name]
        if old is not None and old != value:
            ops.append((_drop_guard(guard_shape, ctx.table, keys, name, old, pk, sk), None))
    return ops


def _drop_guard(
    guard_shape: TableShape,
    table: str,
    keys: EntityKeys,
    name: str,
    value: str,
    pk: str,
    sk: str,
) -> plan.Operation:
    guard = cast(Any, guard_shape.model)
    mine = cast(Condition, guard.pk.does_not_exist()) | (
        (guard.owner_pk == pk) & (guard.owner_sk == sk)
    )
    return plan.delete_operation(guard_shape, table, (keys.name, name, value), condition=mine)


def _raise_clash(
    canceled: TransactionCanceled,
    claims: dict[int, tuple[str, str]],
    keys: EntityKeys,
    key: Hashable,
    table: str,
) -> None:
    """Raise `UniqueViolation` if a guard held by another item was the cause."""
    for index, reason in enumerate(canceled.reasons):
        claim = claims.get(index)
        if claim is not None and reason is not None and reason.code == "ConditionalCheckFailed":
            name, value = claim
            raise UniqueViolation(
                f"{keys.model.__name__}.{name} {value!r} is already held by another item; "
                "nothing was written",
                attribute=name,
                value=value,
                table=table,
                key=key,
            ) from canceled

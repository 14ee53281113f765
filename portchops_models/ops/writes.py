"""Writes, written once for both APIs: save, update, delete and the batch writes.

Single-item writes carry an idempotency marker and reconcile a failed condition
with the stored item (`portchops_models.dynamo.idempotency`), so a write whose answer
was lost is applied once. Every write invalidates the keys it touches, on
failure too (a timed-out write may still have landed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, cast

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ..cache import coherence
from ..dynamo import idempotency
from ..dynamo.limits import BATCH_WRITE_MAX
from ..errors import ConditionFailed, InvalidRequest
from ..models.base import BaseModel
from ..models.decoding import partial_of
from ..models.shape import RawItem
from . import requests, unique
from .context import Bound
from .converge import converge_put
from .reads import rounds

__all__ = [
    "batch_delete",
    "batch_save",
    "create",
    "delete",
    "save",
    "save_partial",
    "update",
    "update_raw",
]

#: Attempts at a write that found an expired item in its way (deleted, then written again).
_FRESH_ROW_ATTEMPTS = 3


async def save(
    ctx: Bound[Any],
    item: Any,
    condition: Condition | None,
    *,
    version_check: bool = True,
) -> Any:
    """PutItem of the whole item: version checked and bumped, stamps and sliding TTL set.

    A partial item (read through an index that does not project every attribute) is
    written with `save_partial` instead: only what it holds, never a whole-item put.
    ``version_check=False`` bumps the version without checking it (PynamoDB's
    ``add_version_condition=False``).
    """
    shape = ctx.shape
    snapshot = partial_of(item)
    if snapshot is not None and isinstance(item, shape.model):
        return await save_partial(ctx, item, snapshot, condition)
    if shape.entity is not None and shape.entity.unique:
        return await unique.save(ctx, item, condition, version_check=version_check)
    if isinstance(item, shape.model):
        shape.stamp(item)
    key = shape.canonical(_model_key(shape, item))
    with idempotency.marker(ctx.table, key) as marker:
        params, version = requests.put_item(
            shape, ctx.table, item, condition=condition, marker=marker, version_check=version_check
        )
        what = "version conflict (stale item) or condition" if version else "condition"
        await _write_once(ctx, "PutItem", lambda: params, key, marker, what)
    if version is not None and shape.version_name is not None:
        setattr(item, shape.version_name, version)
    return item


def _model_key(shape: Any, item: Any) -> Hashable:
    """The key of `item` for the marker's slot (any value: `put_item` checks it)."""
    if not isinstance(item, shape.model):
        raise InvalidRequest(f"expected a {shape.model.__name__}, got {type(item).__name__}")
    key: Hashable = shape.key_of_model(item)
    return key


async def create(ctx: Bound[Any], item: Any) -> Any:
    """PutItem only where no item has the key (an expired one still stored counts as absent).

    Raises:
        ConditionFailed: an item with this key exists.
    """
    shape = ctx.shape
    if partial_of(item) is not None:
        raise InvalidRequest(f"create() takes a whole {shape.model.__name__}, not a partial one")
    absent = cast(Condition, getattr(shape.model, shape.hash_key.python_name).does_not_exist())
    return await save(ctx, item, absent)


async def save_partial(
    ctx: Bound[Any], item: Any, snapshot: RawItem, condition: Condition | None
) -> Any:
    """Write a partial item: an UpdateItem of the attributes it holds that changed since
    it was read, on the stored item only (never a put that would drop what it lacks)."""
    shape = ctx.shape
    key = shape.canonical(shape.key_of_model(item))
    actions, guard = requests.partial_changes(shape, item, snapshot)
    combined = guard if condition is None else guard & condition
    stored = await update_raw(ctx, key, actions, combined)
    held = item.attribute_values
    decoded = ctx.decoders.model(stored).attribute_values
    for python in list(held):  # what the item holds, as stored now (version, stamps)
        if python in decoded:
            held[python] = decoded[python]
    return item


async def update(
    ctx: Bound[Any],
    key: Hashable,
    actions: Sequence[Action],
    condition: Condition | None,
) -> Any:
    """One atomic UpdateItem, applied once; the item as stored afterwards."""
    return ctx.decoders.model(await update_raw(ctx, key, actions, condition))


async def update_raw(
    ctx: Bound[Any],
    key: Hashable,
    actions: Sequence[Action],
    condition: Condition | None,
) -> RawItem:
    """`update`, returning the raw item as stored afterwards (``ALL_NEW``)."""
    shape, table = ctx.shape, ctx.table
    key = shape.canonical(key)
    prune = ctx.stale.take(key)
    with idempotency.marker(table, key) as marker:

        def build() -> dict[str, Any]:
            return requests.update_item(
                shape, table, key, actions, condition=condition, marker=marker, prune=prune
            )

        build()  # every action checked before the first attempt is sent
        stored = await _write_once(ctx, "UpdateItem", build, key, marker)
        horizon = ctx.conn.settings.call_timeout + idempotency.CLOCK_SKEW_SECONDS
        ctx.stale.found(key, idempotency.stale_markers(stored, horizon=horizon, keep=marker.name))
    return stored


async def _write_once(
    ctx: Bound[Any],
    operation: str,
    build: Callable[[], dict[str, Any]],
    key: Hashable,
    marker: idempotency.Marker,
    what: str = "condition",
) -> RawItem:
    """Send a marked write; on a failed condition, reconcile with the stored item.

    Returns the item as stored (``Attributes`` of an update, or the item read
    back when an earlier attempt of this call had landed). A write that failed
    because the stored item is in an older schema version (an update is guarded on
    the current one, `requests.current_shape`; a caller's condition names current
    attributes) converges that item (`converge_put`) and is sent again, once.
    """
    converged = False
    for _ in range(_FRESH_ROW_ATTEMPTS):
        params = build()
        try:
            response = await _write(ctx, operation, params, key, what)
            return cast(RawItem, response.get("Attributes") or params.get("Item") or {})
        except ConditionFailed:
            stored = await _load_raw(ctx, key)
            expired = stored is not None and ctx.shape.expired(stored)
            outcome = idempotency.reconcile(stored, marker, expired=expired)
            if outcome is idempotency.Outcome.APPLIED:
                return cast(RawItem, stored)
            if outcome is idempotency.Outcome.FAILED:
                if converged or stored is None or not await _converge(ctx, key, stored):
                    raise
                converged = True
                continue
            await _delete_expired(ctx, key, cast(RawItem, stored))
    raise ConditionFailed(
        f"{ctx.table}: {what} failed for key {key!r}: the item kept expiring in the way",
        table=ctx.table,
        key=key,
    )


async def _converge(ctx: Bound[Any], key: Hashable, stored: RawItem) -> bool:
    """After a failed condition of a model with upcasters: rewrite `stored` in the current
    schema version if it is older (whoever wins the race: this rewrite, or a write that
    got there first). Whether the write is worth sending again: the item is in the
    current shape now, and may have been older when the write was evaluated (another
    writer converged it between the failure and the read back)."""
    versions = ctx.shape.versions
    if versions is None or not versions.upcasts or versions.version_of(stored) > versions.current:
        return False
    params = converge_put(ctx.shape, ctx.table, stored, ctx.decoders.model)
    if params is not None:
        with contextlib.suppress(ConditionFailed):  # changed meanwhile: the retry sees it
            await _write(ctx, "PutItem", params, key)
    return True


async def _load_raw(ctx: Bound[Any], key: Hashable) -> RawItem | None:
    params = requests.get_item(ctx.shape, ctx.table, key, consistent=True)
    item: RawItem | None = (await ctx.send("GetItem", params)).get("Item")
    return item


async def _delete_expired(ctx: Bound[Any], key: Hashable, stored: RawItem) -> None:
    """Delete an expired item (only while it is still the one read), for a fresh row."""
    ttl_name = cast(str, ctx.shape.ttl_name)
    params = requests.delete_item(ctx.shape, ctx.table, key)
    params["ConditionExpression"] = "#ttl = :ttl"
    params["ExpressionAttributeNames"] = {"#ttl": ttl_name}
    params["ExpressionAttributeValues"] = {":ttl": stored[ttl_name]}
    with contextlib.suppress(ConditionFailed):  # written meanwhile: next attempt sees it
        await _write(ctx, "DeleteItem", params, key)


async def delete(ctx: Bound[Any], key_or_item: object, condition: Condition | None) -> None:
    """DeleteItem by key or instance (no error if absent, unless `condition` fails)."""
    shape = ctx.shape
    if shape.entity is not None and shape.entity.unique:
        return await unique.delete(ctx, key_or_item, condition)
    raw = shape.key_of_model(key_or_item) if isinstance(key_or_item, BaseModel) else key_or_item
    key = shape.canonical(raw)
    params = requests.delete_item(shape, ctx.table, key, condition=condition)
    await _write(ctx, "DeleteItem", params, key)


async def _write(
    ctx: Bound[Any],
    operation: str,
    params: dict[str, Any],
    key: Hashable,
    what: str = "condition",
) -> dict[str, Any]:
    """Send a single-item write; invalidate the key whatever happens; name it on failure."""
    try:
        return await ctx.send(operation, params)
    except ConditionFailed as err:
        raise ConditionFailed(
            f"{ctx.table}: {what} failed for key {key!r}", table=ctx.table, code=err.code, key=key
        ) from err
    finally:
        coherence.invalidate(ctx.table, [key])


async def batch_save(ctx: Bound[Any], items: Iterable[Any]) -> int:
    """BatchWriteItem puts of any number of items, every one checked before the first request."""
    if isinstance(items, BaseModel) or not isinstance(items, Iterable):
        raise InvalidRequest(f"batch_save takes a collection of items, got {items!r}")
    shape = ctx.shape
    shape.refuse_unguarded("batch_save")
    listed = list(items)
    for item in listed:
        if isinstance(item, shape.model):
            shape.stamp(item)
    puts, keys = requests.put_requests(shape, ctx.table, listed)
    await _batch_write(ctx, puts, keys)
    return len(puts)


async def batch_delete(ctx: Bound[Any], keys: Iterable[Any]) -> int:
    """BatchWriteItem deletes of any number of distinct keys."""
    ctx.shape.refuse_unguarded("batch_delete")
    distinct = ctx.keys(keys, "batch_delete")
    deletes = [{"DeleteRequest": {"Key": ctx.shape.raw_key(k)}} for k in distinct]
    await _batch_write(ctx, deletes, distinct)
    return len(deletes)


async def _batch_write(
    ctx: Bound[Any],
    writes: list[dict[str, Any]],
    keys: Sequence[Any],
) -> None:
    async def send(chunk: list[dict[str, Any]]) -> dict[str, Any]:
        request = requests.batch_write_chunk(ctx.table, chunk)
        return await ctx.send("BatchWriteItem", request)

    def collect(response: dict[str, Any]) -> list[dict[str, Any]]:
        return list(response.get("UnprocessedItems", {}).get(ctx.table, []))

    try:
        await rounds(ctx, "BatchWriteItem", writes, BATCH_WRITE_MAX, send, collect)
    finally:
        coherence.invalidate(ctx.table, keys)

"""Pure builders of DynamoDB request payloads, one function per kind of request.

Each takes a model's `TableShape`, the table name and the call's arguments and
returns the parameters of one API call, validated before anything reaches the
wire (keys, limits, expressions, item size). They send nothing and touch no
state, so they are tested without an engine and shared by every caller that
sends requests (sync and async repositories, transactions).

Example:
    >>> from portchops_models import User
    >>> from portchops_models.models.shape import shape_of
    >>> get_item(shape_of(User), "users", "u1")["Key"]
    {'userId': {'S': 'u1'}}
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pynamodb.attributes import NumberAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action

from ..dynamo.expressions import Expression
from ..dynamo.idempotency import Marker
from ..dynamo.limits import check_item
from ..errors import InvalidRequest, PortChopsError
from ..models.base import BaseModel
from ..models.decoding import partial_of
from ..models.entity import TYPE_ATTRIBUTE
from ..models.projections import Projection
from ..models.shape import IndexShape, RawItem, TableShape
from ..models.versions import STAMP

__all__ = [
    "QueryRequest",
    "batch_get_chunk",
    "batch_write_chunk",
    "check_limit",
    "check_projection",
    "delete_item",
    "get_item",
    "put_item",
    "put_requests",
    "projection_params",
    "query",
    "scan",
    "serialize_item",
    "update_item",
]

Params = dict[str, Any]


def _placeholders(shape: TableShape, expr: Expression, what: str) -> Params:
    """The expression's placeholders, once no part of it names an encrypted attribute
    (nor, in an update, a signed one: `portchops_models.models.encryption`)."""
    sealed = shape.encryption
    if sealed is not None:
        if what == "an update":
            sealed.refuse_update(expr.names)
        else:
            sealed.refuse_names(expr.names, what)
    return expr.placeholders()


def check_limit(limit: object) -> int:
    """A page limit must be a positive int."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest(f"limit must be a positive int, got {limit!r}")
    return limit


def check_projection(shape: TableShape, projection: object) -> type[Projection[Any]] | None:
    """`projection` must be ``None`` or a `Projection` subclass of this shape's model."""
    if projection is None:
        return None
    if not (isinstance(projection, type) and issubclass(projection, Projection)):
        raise InvalidRequest(
            f"projection must be a Projection[{shape.model.__name__}] subclass, got {projection!r}"
        )
    if projection.__model__ is not shape.model:
        projected = getattr(projection.__model__, "__name__", "no model")
        raise InvalidRequest(
            f"{projection.__name__} projects {projected}, not {shape.model.__name__}"
        )
    return projection


def _projection(
    shape: TableShape, projection: type[Projection[Any]] | None, expr: Expression
) -> str | None:
    """The ProjectionExpression for `projection`: its fields, the keys and the TTL."""
    checked = check_projection(shape, projection)
    if checked is None:
        return None
    if shape.versions is not None and shape.versions.upcasts:
        # An older item's upcasters may need any attribute: read it whole, then upcast
        # and project it (`Projection.from_raw`).
        return None
    extra: tuple[str, ...] = (shape.ttl_name,) if shape.ttl_name else ()
    if shape.entity is not None:
        extra += (TYPE_ATTRIBUTE,)
    return expr.projection((*shape.key_names, *checked.attribute_names(), *extra))


def projection_params(shape: TableShape, projection: type[Projection[Any]] | None) -> Params:
    """``ProjectionExpression`` and its names for a projection (empty for whole items)."""
    expr = Expression()
    expression = _projection(shape, projection, expr)
    if expression is None:
        return {}
    return {"ProjectionExpression": expression, **_placeholders(shape, expr, "a projection")}


def get_item(
    shape: TableShape,
    table: str,
    key: object,
    *,
    consistent: bool = False,
    projection: type[Projection[Any]] | None = None,
) -> Params:
    """GetItem of one key."""
    params: Params = {
        "TableName": table,
        "Key": shape.raw_key(key),
        "ReturnConsumedCapacity": "TOTAL",
    }
    if consistent:
        params["ConsistentRead"] = True
    params.update(projection_params(shape, projection))
    return params


def serialize_item(shape: TableShape, item: object, table: str) -> RawItem:
    """A model instance as a raw item, every value checked before the wire.

    Each attribute's value is checked as it is serialised (`portchops_models.models.values`:
    types, numbers in DynamoDB's range, no str where a set or list belongs), then the
    keys of the table and of every index the item belongs to. The size is checked by
    the caller once the layer's own attributes (version, marker) are in (`check_item`).

    Raises:
        InvalidRequest: naming the attribute; also for a partial item (read through an
            index that does not project every attribute), which only `save` can write.
    """
    if not isinstance(item, shape.model):
        raise InvalidRequest(f"expected a {shape.model.__name__}, got {type(item).__name__}")
    partial = partial_of(item)
    if partial is not None:
        raise InvalidRequest(
            f"{table}: this {shape.model.__name__} was read through an index that does not "
            "project every attribute; save() it alone (it writes only what it holds) or "
            "read the whole item with get() first"
        )
    try:
        raw: RawItem = item.serialize()
    except PortChopsError:
        raise
    except Exception as err:
        raise InvalidRequest(f"{table}: {type(err).__name__}: {err}", table=table) from err
    for attr in (shape.hash_key, shape.range_key):
        if attr is not None:
            if attr.name not in raw:
                raise InvalidRequest(f"{table}: {attr.python_name} is required (a key)")
            attr.encode(attr.decode(raw[attr.name]))
    shape.check_index_keys(raw)
    if shape.encryption is not None:
        raw = shape.encryption.seal(raw)
    if shape.versions is not None:
        raw[STAMP] = shape.versions.stamp_value()
    return raw


def not_newer(shape: TableShape) -> Condition | None:
    """The guard of a whole-item put of a versioned model: the stored item (if any) is
    not stamped newer than the model (written by newer code, it must not be replaced by
    an item in an older shape); ``None`` for a model without a schema version."""
    if shape.versions is None:
        return None
    stamp = Path(STAMP)
    newest = Value(shape.versions.current, NumberAttribute())
    guard: Condition = stamp.does_not_exist() | (stamp <= newest)
    return guard


def current_shape(shape: TableShape) -> Condition | None:
    """The guard of a partial write (an update) of a versioned model: the stored item is
    in the current shape, or absent, so an update never stamps an item current whose
    other attributes are still in an older shape (`portchops_models.ops.converge`
    rewrites such an item first); ``None`` for a model without a schema version."""
    versions = shape.versions
    if versions is None:
        return None
    stamp = Path(STAMP)
    guard: Condition = stamp == Value(versions.current, NumberAttribute())
    if versions.upcasts:
        absent: Condition = getattr(shape.model, shape.hash_key.python_name).does_not_exist()
    else:
        absent = stamp.does_not_exist()
    either: Condition = guard | absent
    return either


def _bump_version(shape: TableShape, item: BaseModel, raw: RawItem) -> Condition | None:
    """Write one more than the item's version into `raw`; the condition that checks it."""
    attr = shape.version_attribute
    if attr is None or shape.version_name is None:
        return None
    current = getattr(item, shape.version_name)
    raw[attr.attr_name] = {"N": str(1 if current is None else int(current) + 1)}
    return version_condition(shape, item)


def version_condition(shape: TableShape, item: BaseModel) -> Condition | None:
    """The optimistic-locking condition of a write of `item`: the stored version is the
    one it holds (absent when it holds none); ``None`` without a version attribute."""
    attr = shape.version_attribute
    if attr is None or shape.version_name is None:
        return None
    current = getattr(item, shape.version_name)
    check: Condition = attr.does_not_exist() if current is None else attr == current
    return check


def _conditions(*conditions: Condition | None) -> Condition | None:
    combined: Condition | None = None
    for condition in conditions:
        if condition is None:
            continue
        if not isinstance(condition, Condition):
            raise InvalidRequest(f"a condition must be a PynamoDB condition, got {condition!r}")
        combined = condition if combined is None else combined & condition
    return combined


def put_item(
    shape: TableShape,
    table: str,
    item: BaseModel,
    *,
    condition: Condition | None = None,
    marker: Marker | None = None,
    version_check: bool = True,
) -> tuple[Params, int | None]:
    """PutItem of a whole item; with a version attribute, checked and bumped.

    A conditional put (version check or `condition`) carries `marker` in the item,
    so a retry that fails its condition can tell whether an earlier attempt landed
    (`portchops_models.dynamo.idempotency`).

    ``version_check=False`` bumps the version without checking it.

    Returns:
        The parameters and the version the item will have once written (``None``
        without a version attribute).
    """
    raw = serialize_item(shape, item, table)
    checked = _bump_version(shape, item, raw)
    params: Params = {"TableName": table, "Item": raw, "ReturnConsumedCapacity": "TOTAL"}
    combined = _conditions(checked if version_check else None, not_newer(shape), condition)
    if combined is not None and marker is not None:
        raw[marker.name] = marker.raw()
    check_item(raw, table=table)  # with the version and the marker: what is stored
    if combined is not None:
        expr = Expression()
        params["ConditionExpression"] = expr.condition(combined)
        params.update(_placeholders(shape, expr, "a condition"))
    version = None
    if shape.version_name is not None:
        version = int(raw[shape.version_attribute.attr_name]["N"])  # type: ignore[union-attr]
    return params, version


def partial_changes(
    shape: TableShape, item: BaseModel, snapshot: RawItem
) -> tuple[list[Action], Condition]:
    """The update that saves a partial item: what it holds and changed since it was read.

    Attributes the item was not read with and was not given since are left alone; one
    it held and no longer holds is removed (a required one is refused). The version
    and the write stamps are the update's own (checked and bumped, set).

    Returns:
        The actions and their guard: the item exists and, when the item holds the
        version, still has that version.
    """
    try:
        held: RawItem = item.serialize(null_check=False)
    except PortChopsError:
        raise
    except Exception as err:
        raise InvalidRequest(f"{type(err).__name__}: {err}") from err
    skip = {*shape.key_names, *shape.stamped_names}
    version = shape.version_attribute
    if version is not None:
        skip.add(version.attr_name)
    actions: list[Action] = []
    for attr in shape.model.get_attributes().values():
        name = attr.attr_name
        if name in skip:
            continue
        now, before = held.get(name), snapshot.get(name)
        if now is None and before is not None:
            actions.append(attr.remove())
        elif now is not None and now != before:
            actions.append(Path(attr).set(Value(now)))
    guard: Condition = getattr(shape.model, shape.hash_key.python_name).exists()
    if version is not None and version.attr_name in held:
        guard = guard & (version == getattr(item, cast(str, shape.version_name)))
    return actions, guard


def delete_item(
    shape: TableShape, table: str, key: object, *, condition: Condition | None = None
) -> Params:
    """DeleteItem of one key, optionally conditional."""
    params: Params = {
        "TableName": table,
        "Key": shape.raw_key(key),
        "ReturnConsumedCapacity": "TOTAL",
    }
    combined = _conditions(condition)
    if combined is not None:
        expr = Expression()
        params["ConditionExpression"] = expr.condition(combined)
        params.update(_placeholders(shape, expr, "a condition"))
    return params


def update_item(
    shape: TableShape,
    table: str,
    key: object,
    actions: Sequence[Action],
    *,
    condition: Condition | None = None,
    marker: Marker | None = None,
    prune: Sequence[str] = (),
) -> Params:
    """UpdateItem: the caller's actions, the write stamps and a version bump; ALL_NEW back.

    Each action is checked against the model first (`values.check_actions`: its
    attribute, its value, no removal of a key, the version or a required attribute).
    With `marker`, the update writes it and applies only where the item does not hold
    this call's value already, so a retry of an update that already landed cannot
    apply twice; `prune` names stale markers to remove. On a model with a TTL
    attribute the update applies only to an unexpired (or absent) item: an expired
    one is not revived.
    """
    if isinstance(actions, Action):
        actions = [actions]
    if not isinstance(actions, Sequence) or isinstance(actions, str):
        raise InvalidRequest(f"actions must be a list of update actions, got {actions!r}")
    for action in actions:
        if not isinstance(action, Action):
            raise InvalidRequest(f"not an update action: {action!r}")
    shape.check_actions(actions)
    all_actions = [*actions, *shape.write_actions()]
    version = shape.version_attribute
    if version is not None and not any(_targets(a, version.attr_name) for a in actions):
        all_actions.append(version.add(1))
    guards: list[Condition] = []
    if marker is not None:
        mark = Path(marker.name)
        all_actions.append(mark.set(Value(marker.raw())))
        all_actions.extend(Path(name).remove() for name in prune if name != marker.name)
        guards.append(mark.does_not_exist() | (mark != Value(marker.raw())))
    if shape.ttl_name is not None:
        ttl = Path(shape.ttl_name)
        now = Value(int(time.time()), NumberAttribute())
        guards.append(ttl.does_not_exist() | (ttl > now))
    current = current_shape(shape)
    if current is not None and shape.versions is not None:
        all_actions.append(Path(STAMP).set(Value(shape.versions.stamp_value())))
        guards.append(current)
    expr = Expression()
    params: Params = {
        "TableName": table,
        "Key": shape.raw_key(key),
        "UpdateExpression": expr.update(all_actions),
        "ReturnValues": "ALL_NEW",
        "ReturnConsumedCapacity": "TOTAL",
    }
    combined = _conditions(*guards, condition)
    if combined is not None:
        params["ConditionExpression"] = expr.condition(combined)
    params.update(_placeholders(shape, expr, "an update"))
    return params


def _targets(action: Action, name: str) -> bool:
    path: Any = action.values[0]
    return getattr(path, "path", None) == [name]


class QueryRequest:
    """A built Query: its parameters and the scope its cursors are valid for."""

    __slots__ = ("params", "scope")

    def __init__(self, params: Params, scope: tuple[str, ...]) -> None:
        self.params = params
        self.scope = scope


def query(
    shape: TableShape,
    table: str,
    hash_key: object,
    range_key_condition: Condition | None = None,
    filter_condition: Condition | None = None,
    *,
    index: IndexShape | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    consistent: bool = False,
    projection: type[Projection[Any]] | None = None,
    count: bool = False,
) -> QueryRequest:
    """Query one partition of the table or of an index (``count=True``: for counting).

    The cursor scope covers the table, index, partition, sort and filter
    conditions and direction: a cursor is valid only for the same query.
    """
    key_attr = index.hash_key if index is not None else shape.hash_key
    expr = Expression()
    if shape.entity is not None:
        key_condition = _entity_partition(shape, index, hash_key, range_key_condition, expr)
        filter_condition = _own_type(shape, filter_condition)
    else:
        key_value = key_attr.encode(hash_key)
        if shape.encryption is not None and key_attr.name in shape.encryption.blind:
            key_value = {"S": shape.encryption.lookup(key_attr.name, hash_key)}
        key_condition = f"{expr.name(key_attr.name)} = {expr.value(key_value)}"
    if range_key_condition is not None:
        if not isinstance(range_key_condition, Condition):
            raise InvalidRequest(
                f"range_key_condition must be a PynamoDB condition, got {range_key_condition!r}"
            )
        key_condition += f" AND {expr.condition(range_key_condition)}"
    params: Params = {"KeyConditionExpression": key_condition}
    if filter_condition is not None:
        params["FilterExpression"] = expr.condition(_conditions(filter_condition))  # type: ignore[arg-type]
    if index is not None:
        params["IndexName"] = index.name
        if consistent and not index.local:
            raise InvalidRequest(f"index {index.name}: a global index has no consistent reads")
    if limit is not None:
        params["Limit"] = check_limit(limit)
    if newest_first:
        params["ScanIndexForward"] = False
    if consistent:
        params["ConsistentRead"] = True
    if count and shape.ttl_name is None:
        params["Select"] = "COUNT"
    elif count:  # expired items still stored must not count: read each match's TTL
        wanted = (*shape.key_names, cast(str, shape.ttl_name))
        params["ProjectionExpression"] = ", ".join(expr.name(name) for name in wanted)
    else:
        projected = _projection(shape, projection, expr)
        if projected is not None:
            params["ProjectionExpression"] = projected
    params.update(_placeholders(shape, expr, "a query's conditions or projection"))
    params["TableName"] = table
    params["ReturnConsumedCapacity"] = "TOTAL"
    return QueryRequest(params, _scope("query", table, params))


def scan(
    shape: TableShape,
    table: str,
    *,
    segment: int = 0,
    total_segments: int = 1,
    limit: int | None = None,
    filter_condition: Condition | None = None,
    projection: type[Projection[Any]] | None = None,
    index: IndexShape | None = None,
) -> QueryRequest:
    """One segment of a (parallel) Scan of the table or, with `index`, of a secondary index.

    The cursor scope covers the table, index, segment and filter: a cursor of a
    table scan is not valid for a scan of one of its indexes, nor the reverse.
    """
    if not (isinstance(total_segments, int) and 1 <= total_segments <= 1_000_000):
        raise InvalidRequest("total_segments must be an int from 1 to 1,000,000")
    if not (isinstance(segment, int) and 0 <= segment < total_segments):
        raise InvalidRequest(f"segment must be an int from 0 to {total_segments - 1}")
    expr = Expression()
    params: Params = {}
    if total_segments > 1:
        params.update(Segment=segment, TotalSegments=total_segments)
    if index is not None:
        params["IndexName"] = index.name
    if limit is not None:
        params["Limit"] = check_limit(limit)
    filter_condition = _own_type(shape, filter_condition)
    if filter_condition is not None:
        params["FilterExpression"] = expr.condition(_conditions(filter_condition))  # type: ignore[arg-type]
    projected = _projection(shape, projection, expr)
    if projected is not None:
        params["ProjectionExpression"] = projected
    params.update(_placeholders(shape, expr, "a scan's filter or projection"))
    params["TableName"] = table
    params["ReturnConsumedCapacity"] = "TOTAL"
    return QueryRequest(params, _scope("scan", table, params))


def _entity_partition(
    shape: TableShape,
    index: IndexShape | None,
    value: object,
    range_key_condition: Condition | None,
    expr: Expression,
) -> str:
    """An entity's key condition: its partition, and its sort key's literal prefix."""
    keys = shape.entity
    assert keys is not None
    if range_key_condition is not None:
        raise InvalidRequest(
            f"{shape.model.__name__}: an entity's sort key is composed by the layer; "
            "narrow the query with filter_condition on its attributes instead"
        )
    name = index.name if index is not None else None
    _template, partition = keys.partition(value, name)
    hash_attr = index.hash_key if index is not None else shape.hash_key
    range_attr = index.range_key if index is not None else shape.range_key
    condition = f"{expr.name(hash_attr.name)} = {expr.value(hash_attr.encode(partition))}"
    sort = keys.sort_template(name)
    if sort is not None and sort.prefix and range_attr is not None:
        prefix = expr.value({"S": sort.prefix})
        condition += f" AND begins_with({expr.name(range_attr.name)}, {prefix})"
    return condition


def _own_type(shape: TableShape, condition: Condition | None) -> Condition | None:
    """`condition`, and only items of the shape's entity type (for an entity)."""
    if shape.entity is None:
        return condition
    mine = cast(Condition, getattr(shape.model, shape.entity.type_python) == shape.entity.name)
    return _conditions(mine, condition)


def _scope(kind: str, table: str, params: Params) -> tuple[str, ...]:
    """What a cursor is valid for: a digest of everything that selects the rows."""
    selecting = {k: v for k, v in params.items() if k not in ("Limit", "ReturnConsumedCapacity")}
    digest = hashlib.sha256(
        json.dumps(selecting, sort_keys=True, default=repr).encode()
    ).hexdigest()[:32]
    return (table, kind, digest)


def batch_get_chunk(
    table: str, keys: list[RawItem], projection: Params, consistent: bool = False
) -> Params:
    """BatchGetItem of up to 100 raw keys of one table (strongly consistent if asked:
    ``ConsistentRead`` is set per table in ``RequestItems``)."""
    entry: Params = {"Keys": keys, **projection}
    if consistent:
        entry["ConsistentRead"] = True
    return {"RequestItems": {table: entry}, "ReturnConsumedCapacity": "TOTAL"}


def batch_write_chunk(table: str, requests: list[Params]) -> Params:
    """BatchWriteItem of up to 25 put or delete requests on one table."""
    return {"RequestItems": {table: requests}, "ReturnConsumedCapacity": "TOTAL"}


def put_requests(
    shape: TableShape, table: str, items: Iterable[BaseModel]
) -> tuple[list[Params], list[Any]]:
    """Every item of a batch serialised and checked before the first request is sent.

    Stamp the items (`TableShape.stamp`) first: this only reads them.

    Returns:
        The put requests and the items' keys. Two items with one key are `InvalidRequest`.
    """
    requests: list[Params] = []
    seen: dict[Any, None] = {}
    for item in items:
        raw = serialize_item(shape, item, table)
        _bump_version(shape, item, raw)
        check_item(raw, table=table)
        key = shape.key_of(raw)
        if key in seen:
            raise InvalidRequest(f"{table}: key {key!r} appears twice in one batch_save")
        seen[key] = None
        requests.append({"PutRequest": {"Item": raw}})
    return requests, list(seen)


# ---------------------------------------------------------------------- transactions
# TransactWriteItems / TransactGetItems entries, built from the single-item builders
# above so keys, items, conditions and stamps are checked the same way.

#: DynamoDB's ClientRequestToken is 1 to 36 characters.
TRANSACT_TOKEN_MAX = 36


def _transact_entry(params: Params) -> Params:
    """A single-item write's parameters as a transaction entry (no per-call options);
    a conditional entry asks for the stored item back when its condition fails."""
    entry = {k: v for k, v in params.items() if k not in ("ReturnConsumedCapacity", "ReturnValues")}
    if "ConditionExpression" in entry:
        entry["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return entry


def transact_put(
    shape: TableShape,
    table: str,
    item: BaseModel,
    *,
    condition: Condition | None = None,
    version_check: bool = True,
    marker: Marker | None = None,
) -> tuple[Params, int | None]:
    """A ``Put`` entry of a whole item (version checked and bumped, like `put_item`).

    Stamp the item (`TableShape.stamp`) first. Returns the entry and the version
    the item will have once the transaction commits. A `marker` goes into the
    item (a conditional put), so a resend canceled by its own landed attempt can
    be told from a real failure.
    """
    params, version = put_item(
        shape, table, item, condition=condition, version_check=version_check, marker=marker
    )
    return {"Put": _transact_entry(params)}, version


def transact_update(
    shape: TableShape,
    table: str,
    key: object,
    actions: Sequence[Action],
    *,
    condition: Condition | None = None,
) -> Params:
    """An ``Update`` entry: the actions, write stamps and version bump of `update_item`
    (an expired item is not revived: its entry's condition fails)."""
    return {"Update": _transact_entry(update_item(shape, table, key, actions, condition=condition))}


def transact_delete(
    shape: TableShape, table: str, key: object, *, condition: Condition | None = None
) -> Params:
    """A ``Delete`` entry of one key, optionally conditional."""
    return {"Delete": _transact_entry(delete_item(shape, table, key, condition=condition))}


def transact_check(shape: TableShape, table: str, key: object, condition: Condition) -> Params:
    """A ``ConditionCheck`` entry: the transaction applies only if `condition` holds."""
    if condition is None:
        raise InvalidRequest(f"{table}: a check needs a condition")
    return {"ConditionCheck": _transact_entry(delete_item(shape, table, key, condition=condition))}


def transact_write_items(entries: Sequence[Params], token: str) -> Params:
    """TransactWriteItems of the entries in the caller's order, with its idempotency token."""
    if not (isinstance(token, str) and 0 < len(token) <= TRANSACT_TOKEN_MAX):
        raise InvalidRequest(
            f"client_request_token must be a str of 1 to {TRANSACT_TOKEN_MAX} characters,"
            f" got {token!r}"
        )
    return {
        "TransactItems": list(entries),
        "ClientRequestToken": token,
        "ReturnConsumedCapacity": "TOTAL",
    }


def transact_get(shape: TableShape, table: str, key: object) -> Params:
    """A ``Get`` entry of a read transaction (the whole item)."""
    return {"Get": {"TableName": table, "Key": shape.raw_key(key)}}


def transact_get_items(entries: Sequence[Params]) -> Params:
    """TransactGetItems of the entries, answered in the same order."""
    return {"TransactItems": list(entries), "ReturnConsumedCapacity": "TOTAL"}

"""A transaction's operations, checked before the wire, and the decoding of what comes back.

Pure functions and plain objects, no I/O: the sync `Transaction`
(`portchops_models.transactions`) and the async twin build the same payloads
and read the same answers through them.

- `WritePlan` collects write operations (``Put``, ``Update``, ``Delete``,
  ``ConditionCheck``) in the caller's order and refuses, before anything is
  sent, a 101st operation, a second operation on one item, and more than 4 MB
  in total. PynamoDB's own ``TransactWrite`` sends checks, deletes, puts and
  updates in that order, so its cancellation reasons no longer line up with the
  caller's operations; here the payload keeps the order operations were added.
- `WritePlan.canceled` turns DynamoDB's ``CancellationReasons`` into a
  `TransactionCanceled` whose ``reasons[i]`` belongs to operation ``i``, with
  the stored item decoded as that operation's model.
- `read_payload` / `read_results` do the same for TransactGetItems: results in
  the order asked, TTL-expired items as ``None``.

Example:
    >>> from portchops_models import User
    >>> from portchops_models.models.shape import shape_of
    >>> plan = WritePlan()
    >>> plan.add(delete_operation(shape_of(User), "users", "u1"))
    >>> (entry,) = plan.payload("token-1")["TransactItems"]
    >>> entry
    {'Delete': {'TableName': 'users', 'Key': {'userId': {'S': 'u1'}}}}
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ..dynamo.idempotency import Marker
from ..dynamo.limits import TRANSACT_MAX, item_size
from ..errors import (
    CancellationReason,
    InvalidRequest,
    PortChopsError,
    ServiceError,
    TransactionCanceled,
    cancellation_reasons,
    is_transaction_conflict,
)
from ..models.base import BaseModel
from ..models.decoding import model_decoder
from ..models.shape import RawItem, TableShape, shape_of
from ..transport.retry import RetryPolicy
from . import requests
from .converge import converge_put

__all__ = [
    "TRANSACT_MAX_BYTES",
    "GetOperation",
    "Operation",
    "WritePlan",
    "check_operation",
    "delete_operation",
    "get_operation",
    "new_token",
    "put_operation",
    "read_canceled",
    "read_operations",
    "read_payload",
    "read_results",
    "transaction_policy",
    "unsupported",
    "update_operation",
]

#: DynamoDB's limit on the aggregate size of a transaction's items.
TRANSACT_MAX_BYTES = 4 * 1024 * 1024

Kind = Literal["Put", "Update", "Delete", "ConditionCheck"]
Params = dict[str, Any]


def new_token() -> str:
    """A fresh ``ClientRequestToken`` (a uuid4, 36 characters)."""
    return str(uuid.uuid4())


def transaction_policy(base: RetryPolicy) -> RetryPolicy:
    """`base`, also retrying cancellations caused only by conflicts or throttling.

    The copy shares `base`'s retry budget, backoff and limits: a transaction is
    retried like any other request, and a failed condition never is.
    """
    retry_on = base.retry_on
    return base.with_(retry_on=lambda err: retry_on(err) or is_transaction_conflict(err))


def unsupported(err: PortChopsError, endpoint: str | None, operation: str) -> ServiceError | None:
    """A clear error for an engine without transactions (dynalite answers
    ``UnknownOperationException``); ``None`` for any other error."""
    if err.code != "UnknownOperationException":
        return None
    return ServiceError(
        f"{endpoint or 'this endpoint'} does not support {operation}: this engine has no "
        "transactions (dynalite lacks them); nothing was applied. Use moto "
        "(`portchops engine`) or DynamoDB",
        code=err.code,
    )


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a write transaction, built and checked.

    Attributes:
        kind: ``"Put"``, ``"Update"``, ``"Delete"`` or ``"ConditionCheck"``.
        shape: the model's table shape (for decoding reasons and keys).
        table: the table's real name.
        key: the canonical key (as caches are keyed).
        entry: the TransactItems entry.
        size: its size as DynamoDB counts it towards the 4 MB limit (about).
        item: for a ``Put`` of a model instance, the instance (its version is set on commit).
        version: the version the item will have once committed.
    """

    kind: Kind
    shape: TableShape
    table: str
    key: Hashable
    entry: Params
    size: int
    item: BaseModel | None = None
    version: int | None = None

    def describe(self) -> str:
        """``"Update of user-progress ('u1', 'l1')"``, for messages."""
        return f"{self.kind} of {self.table} {self.key!r}"


def _size(body: Mapping[str, Any]) -> int:
    """The bytes an entry adds: its item or key, values and expressions."""
    total = item_size(body.get("Item") or body.get("Key") or {})
    total += item_size(body.get("ExpressionAttributeValues") or {})
    for name in ("UpdateExpression", "ConditionExpression"):
        total += len(str(body.get(name, "")).encode())
    return total


def _operation(
    kind: Kind,
    shape: TableShape,
    table: str,
    entry: Params,
    item: BaseModel | None = None,
    version: int | None = None,
) -> Operation:
    body = entry[kind]
    key = shape.key_of(body["Item"] if kind == "Put" else body["Key"])
    return Operation(kind, shape, table, key, entry, _size(body), item, version)


def put_operation(
    shape: TableShape,
    table: str,
    item: BaseModel,
    *,
    condition: Condition | None = None,
    version_check: bool = True,
    marker: Marker | None = None,
) -> Operation:
    """A ``Put`` of a whole (already stamped) item; its version checked and bumped."""
    entry, version = requests.transact_put(
        shape, table, item, condition=condition, version_check=version_check, marker=marker
    )
    return _operation("Put", shape, table, entry, item, version)


def update_operation(
    shape: TableShape,
    table: str,
    key: object,
    actions: Sequence[Action],
    *,
    condition: Condition | None = None,
) -> Operation:
    """An ``Update`` with the write stamps and version bump of every update."""
    entry = requests.transact_update(shape, table, key, actions, condition=condition)
    return _operation("Update", shape, table, entry)


def delete_operation(
    shape: TableShape, table: str, key: object, *, condition: Condition | None = None
) -> Operation:
    """A ``Delete`` of one key, optionally conditional."""
    return _operation(
        "Delete", shape, table, requests.transact_delete(shape, table, key, condition=condition)
    )


def check_operation(shape: TableShape, table: str, key: object, condition: Condition) -> Operation:
    """A ``ConditionCheck``: the transaction applies only if `condition` holds for the item."""
    return _operation(
        "ConditionCheck", shape, table, requests.transact_check(shape, table, key, condition)
    )


@functools.cache
def _decoder(model: type[BaseModel]) -> Callable[[RawItem], BaseModel]:
    return model_decoder(model)


class WritePlan:
    """The operations of one write transaction, in the order they were added.

    `add` enforces DynamoDB's limits before anything is sent: at most
    `TRANSACT_MAX` (100) operations, no two on one item (same table and key),
    at most `TRANSACT_MAX_BYTES` in total. A refused operation leaves the plan
    as it was.
    """

    __slots__ = ("_keys", "_size", "operations")

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self._keys: dict[tuple[str, Hashable], int] = {}
        self._size = 0

    def __len__(self) -> int:
        return len(self.operations)

    def add(self, operation: Operation) -> None:
        """Append `operation`, or raise `InvalidRequest` (naming the limit) if it breaks one."""
        if len(self.operations) >= TRANSACT_MAX:
            raise InvalidRequest(
                f"a transaction holds at most {TRANSACT_MAX} operations; "
                f"this would be operation {len(self.operations) + 1}",
                table=operation.table,
            )
        where = (operation.table, operation.key)
        earlier = self._keys.get(where)
        if earlier is not None:
            raise InvalidRequest(
                f"{operation.table}: key {operation.key!r} is already in this transaction "
                f"(operation {earlier}); DynamoDB allows one operation per item",
                table=operation.table,
            )
        if self._size + operation.size > TRANSACT_MAX_BYTES:
            raise InvalidRequest(
                f"a transaction holds at most {TRANSACT_MAX_BYTES} bytes; "
                f"{operation.describe()} would bring it to {self._size + operation.size}",
                table=operation.table,
            )
        self._keys[where] = len(self.operations)
        self._size += operation.size
        self.operations.append(operation)

    def payload(self, token: str) -> Params:
        """The TransactWriteItems parameters, operations in the order they were added."""
        return requests.transact_write_items([op.entry for op in self.operations], token)

    def touched(self) -> dict[str, list[Hashable]]:
        """The canonical keys written, by table (checks write nothing and are left out)."""
        found: dict[str, list[Hashable]] = {}
        for op in self.operations:
            if op.kind != "ConditionCheck":
                found.setdefault(op.table, []).append(op.key)
        return found

    def committed(self) -> None:
        """Give each saved instance the version it now has in the table."""
        for op in self.operations:
            name = op.shape.version_name
            if op.item is not None and op.version is not None and name is not None:
                setattr(op.item, name, op.version)

    def convergences(self, err: BaseException) -> list[tuple[Operation, Params]]:
        """For a cancellation: the rewrites (`portchops_models.ops.converge`) of the items
        whose update failed its condition because they are stored in an older schema
        version (the stamp guard of every update of a versioned model), each with its
        operation. Empty when no reason is that (the cancellation is final)."""
        found: list[tuple[Operation, Params]] = []
        for op, reason in zip(self.operations, cancellation_reasons(err) or [], strict=False):
            versions = op.shape.versions
            raw = None if reason is None else reason.raw_item
            if op.kind != "Update" or raw is None or versions is None or not versions.upcasts:
                continue
            if reason is None or reason.code != "ConditionalCheckFailed":
                continue
            stored = cast(RawItem, dict(raw))
            params = converge_put(op.shape, op.table, stored, _decoder(op.shape.model))
            if params is not None:
                found.append((op, params))
        return found

    def canceled(self, err: BaseException, *, attempts: int = 1) -> TransactionCanceled:
        """The `TransactionCanceled` for DynamoDB's answer `err`: one reason per
        operation in the order added, the stored item decoded as its model."""
        raw = cancellation_reasons(err) or []
        reasons: list[CancellationReason | None] = []
        for index, op in enumerate(self.operations):
            reason = raw[index] if index < len(raw) else None
            if reason is not None and reason.raw_item is not None:
                reason = replace(reason, item=_decode(op.shape, reason.raw_item))
            reasons.append(reason)
        causes = "; ".join(
            f"operation {i} ({self.operations[i].describe()}): {r.code}"
            for i, r in enumerate(reasons)
            if r is not None
        )
        return TransactionCanceled(
            f"transaction canceled, nothing applied: {causes or 'no reason given'}",
            reasons=reasons,
            attempts=attempts,
        )


def _decode(shape: TableShape, raw: Mapping[str, object]) -> BaseModel | None:
    try:
        return _decoder(shape.model)(dict(raw))  # type: ignore[arg-type]
    except Exception:  # an item the model cannot read is still a reason: keep it raw
        return None


# ---------------------------------------------------------------------- read transactions


@dataclass(frozen=True, slots=True)
class GetOperation:
    """One ``Get`` of a read transaction: the model's shape, table and canonical key."""

    shape: TableShape
    table: str
    key: Hashable
    entry: Params


def read_operations(
    pairs: Sequence[object], table_name: Callable[[type[BaseModel]], str]
) -> list[GetOperation]:
    """The ``Get`` operations of ``(Model, key)`` pairs, each checked before the wire.

    ``table_name(Model)`` gives a model's real table name (the configured prefix).
    """
    operations = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise InvalidRequest(f"read_transaction takes (Model, key) pairs, got {pair!r}")
        model, key = pair
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidRequest(f"not a model class: {model!r}")
        operations.append(get_operation(shape_of(model), table_name(model), key))
    return operations


def get_operation(shape: TableShape, table: str, key: object) -> GetOperation:
    """A ``Get`` of the whole item under `key` (checked)."""
    entry = requests.transact_get(shape, table, key)
    return GetOperation(shape, table, shape.key_of(entry["Get"]["Key"]), entry)


def read_payload(operations: Sequence[GetOperation]) -> tuple[Params, list[int]]:
    """TransactGetItems of distinct items; and for each operation, its entry's index.

    Asking for one item twice reads it once (DynamoDB refuses two operations on
    one item) and answers it in both places.

    Raises:
        InvalidRequest: no operation, or more than `TRANSACT_MAX` distinct items.
    """
    if not operations:
        raise InvalidRequest("a read transaction needs at least one (Model, key)")
    index: dict[tuple[str, Hashable], int] = {}
    entries: list[Params] = []
    positions: list[int] = []
    for op in operations:
        where = (op.table, op.key)
        if where not in index:
            index[where] = len(entries)
            entries.append(op.entry)
        positions.append(index[where])
    if len(entries) > TRANSACT_MAX:
        raise InvalidRequest(
            f"a read transaction reads at most {TRANSACT_MAX} items, got {len(entries)}"
        )
    return requests.transact_get_items(entries), positions


def read_results(
    operations: Sequence[GetOperation],
    positions: Sequence[int],
    response: Mapping[str, Any],
    now: float | None = None,
) -> list[BaseModel | None]:
    """The models read, in the order asked; ``None`` for a missing or expired item."""
    answers = response.get("Responses") or []
    moment = time.time() if now is None else now
    out: list[BaseModel | None] = []
    for op, position in zip(operations, positions, strict=True):
        raw = answers[position].get("Item") if position < len(answers) else None
        if raw is None or op.shape.expired(raw, moment):
            out.append(None)
        else:
            out.append(_decoder(op.shape.model)(raw))
    return out


def read_canceled(
    operations: Sequence[GetOperation],
    positions: Sequence[int],
    err: BaseException,
    *,
    attempts: int = 1,
) -> TransactionCanceled:
    """The `TransactionCanceled` of a read transaction: one reason per pair asked, in order."""
    raw = cancellation_reasons(err) or []
    reasons = [raw[p] if p < len(raw) else None for p in positions]
    causes = "; ".join(
        f"read {i} ({operations[i].table} {operations[i].key!r}): {r.code}"
        for i, r in enumerate(reasons)
        if r is not None
    )
    return TransactionCanceled(
        f"read transaction canceled: {causes or 'no reason given'}",
        reasons=reasons,
        attempts=attempts,
    )

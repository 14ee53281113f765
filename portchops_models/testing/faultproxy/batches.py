"""Partial batches: which ``BatchGetItem`` keys / ``BatchWriteItem`` requests become unprocessed.

`plan_batch` draws what to hold back, `merge_unprocessed` adds it to the engine's
answer, and `empty_batch_response` stands in for the engine when nothing is forwarded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = ["BatchPlan", "empty_batch_response", "merge_unprocessed", "plan_batch"]

_BATCH_GET_LIMIT: Final = 100
_BATCH_WRITE_LIMIT: Final = 25

_Json: TypeAlias = dict[str, object]


@dataclass(slots=True)
class BatchPlan:
    """A partial batch: what to forward and what to report as unprocessed."""

    operation: str
    forward: _Json | None  # None: everything was drawn, forward nothing
    moved: dict[str, object]
    moved_count: int
    tables: list[str]
    payload: _Json


def plan_batch(operation: str, payload: _Json, draw: Callable[[], bool]) -> BatchPlan | None:
    """Draw which keys/write requests become unprocessed; None when nothing moves."""
    items = payload.get("RequestItems")
    if not isinstance(items, dict) or not items:
        return None
    is_get = operation == "BatchGetItem"
    total = 0
    for spec in items.values():
        entries = spec.get("Keys") if is_get and isinstance(spec, dict) else spec
        if not isinstance(entries, list):
            return None
        total += len(entries)
    if total == 0 or total > (_BATCH_GET_LIMIT if is_get else _BATCH_WRITE_LIMIT):
        return None  # let the engine answer its validation error for the whole request
    forward: dict[str, object] = {}
    moved: dict[str, object] = {}
    moved_count = 0
    for table, spec in items.items():
        entries = spec["Keys"] if is_get else spec
        keep: list[object] = []
        move: list[object] = []
        for entry in entries:
            (move if draw() else keep).append(entry)
        moved_count += len(move)
        if is_get:
            rest = {k: v for k, v in spec.items() if k != "Keys"}
            if keep:
                forward[table] = {"Keys": keep, **rest}
            if move:
                moved[table] = {"Keys": move, **rest}
        else:
            if keep:
                forward[table] = keep
            if move:
                moved[table] = move
    if moved_count == 0:
        return None
    return BatchPlan(
        operation=operation,
        forward={**payload, "RequestItems": forward} if forward else None,
        moved=moved,
        moved_count=moved_count,
        tables=list(items),
        payload=payload,
    )


def empty_batch_response(plan: BatchPlan) -> _Json:
    """What the engine would answer had it processed none of the batch."""
    response: _Json
    if plan.operation == "BatchGetItem":
        response = {"Responses": {table: [] for table in plan.tables}, "UnprocessedKeys": {}}
    else:
        response = {"UnprocessedItems": {}}
        if plan.payload.get("ReturnItemCollectionMetrics") == "SIZE":
            response["ItemCollectionMetrics"] = {}
    if plan.payload.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
        response["ConsumedCapacity"] = []
    return response


def merge_unprocessed(plan: BatchPlan, response: _Json) -> bool:
    """Add the plan's moved keys/requests to an engine response; False if malformed."""
    if plan.operation == "BatchGetItem":
        responses = response.setdefault("Responses", {})
        if not isinstance(responses, dict):
            return False
        for table in plan.tables:
            responses.setdefault(table, [])
        unprocessed = response.get("UnprocessedKeys")
        if not isinstance(unprocessed, dict):
            unprocessed = response["UnprocessedKeys"] = {}
        for table, entry in plan.moved.items():
            existing = unprocessed.get(table)
            assert isinstance(entry, dict)
            if isinstance(existing, dict) and isinstance(existing.get("Keys"), list):
                existing["Keys"].extend(entry["Keys"])
            else:
                unprocessed[table] = entry
    else:
        unprocessed = response.get("UnprocessedItems")
        if not isinstance(unprocessed, dict):
            unprocessed = response["UnprocessedItems"] = {}
        for table, requests in plan.moved.items():
            existing = unprocessed.get(table)
            assert isinstance(requests, list)
            if isinstance(existing, list):
                existing.extend(requests)
            else:
                unprocessed[table] = requests
    return True

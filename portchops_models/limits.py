"""DynamoDB's limits, enforced before anything reaches the wire.

Partition key 1-2048 bytes, sort key 1-1024 bytes; items up to 400 KB counting
attribute names; numbers finite with at most 38 significant digits; 100 keys per
BatchGetItem, 25 requests per BatchWriteItem. A violation raises
`InvalidRequest`, so a bad request is never sent and nothing stored changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequest

__all__ = [
    "BATCH_GET_MAX",
    "BATCH_WRITE_MAX",
    "HASH_KEY_MAX_BYTES",
    "ITEM_MAX_BYTES",
    "RANGE_KEY_MAX_BYTES",
    "TRANSACT_MAX",
    "check_item",
    "check_key_part",
    "item_size",
]

HASH_KEY_MAX_BYTES = 2048
RANGE_KEY_MAX_BYTES = 1024
ITEM_MAX_BYTES = 400 * 1024
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
TRANSACT_MAX = 100


def check_key_part(value: object, *, name: str, max_bytes: int) -> str:
    """A key part must be a non-empty str of at most `max_bytes` UTF-8 bytes."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidRequest(f"{name} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} is not valid UTF-8 (lone surrogate)") from None
    if size > max_bytes:
        raise InvalidRequest(f"{name} is {size} bytes; DynamoDB allows {max_bytes}")
    return value


def _value_size(value: Mapping[str, Any], path: str) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return _number_size(data, path)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(_number_size(n, path) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(v, path) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v, path) for k, v in data.items())
    raise InvalidRequest(f"{path}: unknown DynamoDB type {kind!r}")


def _number_size(text: str, path: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise InvalidRequest(f"{path}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{path}: {text} is not a finite number; DynamoDB rejects it")
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    if len(digits) > 38:
        raise InvalidRequest(f"{path}: {text} has more than 38 significant digits")
    return 1 + (len(digits) + 1) // 2


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """DynamoDB's size of a serialised item: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _value_size(v, name) for name, v in item.items())


def check_item(item: Mapping[str, Mapping[str, Any]], *, table: str) -> None:
    """Reject an item over 400 KB or holding a number DynamoDB would refuse."""
    size = item_size(item)
    if size > ITEM_MAX_BYTES:
        raise InvalidRequest(
            f"{table}: item is {size} bytes; DynamoDB allows {ITEM_MAX_BYTES}", table=table
        )

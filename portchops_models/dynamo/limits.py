"""DynamoDB's limits, enforced before anything reaches the wire.

Partition key 1-2048 bytes, sort key 1-1024 bytes; items up to 400 KB counting
attribute names; numbers finite with at most 38 significant digits; 100 keys per
BatchGetItem, 25 requests per BatchWriteItem. A violation raises
`InvalidRequest`, so a bad request is never sent and nothing stored changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import InvalidRequest

__all__ = [
    "BATCH_GET_MAX",
    "BATCH_WRITE_MAX",
    "NUMBER_MAX_DIGITS",
    "HASH_KEY_MAX_BYTES",
    "ITEM_MAX_BYTES",
    "RANGE_KEY_MAX_BYTES",
    "TRANSACT_MAX",
    "check_item",
    "number_text",
    "check_key_part",
    "item_size",
    "value_size",
]

HASH_KEY_MAX_BYTES = 2048
RANGE_KEY_MAX_BYTES = 1024
ITEM_MAX_BYTES = 400 * 1024
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
TRANSACT_MAX = 100
NUMBER_MAX_DIGITS = 38
#: Non-zero numbers have a magnitude from 1E-130 to below 1E+126.
NUMBER_MIN_EXPONENT = -130
NUMBER_MAX_EXPONENT = 126
# 10**126 needs 419 bits: anything longer is out of range (and too long for str()).
_MAX_INT_BITS = 419


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
    if not isinstance(value, Mapping) or len(value) != 1:
        raise InvalidRequest(f"{path}: not a DynamoDB value: {value!r:.60}")
    kind: str
    data: Any
    ((kind, data),) = value.items()
    expected = _DATA_TYPES.get(kind)
    if expected is None:
        raise InvalidRequest(f"{path}: unknown DynamoDB type {kind!r}")
    if not _holds(data, expected):
        raise InvalidRequest(f"{path}: a {kind} value cannot hold {type(data).__name__}")
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return _number_size(data, path)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v, path) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v, path) for k, v in data.items())
    if not data:
        raise InvalidRequest(f"{path}: an empty {kind} set; DynamoDB stores no empty sets")
    member = _MEMBER_TYPES[kind]
    if not all(_holds(m, member) for m in data):
        raise InvalidRequest(f"{path}: a {kind} set holds a value of another type")
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(_number_size(n, path) for n in data)
    return sum(len(b) for b in data)


def _holds(data: object, kind: type | tuple[type, ...]) -> bool:
    return isinstance(data, kind)


_MEMBER_TYPES: dict[str, type | tuple[type, ...]] = {
    "SS": str,
    "NS": str,
    "BS": (bytes, bytearray, str),
}

#: What the data of each DynamoDB type must be (B as bytes, or base64 text on the wire).
_DATA_TYPES: dict[str, type | tuple[type, ...]] = {
    "S": str,
    "N": str,
    "B": (bytes, bytearray, str),
    "BOOL": bool,
    "NULL": bool,
    "SS": list,
    "NS": list,
    "BS": list,
    "L": list,
    "M": Mapping,
}


def _number_size(text: str, path: str) -> int:
    digits = len(_check_number_text(text, path))
    return 1 + (digits + 1) // 2


def _check_number_text(text: str, path: str) -> str:
    """The significant digits of a DynamoDB number, after checking its range and precision."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidRequest(f"{path}: {text!r} is not a number") from None
    if not number.is_finite():
        raise InvalidRequest(f"{path}: {text} is not a finite number; DynamoDB rejects it")
    if not number:
        return "0"
    digits = "".join(map(str, number.as_tuple().digits)).strip("0") or "0"
    if len(digits) > NUMBER_MAX_DIGITS:
        raise InvalidRequest(f"{path}: {text} has more than {NUMBER_MAX_DIGITS} significant digits")
    exponent = number.adjusted()
    if not NUMBER_MIN_EXPONENT <= exponent < NUMBER_MAX_EXPONENT:
        raise InvalidRequest(
            f"{path}: {text} is outside DynamoDB's range "
            f"(magnitude 1E{NUMBER_MIN_EXPONENT} to below 1E+{NUMBER_MAX_EXPONENT})"
        )
    return digits


def number_text(value: object, *, name: str) -> str:
    """A Python number as DynamoDB's ``N`` string, checked against DynamoDB's range.

    Accepts ``int``, ``float`` and ``Decimal`` (not ``bool``): finite, at most 38
    significant digits, magnitude from 1E-130 to below 1E+126 (or zero).

    Raises:
        InvalidRequest: anything else, naming `name`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidRequest(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest(f"{name}: {value} is not a finite number; DynamoDB rejects it")
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise InvalidRequest(
            f"{name}: an integer of {value.bit_length()} bits is outside DynamoDB's range "
            f"(below 1E+{NUMBER_MAX_EXPONENT})"
        )
    text = str(value) if not isinstance(value, float) else repr(value)
    _check_number_text(text, name)
    return text


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """DynamoDB's size of a serialised item: attribute names plus values, in bytes.

    Raises:
        InvalidRequest: a string that is not valid UTF-8 (a lone surrogate), naming
            the attribute, or a value DynamoDB would refuse.
    """
    total = 0
    for name, value in item.items():
        try:
            total += len(name.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidRequest(f"{name!r}: an attribute name that is not valid UTF-8") from None
        total += value_size(value, name)
    return total


def value_size(value: Mapping[str, Any], name: str) -> int:
    """The size of one serialised value, checked as DynamoDB checks it (numbers in range,
    valid UTF-8, data of the declared type, no empty sets), naming attribute `name`.

    Raises:
        InvalidRequest: naming `name`.
    """
    try:
        return _value_size(value, name)
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"{name}: a string holds a lone surrogate (not valid UTF-8); DynamoDB rejects it"
        ) from None


def check_item(item: Mapping[str, Mapping[str, Any]], *, table: str) -> None:
    """Reject an item over 400 KB or holding a number DynamoDB would refuse."""
    size = item_size(item)
    if size > ITEM_MAX_BYTES:
        raise InvalidRequest(
            f"{table}: item is {size} bytes; DynamoDB allows {ITEM_MAX_BYTES}", table=table
        )

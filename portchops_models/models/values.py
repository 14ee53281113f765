"""The values a model may send: one set of checks for every write path.

PynamoDB serialises what it is given without asking whether it fits: a ``str``
given to a set or list attribute is split into characters (``roles="admin"``
is stored as ``{"a", "d", "m", "i", "n"}``), a ``str`` given to a number
attribute goes out as the JSON text ``'"abc"'`` (the engine answers with an error
page), ``1e200`` or ``inf`` reach the wire, and a ``Decimal`` is a bare
``TypeError``. This module is where the layer checks instead, once for every way
a value leaves the process:

* `guard` wraps the ``serialize`` of each attribute of a model class (and of the
  typed maps it holds) when the class is created, so a value is checked wherever
  PynamoDB serialises it: ``item.serialize()`` under ``save``, ``batch_save`` and
  transactions, and the update actions and conditions a caller builds
  (``Order.total.set("abc")`` raises as it is built). A number is written from its
  exact text (``Decimal`` included) after the range check of
  `portchops_models.dynamo.limits`.
* `check_actions` checks a list of update actions against the model they are
  applied to: the path must be one of its attributes (not another model's), a set
  value must have the attribute's type and pass the same checks as in a save, and
  ``remove()`` of a key, the version or a required attribute is refused.

Every refusal is `InvalidRequest` naming the attribute; nothing is sent.

Example:
    >>> from portchops_models import UserProgress
    >>> UserProgress.score.set("abc")
    Traceback (most recent call last):
    ...
    portchops_models.errors.InvalidRequest: score must be a number, got str
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import (
    Action,
    AddAction,
    DeleteAction,
    RemoveAction,
    SetAction,
)

from ..dynamo.limits import number_text, value_size
from ..errors import InvalidRequest

__all__ = ["check_actions", "check_raw_value", "guard", "is_required"]

_GUARDED = "_portchops_guarded"
_TEXT = (str, bytes, bytearray)


def guard(container: type[Any]) -> None:
    """Check every value the attributes declared on `container` serialise (idempotent).

    Called for each model class as it is created (`BaseModel.__init_subclass__`);
    inherited attributes were guarded with their own class. Typed maps
    (`MapAttribute` subclasses with attributes of their own) are guarded too.
    """
    for python_name, attr in list(vars(container).items()):
        if isinstance(attr, Attribute) and not getattr(attr, _GUARDED, False):
            _guard_attribute(attr, python_name)
            if isinstance(attr, MapAttribute) and type(attr) is not MapAttribute:
                guard(type(attr))


def _guard_attribute(attr: Attribute[Any], name: str) -> None:
    check = _checker(attr, name)
    if check is None:
        return
    inner = attr.serialize

    def serialize(value: Any, *args: Any, **kwargs: Any) -> Any:
        if value is None:
            raise InvalidRequest(
                f"{name}: None is not a value to write; leave it unset or use .remove()"
            )
        checked = check(value)
        return inner(value, *args, **kwargs) if checked is None else checked

    object.__setattr__(attr, "serialize", serialize)
    object.__setattr__(attr, _GUARDED, True)


def _checker(attr: Attribute[Any], name: str) -> Callable[[Any], Any] | None:
    """What `attr` accepts: a function that raises for a bad value and returns the
    serialised form when it makes it itself (numbers), else ``None``."""
    if isinstance(attr, TTLAttribute):
        return None  # `ExpiryAttribute` / `TTLAttribute` check their own values
    if isinstance(attr, NumberAttribute):
        return lambda value: number_text(value, name=name)
    if isinstance(attr, UnicodeAttribute):
        return _of_type(str, name, "a str")
    if isinstance(attr, BinaryAttribute):
        return _of_type((bytes, bytearray), name, "bytes")
    if isinstance(attr, BooleanAttribute):
        return _of_type(bool, name, "a bool")
    if isinstance(attr, UTCDateTimeAttribute):
        return _of_type(datetime, name, "a datetime")
    if isinstance(attr, UnicodeSetAttribute):
        return _set_of(name, _member(str, name, "str"))
    if isinstance(attr, BinarySetAttribute):
        inner: Callable[[Any], Any] = attr.serialize  # PynamoDB's member encoding (base64)
        check = _set_of(name, _member((bytes, bytearray), name, "bytes"))
        return lambda value: inner({bytes(b) for b in check(value) or ()}) or None
    if isinstance(attr, NumberSetAttribute):
        return _set_of(name, lambda v: number_text(v, name=name))
    if isinstance(attr, ListAttribute):
        return _list_of(attr, name)
    return None


def _fits(value: object, kind: type | tuple[type, ...]) -> bool:
    """Whether `value` is a `kind` (a bool counts as a bool only, never as a number)."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _of_type(kind: type | tuple[type, ...], name: str, what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> None:
        if not _fits(value, kind):
            raise InvalidRequest(f"{name} must be {what}, got {type(value).__name__}")

    return check


def _collection(value: object, name: str, what: str) -> Iterable[Any]:
    if isinstance(value, (*_TEXT, Mapping)) or not isinstance(value, Iterable):
        raise InvalidRequest(
            f"{name} must be {what}, got {type(value).__name__} {value!r:.40}"
            " (a str is not a collection of strs)"
        )
    return value


def _set_of(name: str, member: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A set attribute's check: a collection (not a str) of members, each checked and
    serialised by `member`; duplicates collapse (DynamoDB refuses them in a set)."""

    def check(value: Any) -> Any:
        members = {member(m) for m in _collection(value, name, "a set")}
        return sorted(members) or None

    return check


def _member(kind: type | tuple[type, ...], name: str, what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not _fits(value, kind):
            raise InvalidRequest(f"{name} must hold {what} values, got {type(value).__name__}")
        return value

    return check


def _list_of(attr: ListAttribute[Any], name: str) -> Callable[[Any], Any]:
    element_type: Any = getattr(attr, "element_type", None)
    inner = _checker(element_type(), f"{name}[]") if isinstance(element_type, type) else None

    def check(value: Any) -> None:
        if not isinstance(value, list | tuple):
            _collection(value, name, "a list")  # a str or bytes: the clearer message
            raise InvalidRequest(f"{name} must be a list, got {type(value).__name__}")
        if inner is not None:
            for member in value:
                if member is None:
                    raise InvalidRequest(f"{name}[]: None is not a value to write")
                inner(member)

    return check


# ---------------------------------------------------------------------- update actions


def is_required(attr: Attribute[Any]) -> bool:
    """Whether an item must always hold `attr`: not nullable and without a default."""
    return not attr.null and attr.default is None and attr.default_for_new is None


def check_actions(
    model: type[Any],
    actions: Sequence[Action],
    *,
    keys: Iterable[str],
    version: str | None,
    index_keys: Mapping[str, Callable[[Mapping[str, Any]], object]],
) -> None:
    """Refuse update actions that `model` cannot take, before anything is sent.

    Args:
        model: the model the update applies to.
        actions: the caller's PynamoDB update actions.
        keys: the DynamoDB names of the table's key attributes (never changed).
        version: the DynamoDB name of the version attribute (the layer bumps it).
        index_keys: index key attributes by DynamoDB name, each with a check of a
            raw value (an index key may not be set to an empty string).

    Raises:
        InvalidRequest: naming the attribute.
    """
    by_name: dict[str, tuple[str, Attribute[Any]]] = {
        attr.attr_name: (python, attr) for python, attr in model.get_attributes().items()
    }
    fixed = set(keys)
    for action in actions:
        path = action.values[0]
        if not isinstance(path, Path):
            raise InvalidRequest(f"not an update of an attribute: {action!r}")
        top = path.path[0]
        found = by_name.get(top)
        if found is None:
            raise InvalidRequest(f"{model.__name__} has no attribute {top!r}: {action!r}")
        python, attr = found
        nested = len(path.path) > 1
        if not nested and path.attribute is not None and path.attribute is not attr:
            raise InvalidRequest(
                f"{python}: the action was built from another model's attribute "
                f"({action!r}); build it from {model.__name__}.{python}"
            )
        if top in fixed:
            raise InvalidRequest(f"{python} is a key of {model.__name__}: it cannot be updated")
        if isinstance(action, RemoveAction):
            if not nested and top == version:
                raise InvalidRequest(f"{python} is the version attribute: it cannot be removed")
            if not nested and is_required(attr):
                raise InvalidRequest(f"{python} is required: it cannot be removed")
            continue
        operand = action.values[1]
        if not isinstance(operand, Value):
            continue  # an expression over paths (x + 1, list_append, if_not_exists)
        if nested:
            check_raw_value(operand.value, f"{python}.{'.'.join(map(str, path.path[1:]))}")
            continue
        if isinstance(action, SetAction):
            _check_set(attr, python, operand.value)
            check = index_keys.get(top)
            if check is not None:
                check(operand.value)
        elif isinstance(action, AddAction | DeleteAction):
            check_raw_value(operand.value, python)


def _check_set(attr: Attribute[Any], name: str, raw: Mapping[str, Any]) -> None:
    ((kind, _data),) = raw.items()
    if kind == "NULL":
        if not attr.null:
            raise InvalidRequest(f"{name} is required: it cannot be set to None")
        return
    if kind != attr.attr_type:
        raise InvalidRequest(
            f"{name} holds {attr.attr_type} values; the action sets a {kind} value"
        )
    check_raw_value(raw, name)


def check_raw_value(raw: Mapping[str, Any], name: str) -> None:
    """Check one serialised value as DynamoDB would (numbers, UTF-8, types), naming it."""
    value_size(raw, name)

"""Safe copies of decoded objects: what a cache hit hands out instead of what it holds.

A decoded model keeps its values in ``attribute_values``; `copy.copy` shares that dict
(and every list, set and map value in it) with the original, so a caller appending to a
list attribute of a copy would change the cached original. `safe_copy` copies every
mutable value and shares only immutable ones (strings, numbers, bytes, datetimes)::

    template = Template(decode(raw))  # kept by the cache, never handed out
    user = template.copy()            # the caller's own object
    user.tags.append("x")             # the template's tags are unchanged

A `Template` works out once which values need copying, so a copy of a model whose
values are all immutable is one dict copy. A projection is frozen (pydantic
``frozen=True``): one that holds no mutable value is handed out as it is (`shareable`);
the others are copied like models.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel as PydanticModel
from pynamodb.attributes import AttributeContainer

__all__ = ["Template", "safe_copy", "shareable"]

T = TypeVar("T")

#: Per class: whether `safe_copy` may rebuild its instances from their ``__dict__``.
_PLAIN: dict[type, bool] = {}

#: Types whose values cannot change in place: shared between a template and its copies.
_IMMUTABLE: Final = frozenset(
    {str, int, float, bool, bytes, type(None), Decimal, datetime, date, time, timedelta, UUID}
)


class Template(Generic[T]):
    """A decoded object to hand out copies of; the object itself is never handed out.

    Which values of it are mutable is worked out here, once: `copy` then copies those
    (as `safe_copy` does) and shares the rest. The object must not change afterwards
    (nothing outside the template holds it).

    Args:
        obj: the decoded model or projection.
    """

    __slots__ = (
        "_cls",
        "_mutable_state",
        "_mutable_values",
        "_obj",
        "_plain",
        "_shared",
        "_state",
        "_values",
    )

    def __init__(self, obj: T) -> None:
        self._obj = obj
        self._cls = type(obj)
        self._shared = shareable(obj)
        self._state: dict[str, Any] | None = None
        self._values: dict[str, Any] = {}
        self._mutable_state: tuple[str, ...] = ()
        self._mutable_values: tuple[str, ...] = ()
        self._plain = False  # every value immutable: a copy is one dict copy
        state: dict[str, Any] | None = getattr(obj, "__dict__", None)
        if state is None or isinstance(obj, PydanticModel) or not _plain(self._cls):
            return  # shared, or copied whole on each `copy`
        values = state.get("attribute_values")
        if type(values) is not dict:
            return
        self._state = state
        self._values = values
        self._mutable_state = tuple(
            name
            for name, value in state.items()
            if name != "attribute_values" and type(value) not in _IMMUTABLE
        )
        self._mutable_values = tuple(
            name for name, value in values.items() if type(value) not in _IMMUTABLE
        )
        self._plain = not self._mutable_state and not self._mutable_values

    def copy(self) -> T:
        """A copy that shares no mutable value with the template (a shareable projection:
        the projection itself)."""
        state = self._state
        if state is None:  # a shareable projection has no state of its own to copy
            return self._obj if self._shared else safe_copy(self._obj)
        new: T = object.__new__(self._cls)
        fresh = new.__dict__
        fresh.update(state)
        values = self._values.copy()
        if not self._plain:
            for name in self._mutable_state:
                fresh[name] = _fresh(state[name])
            for name in self._mutable_values:
                values[name] = _fresh(values[name])
        fresh["attribute_values"] = values
        return new


def safe_copy(obj: T) -> T:
    """A copy of `obj` that shares no mutable value with it (see the module docstring).

    A PynamoDB model or map attribute (any object whose state is all in its ``__dict__``,
    without copy hooks of its own) gets a new instance of its class whose state is a
    fresh copy; a pydantic model is copied by its own ``__copy__`` and its mutable field
    values replaced by copies; anything else is `copy.deepcopy`'d.
    """
    if isinstance(obj, PydanticModel):
        twin = obj.__copy__()
        state = twin.__dict__
        for name, value in state.items():
            if type(value) not in _IMMUTABLE:
                state[name] = _fresh(value)
        return twin
    cls = type(obj)
    if not _plain(cls):
        return copy.deepcopy(obj)
    new: T = object.__new__(cls)
    state = new.__dict__
    for name, value in obj.__dict__.items():
        state[name] = value if type(value) in _IMMUTABLE else _fresh(value)
    return new


def shareable(obj: object) -> bool:
    """Whether `obj` can be handed to every caller as it is: a frozen pydantic model whose
    field values are all immutable (a caller can change nothing in it)."""
    if not isinstance(obj, PydanticModel) or not obj.model_config.get("frozen", False):
        return False
    return all(type(value) in _IMMUTABLE for value in obj.__dict__.values())


def _plain(cls: type) -> bool:
    """`_is_plain`, worked out once per class."""
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = _PLAIN[cls] = _is_plain(cls)
    return plain


def _is_plain(cls: type) -> bool:
    """Whether instances of `cls` are all in their ``__dict__``, built by ``object.__new__``
    with no copy hooks of their own (PynamoDB models are)."""
    hooks = ("__new__", "__copy__", "__deepcopy__", "__reduce__", "__reduce_ex__", "__getstate__")
    return (
        "__dict__" in dir(cls)
        and not any(getattr(base, "__slots__", ()) for base in cls.__mro__)
        and all(getattr(cls, hook, None) is getattr(object, hook, None) for hook in hooks)
    )


def _fresh(value: Any) -> Any:
    """`value` with every mutable container copied, level by level (immutables shared).

    Dicts, lists and sets, which decoded items are made of, are rebuilt here, map
    attributes by `safe_copy`; anything else (custom values) goes through `copy.deepcopy`.
    """
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {
            key: item if type(item) in _IMMUTABLE else _fresh(item) for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _IMMUTABLE else _fresh(item) for item in value]
    if kind is set:  # a set attribute's members are str, numbers or bytes
        return {item if type(item) in _IMMUTABLE else copy.deepcopy(item) for item in value}
    if isinstance(value, AttributeContainer):
        return safe_copy(value)
    return copy.deepcopy(value)

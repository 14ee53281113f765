"""Building models from raw DynamoDB items, without PynamoDB's per-item overhead.

PynamoDB's ``from_raw_data`` instantiates the model (running every attribute
default), clears it, runs the defaults again, then sets each stored value
through its descriptor. `model_decoder` builds the same object visiting each
attribute once. Parity with ``from_raw_data`` is tested in ``tests/models/test_decoding.py``
and checked again by the benchmarks before they time anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from pynamodb.attributes import (
    Attribute,
    AttributeContainer,
    NumberAttribute,
    TTLAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from .base import BaseModel
from .encryption import encryption_of
from .versions import versions_of

__all__ = ["model_decoder", "partial_decoder", "partial_of"]

#: Where a partial item keeps the raw item it was read from.
_PARTIAL = "_portchops_partial"

ModelT = TypeVar("ModelT", bound=Model)
#: ``from_raw_data`` as PynamoDB and `BaseModel` (which only upcasts first) define it.
_STANDARD_FROM_RAW = (
    cast(Any, Model.from_raw_data).__func__,
    cast(Any, BaseModel.from_raw_data).__func__,
)
RawItem = dict[str, dict[str, Any]]


def model_decoder(model: type[ModelT]) -> Callable[[RawItem], ModelT]:
    """``model.from_raw_data`` without its overhead: the same object comes out.

    PynamoDB instantiates the model (running every attribute default), clears it, runs
    the defaults again, then sets each stored value through its descriptor. Here each
    attribute is visited once: a stored value is deserialized exactly as PynamoDB does,
    a default is computed only when the item lacks the attribute, and values go straight
    into ``attribute_values`` unless the attribute's class has its own ``__set__`` (TTL,
    version...), which then runs. Models with a discriminator or their own construction
    hooks keep ``from_raw_data``.
    """
    plain = _upcasting(model, _plain_decoder(model))
    sealed = encryption_of(model)
    if sealed is None:
        return plain
    open_item = sealed.open

    def decode_sealed(item: RawItem) -> ModelT:
        return plain(open_item(item))

    return decode_sealed


def _plain_decoder(model: type[ModelT]) -> Callable[[RawItem], ModelT]:
    """The decoder of plaintext items (`model_decoder` opens encrypted ones first)."""
    untyped: Any = model
    standard = (
        not untyped._discriminator
        and untyped.__new__ is object.__new__
        and untyped.__init__ is Model.__init__
        and untyped.from_raw_data.__func__ in _STANDARD_FROM_RAW
        and untyped._instantiate.__func__ is cast(Any, AttributeContainer._instantiate).__func__
        and untyped._container_deserialize is AttributeContainer._container_deserialize
        and untyped._set_defaults is AttributeContainer._set_defaults
    )
    if not standard:
        return cast(Callable[[RawItem], ModelT], model.from_raw_data)
    return _compile(model, untyped)


def partial_decoder(model: type[ModelT]) -> Callable[[RawItem], ModelT]:
    """A decoder for items read through an index that does not project every attribute.

    The item is decoded as `model_decoder` does, but attributes the index did not
    return are left unset instead of taking their defaults (a ``balance`` of 0 where
    1000 is stored would be a lie), and the object remembers the raw item it was read
    from (`partial_of`), so a save writes only what it holds.
    """
    decode = _plain_decoder(model)
    names = [(python, attr.attr_name) for python, attr in model.get_attributes().items()]
    sealed = encryption_of(model)
    versions = versions_of(model)
    upcast = versions.upcast if versions is not None and versions.upcasts else None

    def decode_partial(item: RawItem) -> ModelT:
        # An index that projects no encrypted attribute holds nothing to open (nor the
        # signature, which covers attributes it does not project).
        if sealed is not None and sealed.holds_encrypted(item):
            item = sealed.open(item)
        if upcast is not None:
            item = upcast(item)
        obj = decode(item)
        values = obj.attribute_values
        for python, name in names:
            if name not in item:
                values.pop(python, None)
        setattr(obj, _PARTIAL, item)
        return obj

    return decode_partial


def _upcasting(
    model: type[ModelT], decode: Callable[[RawItem], ModelT]
) -> Callable[[RawItem], ModelT]:
    """`decode` after the model's upcasters (`portchops_models.models.versions`), if any."""
    versions = versions_of(model)
    if versions is None or not versions.upcasts:
        return decode
    upcast = versions.upcast

    def decode_current(item: RawItem) -> ModelT:
        return decode(upcast(item))

    return decode_current


def partial_of(item: object) -> RawItem | None:
    """The raw item a partial model instance was read from, or ``None`` for a whole item."""
    found: RawItem | None = getattr(item, _PARTIAL, None)
    return found


def _compile(model: type[ModelT], untyped: Any) -> Callable[[RawItem], ModelT]:
    """Write the model's decoder as straight-line code, one block per attribute.

    A loop over a plan costs several microseconds an item in tuple unpacking and
    branches; the generated function does only each attribute's own work. Names and
    values reach the code as constants and bound arguments, never as source text.
    """
    env: dict[str, Any] = {"new": object.__new__, "model": model}
    lines = ["def decode(item):", "    obj = new(model)", "    values = {}"]
    lines.append("    obj.attribute_values = values")
    lines.append("    get = item.get")
    for n, (python_name, attr) in enumerate(model.get_attributes().items()):
        key = untyped._dynamo_to_python_attrs.get(attr.attr_name, attr.attr_name) or python_name
        setter = attr.__set__ if type(attr).__set__ is not Attribute.__set__ else None
        # A TTL attribute's __set__ only normalises what a caller assigns (seconds, naive or
        # local datetimes) to an aware UTC datetime; a stored value is read as exactly that,
        # so it goes straight in instead of being validated again on every decoded item.
        stored_direct = setter is None or isinstance(attr, TTLAttribute)
        env[f"name{n}"], env[f"key{n}"], env[f"read{n}"] = attr.attr_name, key, _reader(attr)
        env[f"set{n}"], env[f"default{n}"] = setter, attr.default
        store = f"values[key{n}] = {{}}" if setter is None else f"set{n}(obj, {{}})"
        lines.append(f"    raw = get(name{n})")
        lines.append('    if raw and "NULL" not in raw:')
        fast = _converter(attr)
        if fast is None:
            value = f"read{n}(raw)"
        else:  # the stored value itself, converted without the attribute's call layers
            convert, extra = fast
            env[f"type{n}"], env[f"conv{n}"], env[f"extra{n}"] = attr.attr_type, convert, extra
            lines.append(f"        stored = raw.get(type{n})")
            call = "stored" if convert is None else f"conv{n}(stored)"
            if extra is not None:
                call = f"conv{n}(stored, extra{n})"
            value = f"{call} if stored is not None else read{n}(raw)"
        direct = f"values[key{n}] = {value}"
        lines.append(f"        {direct if stored_direct else store.format(value)}")
        if attr.default is not None:
            default = f"default{n}()" if callable(attr.default) else f"default{n}"
            lines.append("    else:")
            lines.append(f"        value = {default}")
            lines.append("        if value is not None:")
            lines.append(f"            {store.format('value')}")
    lines.append("    return obj")
    exec("\n".join(lines), env)  # the source is ours; see the docstring
    decode: Callable[[RawItem], ModelT] = env["decode"]
    return decode


def _converter(attr: Attribute[Any]) -> tuple[Callable[..., Any] | None, Any] | None:
    """How to turn the stored value (``raw[attr.attr_type]``) into what `_reader` returns:
    ``(None, None)`` for the value itself, ``(convert, None)`` for ``convert(value)``,
    ``(convert, extra)`` for ``convert(value, extra)``; ``None`` when only `_reader` knows."""
    kind: Any = type(attr)
    if kind.get_value is not Attribute.get_value:
        return None
    if kind.deserialize is Attribute.deserialize:
        return None, None
    if kind.deserialize is UTCDateTimeAttribute.deserialize:
        return _utc_datetime, attr.deserialize
    if kind.deserialize is NumberAttribute.deserialize:
        return _json_number, None
    if kind.deserialize is VersionAttribute.deserialize:
        return _version_number, None
    if kind.deserialize is TTLAttribute.deserialize:
        return _ttl_converter(), None
    return None


def _reader(attr: Attribute[Any]) -> Callable[[dict[str, Any]], Any]:
    """``attr.deserialize(attr.get_value(raw))``, with the equivalent shortcuts of `_converter`."""
    get_value = attr.get_value
    deserialize = attr.deserialize
    fast = _converter(attr)
    if fast is None:
        return lambda raw: deserialize(get_value(raw))
    convert, extra = fast
    if convert is None:  # strings: the stored value itself
        return get_value
    if extra is None:
        return lambda raw: convert(get_value(raw))
    return lambda raw: convert(get_value(raw), extra)


def _ttl_converter() -> Callable[[Any], datetime]:
    """A TTL's epoch seconds (the stored text) as PynamoDB's aware UTC datetime,
    remembering recent values.

    The rows of a page were mostly written together and share their expiry second, and a
    datetime is immutable, so one object per distinct value serves them all.
    """
    seen: dict[Any, datetime] = {}

    def convert(text: Any) -> datetime:
        found = seen.get(text)
        if found is None:
            found = datetime.fromtimestamp(_json_number(text), tz=UTC)
            if len(seen) >= 4096:
                seen.clear()
            seen[text] = found
        return found

    return convert


def _version_number(value: Any) -> int:
    """A version attribute's stored number, as PynamoDB's ``VersionAttribute`` reads it."""
    return int(_json_number(value))


def _json_number(value: Any) -> Any:
    """``json.loads(value)`` (PynamoDB's number decoding); plain integers skip the parser."""
    plain = type(value) is str and value.isascii() and value.isdigit()
    if plain and (value[0] != "0" or len(value) == 1):  # JSON has no leading zeros
        return int(value)
    return json.loads(value)


def _utc_datetime(value: Any, slow: Callable[[Any], datetime]) -> datetime:
    """PynamoDB's UTC datetime decoding, by C's ``fromisoformat`` when the string has
    exactly PynamoDB's format, ``YYYY-MM-DDTHH:MM:SS.ffffff+0000`` (anything else, or
    anything ``fromisoformat`` refuses, goes to PynamoDB's own parser)."""
    if (
        type(value) is str
        and len(value) == 31
        and value[26:] == "+0000"
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == "T"
        and value[13] == ":"
        and value[16] == ":"
        and value[19] == "."
        and value[11:13] < "24"
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return slow(value)

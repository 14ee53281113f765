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
from dataclasses import dataclass
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
    """The model's decoder: `_dense` first, `_general` for any item it does not take.

    Both are generated as straight-line code, one block per attribute: a loop over a
    plan costs several microseconds an item in tuple unpacking and branches; the
    generated functions do only each attribute's own work. Names and values reach the
    code as constants and bound arguments, never as source text.
    """
    plans = [
        _plan(n, python, attr, untyped)
        for n, (python, attr) in enumerate(model.get_attributes().items())
    ]
    general = _general(model, plans)
    return _dense(model, plans, general) or general


@dataclass(frozen=True, slots=True)
class _Attr:
    """How the generated decoders read one attribute (``n`` numbers its bound names)."""

    n: int
    attr: Attribute[Any]
    key: str
    setter: Callable[[Any, Any], None] | None
    #: whether a stored value goes straight into ``attribute_values`` (no ``__set__``)
    direct: bool
    fast: tuple[Callable[..., Any] | None, Any] | None

    def env(self) -> dict[str, Any]:
        """The bound names the attribute's source refers to."""
        n, attr = self.n, self.attr
        found = {
            f"name{n}": attr.attr_name,
            f"key{n}": self.key,
            f"read{n}": _reader(attr),
            f"set{n}": self.setter,
            f"default{n}": attr.default,
            f"type{n}": attr.attr_type,
        }
        if self.fast is not None:
            found[f"conv{n}"], found[f"extra{n}"] = self.fast
        return found

    def block(self) -> list[str]:
        """Source lines that read the attribute from ``get`` (``item.get``) into ``values``
        (or through its ``__set__``), its default when the item lacks it or holds NULL."""
        n = self.n
        store = f"values[key{n}] = {{}}" if self.setter is None else f"set{n}(obj, {{}})"
        lines = [f"    raw = get(name{n})", '    if raw and "NULL" not in raw:']
        if self.fast is None:
            value = f"read{n}(raw)"
        else:  # the stored value itself, converted without the attribute's call layers
            convert, extra = self.fast
            lines.append(f"        stored = raw.get(type{n})")
            call = "stored" if convert is None else f"conv{n}(stored)"
            if extra is not None:
                call = f"conv{n}(stored, extra{n})"
            value = f"{call} if stored is not None else read{n}(raw)"
        direct = f"values[key{n}] = {value}"
        lines.append(f"        {direct if self.direct else store.format(value)}")
        if self.attr.default is not None:
            default = f"default{n}()" if callable(self.attr.default) else f"default{n}"
            lines.append("    else:")
            lines.append(f"        value = {default}")
            lines.append("        if value is not None:")
            lines.append(f"            {store.format('value')}")
        return lines


def _plan(n: int, python_name: str, attr: Attribute[Any], untyped: Any) -> _Attr:
    key = untyped._dynamo_to_python_attrs.get(attr.attr_name, attr.attr_name) or python_name
    kind: Any = type(attr)
    setter = attr.__set__ if kind.__set__ is not Attribute.__set__ else None
    # A TTL attribute's __set__ only normalises what a caller assigns (seconds, naive or
    # local datetimes) to an aware UTC datetime, and a version's only casts to int; a
    # stored value is read as exactly that, so it goes straight in instead of being
    # checked again on every decoded item.
    direct = (
        setter is None
        or isinstance(attr, TTLAttribute)
        or kind.__set__ is cast(Any, VersionAttribute).__set__
    )
    return _Attr(n, attr, key, setter, direct, _converter(attr))


def _general(model: type[ModelT], plans: list[_Attr]) -> Callable[[RawItem], ModelT]:
    """The decoder of any item: each attribute read from ``item.get``, defaults applied."""
    env: dict[str, Any] = {"new": object.__new__, "model": model}
    lines = ["def decode(item):", "    obj = new(model)", "    values = {}"]
    _read_the_rest(lines, env, plans)
    return _define(lines, env)


def _read_the_rest(lines: list[str], env: dict[str, Any], plans: list[_Attr]) -> None:
    """End a decoder: `values` becomes ``obj``'s, `plans` are read from ``item.get`` into
    it (each attribute's `_Attr.block`), and ``obj`` is returned."""
    lines.append("    obj.attribute_values = values")
    if plans:
        lines.append("    get = item.get")
    for plan in plans:
        env.update(plan.env())
        lines.extend(plan.block())
    lines.append("    return obj")


def _dense(
    model: type[ModelT], plans: list[_Attr], general: Callable[[RawItem], ModelT]
) -> Callable[[RawItem], ModelT] | None:
    """The decoder of the usual item, which holds every key and non-null attribute: those
    read by subscript into one dict display, the rest as `_general` reads them.

    A DynamoDB value holds exactly one type, so ``item[name][type]`` is the stored value
    wherever `_general` would find it; an item without one of them, with a NULL or another
    type there, or with a value a shortcut does not take (anything that raises) is left
    to `general` whole, so every result and every error is `general`'s. Small numbers
    (up to four characters: counts, scores, versions) and TTLs come from bounded memos:
    such values repeat across a page, and ints, floats and datetimes are immutable.
    """
    env: dict[str, Any] = {
        "new": object.__new__,
        "model": model,
        "general": general,
        "fromiso": datetime.fromisoformat,
    }
    dense = [p for p in plans if p.direct and p.fast is not None and _expected(p.attr)]
    if not dense:
        return None
    rest = [p for p in plans if p not in dense]
    lines = ["def decode(item):", "    try:"]
    for plan in dense:
        n, (convert, _) = plan.n, cast(tuple[Any, Any], plan.fast)
        env.update(plan.env())
        lines.append(f"        v{n} = item[name{n}][type{n}]")
        if convert is _json_number or convert is _version_number:
            env[f"small{n}"] = _Memo(convert)
            lines.append(f"        v{n} = small{n}[v{n}] if len(v{n}) < 5 else conv{n}(v{n})")
        elif convert is _utc_datetime:
            check = _PYNAMODB_UTC.format(v=f"v{n}")
            lines.append(f"        v{n} = fromiso(v{n}) if {check} else conv{n}(v{n}, extra{n})")
        elif isinstance(convert, _Memo):
            lines.append(f"        v{n} = conv{n}[v{n}]")
        elif convert is not None:
            lines.append(f"        v{n} = conv{n}(v{n})")
    pairs = ", ".join(f"key{p.n}: v{p.n}" for p in dense)
    lines.append(f"        values = {{{pairs}}}")
    lines.append("    except Exception:")
    lines.append("        return general(item)")
    lines.append("    obj = new(model)")
    _read_the_rest(lines, env, rest)
    return _define(lines, env)


def _expected(attr: Attribute[Any]) -> bool:
    """Whether items usually hold the attribute: keys, non-null ones, versions (written
    on every save); an item without it costs one failed `_dense` attempt, no more."""
    return bool(
        attr.is_hash_key or attr.is_range_key or not attr.null or isinstance(attr, VersionAttribute)
    )


def _define(lines: list[str], env: dict[str, Any]) -> Callable[..., Any]:
    """The function ``decode`` that `lines` define, over the names of `env`."""
    exec("\n".join(lines), env)  # the source is ours; see `_compile`
    decode: Callable[..., Any] = env["decode"]
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


class _Memo(dict[Any, Any]):
    """``convert(text)`` of stored texts, remembered: at most `_MEMO_MAX` of them, then
    forgotten all at once (the values must be immutable: one object serves every item)."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __call__(self, text: Any) -> Any:
        return self[text]

    def __missing__(self, text: Any) -> Any:
        value = self.convert(text)
        if len(self) >= _MEMO_MAX:
            self.clear()
        self[text] = value
        return value


_MEMO_MAX = 4096


def _ttl_converter() -> _Memo:
    """A TTL's epoch seconds (the stored text) as PynamoDB's aware UTC datetime,
    remembering recent values.

    The rows of a page were mostly written together and share their expiry second, and a
    datetime is immutable, so one object per distinct value serves them all.
    """
    return _Memo(lambda text: datetime.fromtimestamp(_json_number(text), tz=UTC))


def _version_number(value: Any) -> int:
    """A version attribute's stored number, as PynamoDB's ``VersionAttribute`` reads it."""
    return int(_json_number(value))


def _json_number(value: Any) -> Any:
    """``json.loads(value)`` (PynamoDB's number decoding); plain integers skip the parser."""
    plain = type(value) is str and value.isascii() and value.isdigit()
    if plain and (value[0] != "0" or len(value) == 1):  # JSON has no leading zeros
        return int(value)
    return json.loads(value)


#: ``{v}`` has exactly PynamoDB's format, ``YYYY-MM-DDTHH:MM:SS.ffffff+0000`` (for a str;
#: anything else fails it or raises): the shortcut of `_utc_datetime` and of `_dense`.
_PYNAMODB_UTC = (
    'len({v}) == 31 and {v}[26:] == "+0000" and {v}[4:20:3] == "--T::." and {v}[11:13] < "24"'
)


def _utc_datetime(value: Any, slow: Callable[[Any], datetime]) -> datetime:
    """PynamoDB's UTC datetime decoding, by C's ``fromisoformat`` when the string has
    exactly PynamoDB's format (`_PYNAMODB_UTC`; anything else, or anything
    ``fromisoformat`` refuses, goes to PynamoDB's own parser)."""
    if type(value) is str and _pynamodb_utc(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return slow(value)


_pynamodb_utc: Callable[[str], bool] = _define(
    ["def decode(v):", f"    return {_PYNAMODB_UTC.format(v='v')}"], {}
)

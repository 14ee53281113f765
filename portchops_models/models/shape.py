"""What a model's table looks like, derived once per model class.

`shape_of(Model)` is the one place that knows a model's table: its key
attributes and their DynamoDB types (S, N or B) with the codec between Python
keys and DynamoDB keys, the TTL attribute (and whether expiry slides on every
write), the version attribute, the attributes stamped with the time of every
write, and the indexes. Repositories, request builders, transactions and the
IAM policy all read it from here; none of them names a particular model's
attributes.

Keys: a hash-only model's key is its hash key value (``"u1"``); a model with a
range key has ``(hash, range)`` tuples. ``S`` keys are non-empty ``str``, ``N``
keys ``int``, ``float`` or ``Decimal`` (not ``bool``) within DynamoDB's range,
``B`` keys non-empty ``bytes``. Anything else is `InvalidRequest` naming the
attribute, before anything is sent.

Example:
    >>> from portchops_models import UserProgress
    >>> shape = shape_of(UserProgress)
    >>> shape.raw_key(("u1", "lesson-1"))
    {'userId': {'S': 'u1'}, 'lessonId': {'S': 'lesson-1'}}
    >>> shape.key_of({"userId": {"S": "u1"}, "lessonId": {"S": "lesson-1"}})
    ('u1', 'lesson-1')

Number keys come back by value (an ``int`` when integral, else a normalised
``Decimal``), so ``1e23`` and ``10**23`` are one key, as they are to DynamoDB.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any, Literal, cast

from pynamodb.attributes import Attribute, TTLAttribute
from pynamodb.expressions.update import Action
from pynamodb.indexes import Index, LocalSecondaryIndex

from ..dynamo.limits import HASH_KEY_MAX_BYTES, RANGE_KEY_MAX_BYTES, check_key_part, number_text
from ..errors import ConfigurationError, InvalidRequest
from .attributes import ExpiryAttribute, UpdatedAtAttribute
from .base import BaseModel
from .encryption import FieldEncryption, encryption_of
from .entity import TYPE_ATTRIBUTE, EntityKeys, EntityTable, entity_keys
from .values import check_actions
from .versions import SchemaVersions, versions_of

__all__ = ["IndexShape", "KeyAttribute", "RawItem", "TableShape", "shape_of"]

RawItem = dict[str, dict[str, Any]]
KeyKind = Literal["S", "N", "B"]


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    """One key attribute: its names, its DynamoDB type and its size limit.

    Attributes:
        python_name: the model's attribute name (``user_id``).
        name: the DynamoDB attribute name (``userId``).
        kind: ``"S"``, ``"N"`` or ``"B"``.
        max_bytes: 2048 for a partition key, 1024 for a sort key.
    """

    python_name: str
    name: str
    kind: KeyKind
    max_bytes: int

    def encode(self, value: object) -> dict[str, Any]:
        """The DynamoDB value of a Python key part, checked (`InvalidRequest` naming it)."""
        if self.kind == "S":
            if type(value) is str and value.isascii() and 0 < len(value) <= self.max_bytes:
                return {"S": value}  # fast path: an ASCII str's length is its size
            return {"S": check_key_part(value, name=self.python_name, max_bytes=self.max_bytes)}
        if self.kind == "N":
            return {"N": number_text(value, name=self.python_name)}
        if not isinstance(value, bytes | bytearray):
            raise InvalidRequest(f"{self.python_name} must be bytes, got {type(value).__name__}")
        if not value:
            raise InvalidRequest(f"{self.python_name} must not be empty")
        if len(value) > self.max_bytes:
            raise InvalidRequest(
                f"{self.python_name} is {len(value)} bytes; DynamoDB allows {self.max_bytes}"
            )
        return {"B": bytes(value)}

    def decode(self, value: Mapping[str, Any]) -> Hashable:
        """The Python key part of a DynamoDB value (as the model's attribute reads it)."""
        if self.kind == "S":
            text: str = value["S"]
            return text
        if self.kind == "N":
            return _number(value["N"])
        data = value["B"]
        return bytes(data)


@dataclass(frozen=True, slots=True)
class IndexShape:
    """A secondary index: its name, key attributes and what it projects.

    Attributes:
        partial: the index does not project every attribute (KEYS_ONLY or INCLUDE):
            items read through it are partial (`portchops_models.models.decoding.partial_of`).
    """

    name: str
    hash_key: KeyAttribute
    range_key: KeyAttribute | None
    local: bool
    partial: bool = False


@dataclass(frozen=True, slots=True)
class _Stamp:
    """An attribute every write sets: its python name and how to compute the value."""

    python_name: str
    attribute: Attribute[Any]
    value: Callable[[], Any]


@dataclass(frozen=True)
class TableShape:
    """A model's table shape; build it with `shape_of` (cached per model class).

    Attributes:
        model: the model class.
        hash_key: the partition key attribute.
        range_key: the sort key attribute, if any.
        ttl_name: the DynamoDB name of the TTL attribute, if any.
        version_name: the python name of the version attribute, if any.
        indexes: the secondary indexes by name.
        index_keys: the key attributes of the indexes that are not keys of the table,
            by DynamoDB name (an item that holds one must hold a valid key value).
        encryption: the model's encrypted attributes and blind indexes
            (`portchops_models.models.encryption`); ``None`` when it has none.
        entity: an entity's key templates (`portchops_models.models.entity`): its keys
            are natural keys, composed into and parsed from the stored ones; ``None``
            for a model that owns its table.
        versions: the model's schema version and upcasters
            (`portchops_models.models.versions`); ``None`` when it declares none.
    """

    model: type[BaseModel]
    hash_key: KeyAttribute
    range_key: KeyAttribute | None
    ttl_name: str | None
    version_name: str | None
    indexes: Mapping[str, IndexShape]
    _stamps: tuple[_Stamp, ...] = field(repr=False)
    index_keys: Mapping[str, KeyAttribute] = field(default_factory=dict, repr=False)
    entity: EntityKeys | None = None
    encryption: FieldEncryption | None = None
    versions: SchemaVersions | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        """The DynamoDB names of the key attributes, hash key first."""
        if self.range_key is None:
            return (self.hash_key.name,)
        return (self.hash_key.name, self.range_key.name)

    @property
    def version_attribute(self) -> Attribute[Any] | None:
        """The version attribute object (for conditions and actions), if any."""
        if self.version_name is None:
            return None
        attr: Attribute[Any] = getattr(self.model, self.version_name)
        return attr

    # ------------------------------------------------------------------ keys

    def key_parts(self, key: object) -> tuple[object, ...]:
        """Split a key into its parts, checking its shape (not yet the parts' types)."""
        if self.range_key is None:
            if isinstance(key, tuple):
                raise InvalidRequest(
                    f"{self.model.__name__} key is a {self.hash_key.python_name} value, "
                    f"not a tuple: {key!r}"
                )
            return (key,)
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InvalidRequest(
                f"{self.model.__name__} key must be a "
                f"({self.hash_key.python_name}, {self.range_key.python_name}) tuple, "
                f"got {key!r}"
            )
        return key

    @functools.cached_property
    def _text_limits(self) -> tuple[int, int] | None:
        """``(hash max bytes, range max bytes or 0)`` when every key part is a string and
        the model owns its table: the keys `_plain_text` recognises, else ``None``."""
        hash_key, range_key = self.hash_key, self.range_key
        if self.entity is not None or hash_key.kind != "S":
            return None
        if range_key is None:
            return (hash_key.max_bytes, 0)
        return (hash_key.max_bytes, range_key.max_bytes) if range_key.kind == "S" else None

    def _plain_text(self, key: object) -> bool:
        """Whether `key` is a valid key of ASCII strings only (each part's length is its
        size): the key exactly as `raw_key` would encode and `key_of` read it back."""
        limits = self._text_limits
        if limits is None:
            return False
        if type(key) is str:
            return not limits[1] and key.isascii() and 0 < len(key) <= limits[0]
        if type(key) is not tuple or not limits[1] or len(key) != 2:
            return False
        first, second = key
        return (
            type(first) is str
            and type(second) is str
            and first.isascii()
            and second.isascii()
            and 0 < len(first) <= limits[0]
            and 0 < len(second) <= limits[1]
        )

    def raw_key(self, key: object) -> RawItem:
        """The DynamoDB ``Key`` of a Python key, checked before the wire."""
        if self._plain_text(key):
            if type(key) is str:
                return {self.hash_key.name: {"S": key}}
            first, second = cast(tuple[str, str], key)
            return {
                self.hash_key.name: {"S": first},
                cast(KeyAttribute, self.range_key).name: {"S": second},
            }
        if self.entity is not None and self.range_key is not None:
            pk, sk = self.entity.render(key)
            return {
                self.hash_key.name: self.hash_key.encode(pk),
                self.range_key.name: self.range_key.encode(sk),
            }
        parts = self.key_parts(key)
        raw = {self.hash_key.name: self.hash_key.encode(parts[0])}
        if self.range_key is not None:
            raw[self.range_key.name] = self.range_key.encode(parts[1])
        return raw

    def raw_keys(self, keys: Sequence[Hashable]) -> list[RawItem]:
        """The DynamoDB ``Key`` of each key, `keys` already canonical (`canonical`: checked,
        so the string keys of `_text_limits` are only wrapped)."""
        limits = self._text_limits
        if limits is None:
            return [self.raw_key(key) for key in keys]
        name = self.hash_key.name
        if self.range_key is None:
            return [{name: {"S": key}} for key in keys]
        second = self.range_key.name
        pairs = cast(Sequence[tuple[str, str]], keys)
        return [{name: {"S": h}, second: {"S": r}} for h, r in pairs]

    def check_key(self, key: object) -> None:
        """Raise `InvalidRequest` if `key` is not a valid key of this model."""
        self.raw_key(key)

    def canonical(self, key: object) -> Hashable:
        """The key as `key_of` reads it back from DynamoDB (numbers by value), checked.

        Caches and batch results are keyed by it, so ``2.5`` and ``Decimal("2.50")``
        are the same item, as they are to DynamoDB.
        """
        if self._plain_text(key):
            return key
        return self.key_of(self.raw_key(key))

    def canonical_keys(self, keys: Iterable[object]) -> list[Hashable]:
        """`canonical` of each key, in order (duplicates kept); the first bad key raises."""
        canonical = self.canonical
        limits = self._text_limits
        if limits is None or self.range_key is not None:
            return [canonical(key) for key in keys]
        most = limits[0]  # `_plain_text` of a hash key, inline: a call per key costs more
        return [
            key if type(key) is str and key.isascii() and 0 < len(key) <= most else canonical(key)
            for key in keys
        ]

    def key_of(self, item: Mapping[str, Mapping[str, Any]]) -> Hashable:
        """The Python key of a raw item (or raw key)."""
        if self._text_limits is not None:  # string parts, read as `KeyAttribute.decode` does
            if self.range_key is None:
                text: str = item[self.hash_key.name]["S"]
                return text
            return (item[self.hash_key.name]["S"], item[self.range_key.name]["S"])
        if self.entity is not None and self.range_key is not None:
            return self.entity.natural_of(
                item[self.hash_key.name]["S"], item[self.range_key.name]["S"]
            )
        hash_part = self.hash_key.decode(item[self.hash_key.name])
        if self.range_key is None:
            return hash_part
        return (hash_part, self.range_key.decode(item[self.range_key.name]))

    def key_of_model(self, item: BaseModel) -> Hashable:
        """The Python key of a model instance (as it would be written)."""
        if self.entity is not None:
            return self.entity.natural_of_model(item)
        hash_part = getattr(item, self.hash_key.python_name)
        if self.range_key is None:
            return hash_part  # type: ignore[no-any-return]
        return (hash_part, getattr(item, self.range_key.python_name))

    def check_index_keys(self, item: Mapping[str, Mapping[str, Any]]) -> None:
        """Raise `InvalidRequest` if `item` holds an index key attribute with a value no
        index can take (an empty or oversized string, say); an item without it is simply
        not in that index."""
        for name, attr in self.index_keys.items():
            value = item.get(name)
            if value is not None and "NULL" not in value:
                _check_index_key(attr, value)

    # ------------------------------------------------------------------ update actions

    def check_actions(self, actions: Sequence[Action]) -> None:
        """Refuse update actions this model cannot take (`models.values.check_actions`)."""
        if self.entity is not None:
            _check_entity_actions(self.entity, actions)
        if self.encryption is not None:
            self.encryption.refuse_update(_action_names(actions))
        version = self.version_attribute
        check_actions(
            self.model,
            actions,
            keys=self.key_names,
            version=None if version is None else version.attr_name,
            index_keys={
                name: functools.partial(_check_index_key, attr)
                for name, attr in self.index_keys.items()
            },
        )

    # ------------------------------------------------------------------ TTL and stamps

    def expired(self, item: Mapping[str, Mapping[str, Any]], now: float | None = None) -> bool:
        """Whether the item's TTL has passed (DynamoDB still returns it until it is swept)."""
        return self.until(item) <= (time.time() if now is None else now)

    def until(self, item: Mapping[str, Mapping[str, Any]]) -> float:
        """The epoch second from which the item counts as expired (`expired`): its TTL
        attribute, or ``inf`` when it has none (no TTL, not a number, not a time)."""
        name = self.ttl_name
        if name is None:
            return math.inf
        value = item.get(name)
        if value is None or "N" not in value:
            return math.inf
        try:
            until = float(value["N"])
        except ValueError:
            return math.inf
        return math.inf if until != until else until  # NaN: never expired, as before

    def unexpired(self, items: list[RawItem], now: float) -> list[RawItem]:
        """The items whose TTL has not passed at `now` (all of them without a TTL): a page's
        worth of `expired` in one loop. An entity keeps only the items of its own type
        (others share its table, and may share a partition or an index)."""
        if self.entity is not None:
            items = self.own(items)
        return self.live(items, now)

    def live(self, items: list[RawItem], now: float) -> list[RawItem]:
        """The items whose TTL has not passed at `now` (all of them without a TTL), each
        as `expired` reads it, in one loop; unlike `unexpired`, of any entity type."""
        name = self.ttl_name
        if name is None:
            return items
        try:  # the usual page: every item holds its TTL as a Number
            return [item for item in items if not float(item[name]["N"]) <= now]
        except (KeyError, TypeError, ValueError):
            pass  # one does not: each item as `expired` reads it
        live: list[RawItem] = []
        keep = live.append
        for item in items:
            value = item.get(name)
            seconds = None if value is None else value.get("N")
            if seconds is not None:
                try:
                    if float(seconds) <= now:
                        continue
                except ValueError:
                    pass
            keep(item)
        return live

    def refuse_unguarded(self, what: str) -> None:
        """Raise `InvalidRequest` for `what` (a batch, a transaction's save) on an entity
        with unique attributes: only its repository's save and delete move its guards."""
        keys = self.entity
        if keys is not None and keys.unique:
            raise InvalidRequest(
                f"{self.model.__name__} has unique attributes ({', '.join(keys.unique)}): "
                f"{what} cannot keep their guards; save() or delete() each item through "
                "its repository (one transaction with its guards)"
            )

    def own(self, items: list[RawItem]) -> list[RawItem]:
        """The items of this entity's type (all of them for a model that owns its table)."""
        if self.entity is None:
            return items
        wanted = {"S": self.entity.name}
        return [item for item in items if item.get(TYPE_ATTRIBUTE) == wanted]

    @property
    def stamped_names(self) -> tuple[str, ...]:
        """The DynamoDB names of the attributes every write sets (`stamp`)."""
        return tuple(stamp.attribute.attr_name for stamp in self._stamps)

    def stamp(self, item: BaseModel) -> None:
        """Set the write-time attributes of `item` (timestamps, sliding TTL) before a write."""
        for stamp in self._stamps:
            setattr(item, stamp.python_name, stamp.value())

    def write_actions(self) -> list[Action]:
        """The same stamps as update actions, for an UpdateItem."""
        return [stamp.attribute.set(stamp.value()) for stamp in self._stamps]

    # ------------------------------------------------------------------ indexes

    def index(self, index: str | Index[Any] | None) -> IndexShape | None:
        """The shape of an index given by name or as the model's index attribute.

        Raises:
            InvalidRequest: the model has no such index (naming it and the known ones).
        """
        if index is None:
            return None
        name = index if isinstance(index, str) else getattr(index.Meta, "index_name", None)
        found = self.indexes.get(name) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(sorted(self.indexes)) or "none"
            raise InvalidRequest(
                f"{self.model.__name__} has no index {name or index!r} (its indexes: {known})"
            )
        return found


@functools.cache
def shape_of(model: type[BaseModel]) -> TableShape:
    """The `TableShape` of a model class (derived once, then cached).

    Raises:
        InvalidRequest: the model has no hash key, or a key attribute that is not S, N or B.
    """
    untyped: Any = model  # PynamoDB's key-attribute helpers are untyped
    hash_attr: Attribute[Any] | None = untyped._hash_key_attribute()
    if hash_attr is None:
        raise InvalidRequest(f"{model.__name__} has no hash key attribute")
    range_attr: Attribute[Any] | None = untyped._range_key_attribute()
    names = {attr.attr_name: python for python, attr in model.get_attributes().items()}
    ttl_name: str | None = None
    stamps: list[_Stamp] = []
    for python_name, attr in model.get_attributes().items():
        if isinstance(attr, TTLAttribute):
            ttl_name = attr.attr_name
            if isinstance(attr, ExpiryAttribute) and attr.sliding is not None:
                stamps.append(_Stamp(python_name, attr, attr.next_expiry))
        elif isinstance(attr, UpdatedAtAttribute):
            stamps.append(_Stamp(python_name, attr, _now))
    indexes: dict[str, IndexShape] = {}
    for index_name, index in untyped._indexes.items():
        index_hash: Attribute[Any] = index._hash_key_attribute()
        index_range = next((a for a in index.Meta.attributes.values() if a.is_range_key), None)
        indexes[index_name] = IndexShape(
            name=index_name,
            hash_key=_key_attribute(names, index_hash, HASH_KEY_MAX_BYTES, model),
            range_key=(
                None
                if index_range is None
                else _key_attribute(names, index_range, RANGE_KEY_MAX_BYTES, model)
            ),
            local=isinstance(index, LocalSecondaryIndex),
            partial=_projection_type(index) != "ALL",
        )
    table_keys = {hash_attr.attr_name, None if range_attr is None else range_attr.attr_name}
    index_keys = {
        key.name: key
        for index_shape in indexes.values()
        for key in (index_shape.hash_key, index_shape.range_key)
        if key is not None and key.name not in table_keys
    }
    return TableShape(
        model=model,
        hash_key=_key_attribute(names, hash_attr, HASH_KEY_MAX_BYTES, model),
        range_key=(
            None
            if range_attr is None
            else _key_attribute(names, range_attr, RANGE_KEY_MAX_BYTES, model)
        ),
        ttl_name=ttl_name,
        version_name=model._version_attribute_name,
        indexes=indexes,
        _stamps=tuple(stamps),
        index_keys=index_keys,
        entity=(
            entity_keys(model)
            if issubclass(model, EntityTable) and model.__entity__ is not None
            else None
        ),
        encryption=_encryption(model),
        versions=_versions(model),
    )


def _versions(model: type[BaseModel]) -> SchemaVersions | None:
    """The model's schema versions; an encrypted model cannot be upcast (its items are
    signed over the attribute names and values of the version that wrote them)."""
    versions = versions_of(model)
    if versions is not None and versions.upcasts and model.encrypted:
        raise ConfigurationError(
            f"{model.__name__} has encrypted attributes and schema_version "
            f"{versions.current}: upcasting would break the signature of its older items; "
            "keep its schema_version at 1 and migrate with a reencrypting backfill"
        )
    return versions


def _encryption(model: type[BaseModel]) -> FieldEncryption | None:
    """The model's field encryption; none of its encrypted attributes may feed a stored
    key (an entity's key templates, index templates or unique guards hold plaintext)."""
    sealed = encryption_of(model)
    if sealed is not None and issubclass(model, EntityTable) and model.__entity__ is not None:
        keys = entity_keys(model)
        fed = {*keys.natural, *keys.template_fields, *keys.unique}
        clash = sorted(fed & set(model.encrypted))
        if clash:
            raise ConfigurationError(
                f"{model.__name__}.{clash[0]} is encrypted but feeds a key, an index key or a "
                "unique guard, which would store it in plaintext"
            )
    return sealed


def _action_names(actions: Sequence[Action]) -> list[str]:
    """The top-level attribute each update action targets."""
    names: list[str] = []
    for action in actions:
        path = getattr(action.values[0], "path", None) if action.values else None
        if isinstance(path, list) and path:
            names.append(str(path[0]))
    return names


def _check_entity_actions(keys: EntityKeys, actions: Sequence[Action]) -> None:
    """An update may not change what an entity's stored keys are composed from."""
    attributes = keys.model.get_attributes()
    python_of = {attr.attr_name: python for python, attr in attributes.items()}
    fed = keys.template_fields
    for action in actions:
        path = action.values[0]
        top = getattr(path, "path", [None])[0]
        python = python_of.get(top) if isinstance(top, str) else None
        if python is None:
            continue  # check_actions names it
        if python in keys.natural:
            raise InvalidRequest(
                f"{python} is part of {keys.model.__name__}'s key: it cannot be updated"
            )
        if python in keys.computed:
            raise InvalidRequest(
                f"{python} is composed by the layer from {keys.model.__name__}'s templates: "
                "it cannot be updated"
            )
        if python in keys.unique:
            raise InvalidRequest(
                f"{python} is unique in {keys.model.__name__}: save() the item to change it "
                "(its guard item moves in the same transaction)"
            )
        if python in fed:
            raise InvalidRequest(
                f"{python} feeds the key of index {fed[python]!r} of {keys.model.__name__}: "
                "save() the item to change it (an update would leave the index key stale)"
            )


def _projection_type(index: Index[Any]) -> str:
    projection = getattr(index.Meta, "projection", None)
    return str(getattr(projection, "projection_type", "ALL"))


def _check_index_key(attr: KeyAttribute, value: Mapping[str, Any]) -> None:
    if attr.kind not in value:
        raise InvalidRequest(f"{attr.python_name}: an index key must be {attr.kind}, got {value!r}")
    attr.encode(attr.decode(value))


def _key_attribute(
    names: Mapping[str, str], attr: Attribute[Any], max_bytes: int, model: type[BaseModel]
) -> KeyAttribute:
    kind = attr.attr_type
    if kind not in ("S", "N", "B"):
        raise InvalidRequest(
            f"{model.__name__}.{attr.attr_name}: a key attribute must be S, N or B, not {kind}"
        )
    return KeyAttribute(
        python_name=names.get(attr.attr_name, attr.attr_name),
        name=attr.attr_name,
        kind=cast(KeyKind, kind),
        max_bytes=max_bytes,
    )


#: Wide enough for DynamoDB's 38 digits: normalising never rounds.
_EXACT = Context(prec=60)


def _number(text: str) -> int | Decimal:
    """A key number in canonical form: an ``int`` when integral, else a normalised ``Decimal``.

    DynamoDB stores numbers, not their spelling (``1e23`` comes back as
    ``100000000000000000000000``), so keys compare by value: ``("py", 2.5)``,
    ``("py", Decimal("2.50"))`` and what the engine returns are one key.
    """
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text)
    number = Decimal(text)
    if number == number.to_integral_value():
        return int(number)
    return number.normalize(_EXACT)


def _now() -> datetime:
    return datetime.now(UTC)

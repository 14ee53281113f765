"""Entities: several item types on one table, keyed by templates over their own attributes.

A physical table is declared once, as an `EntityTable` subclass: its key attributes
(``pk``/``sk`` by default), the generic attributes of its overloaded indexes and
the indexes themselves (`overloaded_index`). Each entity subclasses it, declares
its own attributes like any model, and says how its keys are composed with an
`Entity`::

    class App(EntityTable):
        base_table_name = "app"
        gsi1pk = UnicodeAttribute(null=True)
        gsi1sk = UnicodeAttribute(null=True)
        gsi1 = overloaded_index("gsi1", "gsi1pk", "gsi1sk")

    class Student(App):
        __entity__ = Entity("student", pk="STUDENT#{student_id}", sk="PROFILE",
                            indexes={"gsi1": ("EMAIL#{email}", "STUDENT")})
        student_id = UnicodeAttribute()
        email = UnicodeAttribute()

    class Mark(App):
        __entity__ = Entity("mark", pk="STUDENT#{student_id}", sk="MARK#{lesson}#{try_no:3}")
        student_id = UnicodeAttribute()
        lesson = UnicodeAttribute()
        try_no = NumberAttribute()

The entity's natural key is the fields of its templates in order (``"s1"`` for a
student, ``("s1", "intro", 2)`` for a mark); repositories take and return it, and
the layer builds the stored keys (and the index keys, and the entity type
attribute) from the item whenever it is serialised, so no write path can store a
key that disagrees with the item. An index template whose fields are not all set
leaves the item out of that index (a sparse index).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from pynamodb.attributes import Attribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, Index

from ..errors import InvalidRequest
from .base import BaseModel
from .templates import FieldKind, KeyTemplate

__all__ = [
    "Entity",
    "EntityKeys",
    "EntityTable",
    "GUARD_TYPE",
    "entity_keys",
    "guard_entity",
    "overloaded_index",
]

#: The DynamoDB name of the attribute that holds an item's entity type.
TYPE_ATTRIBUTE = "_type"
#: The entity type of the guard items that hold unique values.
GUARD_TYPE = "_unique"


@dataclass(frozen=True)
class Entity:
    """How an entity's items are keyed on their `EntityTable`.

    Args:
        name: the stored entity type (``"student"``); unique per table.
        pk: the partition key template.
        sk: the sort key template.
        indexes: overloaded index name -> (hash template, range template or ``None``).
        unique: attributes whose values no two items of this entity may share
            (each value holds a guard item in the table, written in one transaction
            with the item).
    """

    name: str
    pk: str
    sk: str
    indexes: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    unique: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexTemplates:
    """One overloaded index as an entity fills it: the attributes and their templates."""

    index: str
    hash_python: str
    hash: KeyTemplate
    range_python: str | None
    range: KeyTemplate | None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.hash.fields + (() if self.range is None else self.range.fields)


@dataclass(frozen=True)
class EntityKeys:
    """An entity's compiled key templates (`entity_keys`), used by its `TableShape`.

    Attributes:
        name: the entity type.
        natural: the python names of the natural key's parts, in order.
        pk, sk: the table's key templates.
        pk_python, sk_python: the python names of the table's key attributes.
        type_python: the python name of the entity type attribute.
        indexes: the index templates by index name.
    """

    model: type[BaseModel]
    name: str
    natural: tuple[str, ...]
    pk: KeyTemplate
    sk: KeyTemplate
    pk_python: str
    sk_python: str
    type_python: str
    indexes: Mapping[str, IndexTemplates]
    unique: tuple[str, ...]
    table_class: type[EntityTable]

    @property
    def computed(self) -> frozenset[str]:
        """Python names of the attributes the layer sets (keys, index keys, type)."""
        names = {self.pk_python, self.sk_python, self.type_python}
        for index in self.indexes.values():
            names.add(index.hash_python)
            if index.range_python is not None:
                names.add(index.range_python)
        return frozenset(names)

    @property
    def template_fields(self) -> dict[str, str]:
        """Attributes read by an index template -> the index (they feed a stored key)."""
        return {f: index.index for index in self.indexes.values() for f in index.fields}

    # ------------------------------------------------------------------ keys

    def parts(self, key: object) -> dict[str, object]:
        """The natural key's parts by attribute (a single value, or a tuple of them)."""
        if len(self.natural) == 1:
            if isinstance(key, tuple):
                raise InvalidRequest(
                    f"{self.model.__name__} key is a {self.natural[0]} value, not a tuple: {key!r}"
                )
            return {self.natural[0]: key}
        if not (isinstance(key, tuple) and len(key) == len(self.natural)):
            raise InvalidRequest(
                f"{self.model.__name__} key must be a ({', '.join(self.natural)}) tuple, "
                f"got {key!r}"
            )
        return dict(zip(self.natural, key, strict=True))

    def render(self, key: object) -> tuple[str, str]:
        """The stored (pk, sk) of a natural key, checked."""
        values = self.parts(key)
        return self.pk.render(values), self.sk.render(values)

    def natural_of(self, pk: str, sk: str) -> Hashable:
        """The natural key of stored key strings.

        Raises:
            InvalidRequest: the strings are not this entity's keys.
        """
        values = self.pk.parse(pk)
        rest = self.sk.parse(sk)
        if values is None or rest is None:
            raise InvalidRequest(f"({pk!r}, {sk!r}) is not a key of {self.model.__name__}")
        values.update(rest)
        if len(self.natural) == 1:
            found: Hashable = values[self.natural[0]]
            return found
        return tuple(values[name] for name in self.natural)

    def natural_of_model(self, item: BaseModel) -> Hashable:
        """The natural key of an instance, from its attributes."""
        if len(self.natural) == 1:
            return cast(Hashable, getattr(item, self.natural[0]))
        return tuple(getattr(item, name) for name in self.natural)

    def partition(self, value: object, index: str | None) -> tuple[KeyTemplate, str]:
        """The partition template and key string of a query (``value``: the template's
        fields, one value or a tuple of them; ``()`` for a template without fields)."""
        template = self.pk if index is None else self._index(index).hash
        fields = template.fields
        if len(fields) == 1:
            values = {fields[0]: value}
        elif isinstance(value, tuple) and len(value) == len(fields):
            values = dict(zip(fields, value, strict=True))
        else:
            raise InvalidRequest(
                f"{self.model.__name__}: the partition {template.text!r} takes "
                f"({', '.join(fields)}), got {value!r}"
            )
        return template, template.render(values)

    def sort_template(self, index: str | None) -> KeyTemplate | None:
        """The sort key template of the table or of `index`."""
        return self.sk if index is None else self._index(index).range

    def _index(self, index: str) -> IndexTemplates:
        found = self.indexes.get(index)
        if found is None:
            raise InvalidRequest(
                f"{self.model.__name__} is not in index {index!r} (it fills: "
                f"{', '.join(sorted(self.indexes)) or 'none'})"
            )
        return found

    # ------------------------------------------------------------------ writes

    def fill(self, item: BaseModel) -> None:
        """Set the item's computed attributes from its own values before it is written."""
        values = item.attribute_values
        setattr(item, self.pk_python, self.pk.render(values))
        setattr(item, self.sk_python, self.sk.render(values))
        setattr(item, self.type_python, self.name)
        for index in self.indexes.values():
            if all(values.get(f) is not None for f in index.fields):
                setattr(item, index.hash_python, index.hash.render(values))
                if index.range is not None and index.range_python is not None:
                    setattr(item, index.range_python, index.range.render(values))
            else:  # sparse: an item without the index's values is not in it
                setattr(item, index.hash_python, None)
                if index.range_python is not None:
                    setattr(item, index.range_python, None)


class EntityTable(BaseModel):
    """The base of a table's entities: its key attributes and the entity type.

    Subclass it once per physical table (set ``base_table_name``, add the
    overloaded index attributes and `overloaded_index` declarations), then subclass
    that for each entity with an ``__entity__ = Entity(...)``. Override ``pk`` or
    ``sk`` there to store them under other names (``pk = UnicodeAttribute(
    hash_key=True, attr_name="PK")``).
    """

    __entity__: ClassVar[Entity | None] = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entity_type = UnicodeAttribute(attr_name=TYPE_ATTRIBUTE, null=True)

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """The item as DynamoDB stores it, keys composed from its attributes first."""
        entity_keys(type(self)).fill(self)
        return super().serialize(null_check)


def overloaded_index(name: str, hash_key: str, range_key: str | None = None) -> Index[Any]:
    """A global index over generic string attributes several entities fill.

    Declare the attributes on the table class too (``UnicodeAttribute(null=True)``):
    ``gsi1 = overloaded_index("gsi1", "gsi1pk", "gsi1sk")``.
    """
    meta = type("Meta", (), {"index_name": name, "projection": AllProjection()})
    attrs: dict[str, Any] = {"Meta": meta, hash_key: UnicodeAttribute(hash_key=True)}
    if range_key is not None:
        attrs[range_key] = UnicodeAttribute(range_key=True)
    index_class = type(f"{name}_index", (GlobalSecondaryIndex,), attrs)
    made: Index[Any] = index_class()
    return made


@functools.cache
def entity_keys(model: type[BaseModel]) -> EntityKeys:
    """The compiled `EntityKeys` of an entity class (cached).

    Raises:
        InvalidRequest: the class declares no ``__entity__``, or a template names an
            attribute the entity lacks, or an index it does not have.
    """
    declared = getattr(model, "__entity__", None)
    if not isinstance(declared, Entity) or not issubclass(model, EntityTable):
        raise InvalidRequest(f"{model.__name__} is not an entity (no __entity__ = Entity(...))")
    attributes = model.get_attributes()
    base = {"pk", "sk", "entity_type"}
    table_class = next(c for c in model.__mro__ if c.__dict__.get("__entity__") is None)
    kinds: dict[str, FieldKind] = {}
    for python, attr in attributes.items():
        if python in base or python in vars(table_class):
            continue
        if isinstance(attr, UnicodeAttribute):
            kinds[python] = "S"
        elif isinstance(attr, NumberAttribute):
            kinds[python] = "N"
    untyped: Any = model
    pk_python = _python_name(attributes, untyped._hash_key_attribute())
    sk_python = _python_name(attributes, untyped._range_key_attribute())
    pk = KeyTemplate.compile(declared.pk, kinds)
    sk = KeyTemplate.compile(declared.sk, kinds)
    natural = tuple(dict.fromkeys(pk.fields + sk.fields))
    if not natural:
        raise InvalidRequest(f"{model.__name__}: its key templates name no attribute")
    indexes: dict[str, IndexTemplates] = {}
    for index_name, (hash_text, range_text) in declared.indexes.items():
        index = untyped._indexes.get(index_name)
        if index is None:
            raise InvalidRequest(f"{model.__name__}: the table has no index {index_name!r}")
        index_hash = index._hash_key_attribute()
        index_range = next((a for a in index.Meta.attributes.values() if a.is_range_key), None)
        if (range_text is None) != (index_range is None):
            raise InvalidRequest(
                f"{model.__name__}: index {index_name!r} takes "
                f"{'a hash and a range' if index_range is not None else 'only a hash'} template"
            )
        indexes[index_name] = IndexTemplates(
            index=index_name,
            hash_python=_python_name(attributes, index_hash),
            hash=KeyTemplate.compile(hash_text, kinds),
            range_python=None if index_range is None else _python_name(attributes, index_range),
            range=None if range_text is None else KeyTemplate.compile(range_text, kinds),
        )
    for name in declared.unique:
        if name not in kinds:
            raise InvalidRequest(
                f"{model.__name__}: unique attribute {name!r} is not one of its own str or "
                "number attributes"
            )
    return EntityKeys(
        model=model,
        name=declared.name,
        natural=natural,
        pk=pk,
        sk=sk,
        pk_python=pk_python,
        sk_python=sk_python,
        type_python="entity_type",
        indexes=indexes,
        unique=tuple(declared.unique),
        table_class=cast(type[EntityTable], table_class),
    )


def _python_name(attributes: Mapping[str, Attribute[Any]], attr: Attribute[Any]) -> str:
    for python, candidate in attributes.items():
        if candidate.attr_name == attr.attr_name:
            return python
    raise InvalidRequest(f"no attribute stored as {attr.attr_name!r}")


@functools.cache
def guard_entity(table_class: type[EntityTable]) -> type[EntityTable]:
    """The entity of a table's unique-value guards (one item per value held).

    A guard is keyed ``UNIQUE#{of}#{attribute}#{value}`` / ``UNIQUE`` and names its
    owner's stored key, so only the owner moves or drops it.
    """
    namespace: dict[str, Any] = {
        "__module__": table_class.__module__,
        "__qualname__": f"{table_class.__qualname__}Guard",
        "__doc__": f"A unique value held on {table_class.__name__}'s table.",
        "__entity__": Entity(GUARD_TYPE, pk="UNIQUE#{of}#{attribute}#{value}", sk="UNIQUE"),
        "of": UnicodeAttribute(),
        "attribute": UnicodeAttribute(),
        "value": UnicodeAttribute(),
        "owner_pk": UnicodeAttribute(),
        "owner_sk": UnicodeAttribute(),
    }
    guard: type[EntityTable] = type(f"{table_class.__name__}Guard", (table_class,), namespace)
    return guard

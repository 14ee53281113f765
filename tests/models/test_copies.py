"""`safe_copy` and `shareable` (portchops_models/models/copies.py): a copy equals its
template and shares nothing a caller can change with it, whatever the values."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
)

from portchops_models import BaseModel, Projection
from portchops_models.models.copies import Template, safe_copy, shareable
from portchops_models.models.decoding import model_decoder


class Dims(MapAttribute[str, Any]):
    width = NumberAttribute()
    marks = ListAttribute(of=UnicodeAttribute)  # type: ignore[var-annotated]


class Box(BaseModel):
    base_table_name: ClassVar[str] = "boxes"

    box_id = UnicodeAttribute(hash_key=True)
    items = ListAttribute(null=True)  # type: ignore[var-annotated]
    dims = Dims(null=True)
    doc = MapAttribute[str, Any](null=True)
    sizes = NumberSetAttribute(null=True)


class Card(Projection[Box]):
    box_id: str
    items: list[Any] | None = None


class Label(Projection[Box]):
    box_id: str


#: Values a decoded list or map holds: scalars, and lists and maps of them.
SCALARS = st.one_of(
    st.text(max_size=5), st.integers(), st.booleans(), st.none(), st.binary(max_size=4)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


def _mutate(value: Any) -> None:
    """Change every container inside `value`, in place."""
    if isinstance(value, list):
        for item in value:
            _mutate(item)
        value.append("mutated")
    elif isinstance(value, dict):
        for item in value.values():
            _mutate(item)
        value["mutated"] = True
    elif isinstance(value, set):
        value.add(-1)


COPIERS = st.sampled_from(["safe_copy", "Template"])


@given(
    items=st.lists(VALUES, max_size=4) | st.none(),
    doc=st.dictionaries(st.text(min_size=1, max_size=4), VALUES, max_size=4) | st.none(),
    marks=st.lists(st.text(max_size=3), max_size=3),
    sizes=st.sets(st.integers(1, 9), min_size=1, max_size=3) | st.none(),
    copier=COPIERS,
)
def test_a_copy_equals_its_template_and_shares_nothing_mutable(
    items: list[Any] | None,
    doc: dict[str, Any] | None,
    marks: list[str],
    sizes: set[int] | None,
    copier: str,
) -> None:
    box = Box(box_id="b1", items=items, dims=Dims(width=2, marks=marks), doc=doc, sizes=sizes)
    template = model_decoder(Box)(box.serialize())  # as a cache hit's template is made
    before = copy.deepcopy(template.attribute_values)
    kept = Template(template)
    twin = safe_copy(template) if copier == "safe_copy" else kept.copy()
    assert type(twin) is Box
    assert twin.serialize() == template.serialize()
    for value in twin.attribute_values.values():
        _mutate(value.attribute_values if isinstance(value, MapAttribute) else value)
    twin.dims.width = 99
    twin.box_id = "other"
    twin.items = ["replaced"]
    assert template.attribute_values.keys() == before.keys()
    assert template.serialize() == Box(box_id="b1", **_plain(before)).serialize()
    assert kept.copy().serialize() == template.serialize()  # later copies: the same


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name != "box_id"}


def test_immutable_values_are_shared_not_copied() -> None:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    text = "x" * 1000
    values = {"a": text, "b": stamp, "c": Decimal("1.5"), "d": b"raw"}
    box = Box(box_id="b1", doc=values)
    twin = safe_copy(box)
    assert twin.doc is not box.doc
    assert twin.doc.attribute_values is not box.doc.attribute_values
    assert all(twin.doc[name] is value for name, value in box.doc.attribute_values.items())


def test_projections_frozen_and_immutable_are_shareable_others_copied() -> None:
    label = Label(box_id="b1")
    assert shareable(label)
    assert Template(label).copy() is label
    card = Card(box_id="b1", items=[[1], {"k": [2]}])
    assert not shareable(card)
    assert Template(card).copy() == card
    assert Template(card).copy() is not card
    twin = safe_copy(card)
    assert twin == card
    assert twin.items is not None
    assert card.items is not None
    twin.items[0].append(3)
    twin.items[1]["k"].append(4)
    assert card.items == [[1], {"k": [2]}]
    assert twin.model_fields_set == card.model_fields_set


def test_anything_else_is_deep_copied() -> None:
    class Slotted:
        __slots__ = ("values",)

        def __init__(self) -> None:
            self.values = [1]

    original = Slotted()
    twin = safe_copy(original)
    twin.values.append(2)
    assert original.values == [1]

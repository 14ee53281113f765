"""A model saved, then read back through get, batch_get, query and scan, is what was saved.

Every attribute kind (sets, lists and maps, empty ones too; booleans; numbers at
DynamoDB's limits; unicode; datetimes; TTL; version) with random values, None included,
over moto: the four reads decode DynamoDB's own answers with `model_decoder`, whose fast
path (`_dense`) and general path must give PynamoDB's objects. Raw items with attributes
missing, NULL or of another type must decode as PynamoDB's ``from_raw_data`` does, or fail
the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from portchops_models import BaseModel, Repository, Settings, configure
from portchops_models.models.attributes import ExpiryAttribute
from portchops_models.models.decoding import model_decoder
from portchops_models.testing.plugin import configured_tables


class Sample(BaseModel):
    """One attribute of each kind: keys, dense (non-null) ones and nullable ones."""

    base_table_name: ClassVar[str] = "samples"

    group = UnicodeAttribute(hash_key=True)
    sample_id = UnicodeAttribute(range_key=True, attr_name="sampleId")
    label = UnicodeAttribute()
    amount = NumberAttribute(default=0, attr_name="count")
    stamp = UTCDateTimeAttribute()
    note = UnicodeAttribute(null=True)
    ratio = NumberAttribute(null=True)
    flag = BooleanAttribute(null=True)
    tags = UnicodeSetAttribute(null=True)
    nums = NumberSetAttribute(null=True)
    items = ListAttribute(null=True)  # type: ignore[var-annotated]
    meta = MapAttribute(null=True)  # type: ignore[no-untyped-call,var-annotated]
    done_at = UTCDateTimeAttribute(null=True, attr_name="doneAt")
    expires = ExpiryAttribute(null=True)
    version = VersionAttribute()


class SampleRepository(Repository[Sample, tuple[str, str]]):
    model = Sample


texts = st.text(min_size=1, max_size=12)
#: DynamoDB numbers: 38 significant digits, magnitudes from 1e-130 to under 1e126.
numbers = st.one_of(
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.sampled_from([0, 1, -1, 9999, 10000, -999, 10**37, 1e125, -1e125, 1e-130, 2.5, 0.5]),
    st.floats(-1e20, 1e20, allow_nan=False, allow_infinity=False).filter(
        lambda f: f == 0 or abs(f) > 1e-100
    ),
)
moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), texts, st.integers(-(10**12), 10**12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


samples = st.fixed_dictionaries(
    {
        "label": texts,
        "amount": numbers,
        "stamp": moments,
        "note": _optional(texts),
        "ratio": _optional(numbers),
        "flag": _optional(st.booleans()),
        "tags": _optional(st.sets(texts, max_size=3)),
        "nums": _optional(st.sets(st.integers(-(10**6), 10**6), max_size=3)),
        "items": _optional(st.lists(json_values, max_size=3)),
        "meta": _optional(st.dictionaries(texts, json_values, max_size=3)),
        "done_at": _optional(moments),
        "expires": _optional(st.integers(1, 10**6).map(lambda h: timedelta(hours=h))),
    }
)


@pytest.fixture(scope="module")
def sample_tables(portchops_local_engine: Any) -> Iterator[Settings]:
    with configured_tables(portchops_local_engine.endpoint_url, (Sample,)) as s:
        yield s


def _values(obj: Sample) -> dict[str, Any]:
    """Every attribute as read through the model, maps and lists as plain values."""
    out: dict[str, Any] = {}
    for name in Sample.get_attributes():
        value = getattr(obj, name)
        if isinstance(value, MapAttribute):
            value = value.as_dict()  # type: ignore[no-untyped-call]
        out[name] = (type(value), value)
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=samples)
def test_every_read_returns_what_was_saved(sample_tables: Settings, values: dict[str, Any]) -> None:
    configure(sample_tables)  # the suite restores default settings around each test
    repo = SampleRepository(cache=None)
    group = f"g-{uuid.uuid4().hex}"
    saved = Sample(group=group, sample_id="ü-1", **values)
    repo.save(saved)
    other = Sample(group=group, sample_id="ü-2", label="x", stamp=datetime.now(UTC))
    repo.save(other)
    # What PynamoDB reads back from what was written: the saved values, but an empty set
    # (which DynamoDB cannot store, so it is left out) reads back as None.
    expected = _values(Sample.from_raw_data(saved.serialize()))
    unstored = {"tags", "nums"} & {k for k, v in values.items() if v == set()}
    assert {k: v for k, v in expected.items() if k not in unstored} == {
        k: v for k, v in _values(saved).items() if k not in unstored
    }

    got = repo.get((group, "ü-1"))
    batch = repo.batch_get([(group, "ü-2"), (group, "ü-1"), (group, "missing")])
    queried = list(repo.iter_query(group))
    scanned = [s for s in repo.scan() if s.group == group]

    assert [s.sample_id for s in batch] == ["ü-2", "ü-1"]
    assert [s.sample_id for s in queried] == ["ü-1", "ü-2"]
    assert sorted(s.sample_id for s in scanned) == ["ü-1", "ü-2"]
    for read in (got, batch[1], queried[0], next(s for s in scanned if s.sample_id == "ü-1")):
        assert type(read) is Sample
        assert _values(read) == expected
    assert (
        _values(batch[0]) == _values(queried[1]) == _values(Sample.from_raw_data(other.serialize()))
    )


#: What a stored attribute may hold in a raw item: its own value, nothing, NULL, or a
#: value of another type.
_SERIALIZED = Sample(
    group="g",
    sample_id="s",
    label="l",
    amount=7,
    stamp=datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
    note="n",
    ratio=Decimal("2.5"),
    flag=True,
    tags={"a"},
    nums={1, 2},
    items=[1, "two"],
    meta={"k": "v"},
    done_at=datetime(2024, 1, 1, tzinfo=UTC),
    expires=datetime(2030, 1, 1, tzinfo=UTC),
    version=3,
).serialize()
_VARIANTS = st.sampled_from(["own", "missing", "null", "string", "number", "odd"])


def _variant(name: str, value: dict[str, Any], how: str) -> dict[str, Any] | None:
    if how == "missing":
        return None
    if how == "null":
        return {"NULL": True}
    if how == "string":
        return {"S": "2024-02-29T23:59:59.000001+0000"}
    if how == "number":
        return {"N": "12"}
    if how == "odd":  # valid but unusual texts: a long number, another time format
        return {"N": "00012.50"} if "N" in value else {"S": "2024-02-29 23:59:59"}
    return value


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: _VARIANTS for name in _SERIALIZED}))
def test_odd_raw_items_decode_as_pynamodb_decodes_them(variants: dict[str, str]) -> None:
    raw = {
        name: found
        for name, value in _SERIALIZED.items()
        if (found := _variant(name, value, variants[name])) is not None
    }
    try:
        theirs = Sample.from_raw_data(raw)
    except Exception as err:
        with pytest.raises(type(err)):
            model_decoder(Sample)(raw)
        return
    ours = model_decoder(Sample)(raw)
    assert type(ours) is Sample
    for name in Sample.get_attributes():
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(a, MapAttribute):
            a, b = a.as_dict(), b.as_dict()  # type: ignore[no-untyped-call]
        if name == "stamp" and variants[name] in ("missing", "null"):
            continue  # no default: both unset
        assert (type(a), a) == (type(b), b), name

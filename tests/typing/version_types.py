"""Pins the schema-version types with `assert_type`; checked by `mypy --strict` in `make test`.

The functions are never called: mypy reading them is the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from portchops_models.migrate import Backfill, VersionCounts, converging_backfill, version_counts
from portchops_models.models.shape import RawItem, shape_of
from portchops_models.models.versions import STAMP, SchemaVersions, Upcaster, upcaster
from tests.person_model import Person


def declarations() -> None:
    assert_type(Person.schema_version, int | None)
    register = upcaster(Person, 1)
    assert_type(register, Callable[[Upcaster], Upcaster])

    def step(item: RawItem) -> RawItem:
        return item

    assert_type(register(step), Callable[[RawItem], RawItem])
    versions = shape_of(Person).versions
    assert_type(versions, SchemaVersions | None)
    if versions is not None:
        assert_type(versions.upcast({STAMP: {"N": "1"}}), RawItem)
        assert_type(versions.version_of({}), int)


def backfill_and_counts() -> None:
    assert_type(converging_backfill(Person, segments=4), Backfill)
    counts = version_counts(Person, sample=100)
    assert_type(counts, VersionCounts)
    assert_type(counts.counts, dict[int, int])
    assert_type(counts.counted, bool)
    assert_type(counts.older, int)

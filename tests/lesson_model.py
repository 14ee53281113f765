"""A third model, outside the package: the generic repository on an app's own table.

`Lesson` has a str hash key, a numeric range key, a TTL attribute of its own name
(not sliding), a version, a write stamp and a GSI. `Blob` (binary hash key) and
`Counter` (numeric hash key) are hash-only tables for the B and N key codecs.
"""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from portchops_models import BaseModel, Projection, Repository
from portchops_models.models.attributes import ExpiryAttribute, UpdatedAtAttribute

__all__ = [
    "Blob",
    "BlobRepository",
    "ByLevel",
    "Counter",
    "CounterRepository",
    "Lesson",
    "LessonCard",
    "LessonRepository",
]


class ByLevel(GlobalSecondaryIndex["Lesson"]):  # type: ignore[no-untyped-call]
    """GSI ``by-level``: the lessons of one level, by position."""

    class Meta:
        index_name = "by-level"
        projection = AllProjection()

    level = UnicodeAttribute(hash_key=True)
    position = NumberAttribute(range_key=True)


class Lesson(BaseModel):
    """One lesson of a course."""

    base_table_name: ClassVar[str] = "lessons"

    course_id = UnicodeAttribute(hash_key=True, attr_name="courseId")
    position = NumberAttribute(range_key=True)
    title = UnicodeAttribute()
    level = UnicodeAttribute()
    views = NumberAttribute(default=0)
    expires_at = ExpiryAttribute(null=True, attr_name="expiresAt")
    version = VersionAttribute()
    updated_at = UpdatedAtAttribute(attr_name="updatedAt")

    by_level = ByLevel()


class LessonRepository(Repository[Lesson, tuple[str, int]]):
    model = Lesson


class LessonCard(Projection[Lesson]):
    course_id: str
    position: int
    title: str


class Blob(BaseModel):
    """A hash-only table keyed by bytes."""

    base_table_name: ClassVar[str] = "blobs"

    digest = BinaryAttribute(hash_key=True, legacy_encoding=False)
    label = UnicodeAttribute()


class BlobRepository(Repository[Blob, bytes]):
    model = Blob


class Counter(BaseModel):
    """A hash-only table keyed by a number."""

    base_table_name: ClassVar[str] = "counters"

    number = NumberAttribute(hash_key=True)
    label = UnicodeAttribute()


class CounterRepository(Repository[Counter, int]):
    model = Counter

"""Three entities on one table (`School`): students, their marks and their badges.

`Student` is keyed ``STUDENT#{student_id}`` / ``PROFILE`` and is in the
overloaded index ``gsi1`` by email (unique); `Mark` shares the student's
partition (``MARK#{lesson}#{try_no:3}``: a str and a padded number part) and is in
``gsi1`` by lesson; `Badge` is in ``gsi1`` only once featured (a sparse index).
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute

from portchops_models import Repository
from portchops_models.aio import AsyncRepository
from portchops_models.entities import (
    AsyncCollection,
    Collection,
    Entity,
    EntityTable,
    overloaded_index,
)

__all__ = [
    "AsyncProfile",
    "AsyncStudents",
    "Badge",
    "Badges",
    "Mark",
    "Marks",
    "Profile",
    "School",
    "Student",
    "Students",
]


class School(EntityTable):
    """The physical table: pk/sk, one overloaded global index."""

    base_table_name = "school"
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1", "gsi1pk", "gsi1sk")


class Student(School):
    """A student: one item per student, found by email through gsi1."""

    __entity__ = Entity(
        "student",
        pk="STUDENT#{student_id}",
        sk="PROFILE",
        indexes={"gsi1": ("EMAIL#{email}", "STUDENT")},
        unique=("email",),
    )
    student_id = UnicodeAttribute()
    email = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    version = VersionAttribute()


class Mark(School):
    """One try at a lesson, in the student's partition; in gsi1 by lesson."""

    __entity__ = Entity(
        "mark",
        pk="STUDENT#{student_id}",
        sk="MARK#{lesson}#{try_no:3}",
        indexes={"gsi1": ("LESSON#{lesson}", "MARK#{student_id}#{try_no:3}")},
    )
    student_id = UnicodeAttribute()
    lesson = UnicodeAttribute()
    try_no = NumberAttribute()
    score = NumberAttribute(default=0)


class Badge(School):
    """A badge; in gsi1 only while featured (``featured_on`` set)."""

    __entity__ = Entity(
        "badge",
        pk="STUDENT#{student_id}",
        sk="BADGE#{badge}",
        indexes={"gsi1": ("FEATURED#{featured_on}", "BADGE#{badge}")},
    )
    student_id = UnicodeAttribute()
    badge = UnicodeAttribute()
    featured_on = UnicodeAttribute(null=True)


class Students(Repository[Student, str]):
    model = Student


class AsyncStudents(AsyncRepository[Student, str]):
    model = Student


class Marks(Repository[Mark, tuple[str, str, int]]):
    model = Mark


class Badges(Repository[Badge, tuple[str, str]]):
    model = Badge


class Profile(Collection):
    """A student with their marks and badges: one Query."""

    entities = (Student, Mark, Badge)


class AsyncProfile(AsyncCollection):
    entities = (Student, Mark, Badge)

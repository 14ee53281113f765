"""Pins the types of entity repositories and collections; checked by `mypy --strict`."""

from __future__ import annotations

from typing import assert_type

from portchops_models import Page
from portchops_models.entities import CollectionPage
from portchops_models.errors import UniqueViolation
from tests.school_model import (
    AsyncProfile,
    AsyncStudents,
    Badge,
    Mark,
    Marks,
    Profile,
    Student,
    Students,
)


def repositories() -> None:
    assert_type(Marks().get(("s1", "intro", 2)), Mark)
    assert_type(Marks().find(("s1", "intro", 2)), Mark | None)
    assert_type(Marks().query("s1"), Page[Mark])
    assert_type(Marks().batch_get([("s1", "intro", 2)]), list[Mark])
    assert_type(Students().get("s1"), Student)
    assert_type(Students().save(Student(student_id="s1", email="a@example.com")), Student)


def collections() -> None:
    page = Profile().query("s1")
    assert_type(page, CollectionPage)
    assert_type(page.of(Student), list[Student])
    assert_type(page.of(Mark), list[Mark])
    assert_type(page.of(Badge), list[Badge])
    assert_type(page.skipped, int)
    assert_type(page.cursor, str | None)
    assert_type(Profile().query_all("s1").of(Mark), list[Mark])


async def async_faces() -> None:
    assert_type(await AsyncStudents().get("s1"), Student)
    page = await AsyncProfile().query("s1")
    assert_type(page.of(Student), list[Student])


def violation(err: UniqueViolation) -> None:
    assert_type(err.attribute, str)
    assert_type(err.value, object)

"""Pins the generic repository's types on an app's own model with `assert_type`.

Checked by `mypy --strict`; the functions are never called: mypy reading them is the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

from portchops_models import Page
from tests.lesson_model import (
    Blob,
    BlobRepository,
    Counter,
    CounterRepository,
    Lesson,
    LessonCard,
    LessonRepository,
)


def lessons() -> None:
    repo = LessonRepository()
    key = ("py", 1)
    assert_type(repo.get(key), Lesson)
    assert_type(repo.get(key, consistent=True), Lesson)
    assert_type(repo.get(key, projection=LessonCard), LessonCard)
    assert_type(repo.find(key), Lesson | None)
    assert_type(repo.find(key, projection=LessonCard), LessonCard | None)
    assert_type(repo.exists(key), bool)
    assert_type(repo.batch_get([key, ("py", 2)]), list[Lesson])
    assert_type(repo.batch_get([key], projection=LessonCard), list[LessonCard])
    assert_type(repo.batch_get([key], consistent=True), list[Lesson])
    assert_type(repo.batch_get([key], consistent=True, projection=LessonCard), list[LessonCard])
    assert_type(repo.query("py"), Page[Lesson])
    assert_type(
        repo.query("py", Lesson.position.between(2, 8), Lesson.level == "advanced"), Page[Lesson]
    )
    assert_type(repo.query("advanced", index=Lesson.by_level, limit=2), Page[Lesson])
    assert_type(repo.query("advanced", index="by-level", cursor=None), Page[Lesson])
    assert_type(repo.query("py", projection=LessonCard), Page[LessonCard])
    assert_type(repo.query("py").items, list[Lesson])
    assert_type(repo.query("py").cursor, str | None)
    assert_type(repo.iter_query("py"), Iterator[Lesson])
    assert_type(
        repo.iter_query("py", newest_first=True, projection=LessonCard), Iterator[LessonCard]
    )
    assert_type(repo.iter_query("py", limit=5), Iterator[Lesson])
    assert_type(repo.iter_query("py", limit=5, page_size=2), Iterator[Lesson])
    assert_type(
        repo.iter_query("advanced", index=Lesson.by_level, page_size=3, projection=LessonCard),
        Iterator[LessonCard],
    )
    assert_type(repo.count("py"), int)
    assert_type(repo.count("advanced", Lesson.position >= 5, index=Lesson.by_level), int)
    assert_type(repo.update(key, [Lesson.views.add(1), Lesson.title.set("x")]), Lesson)
    assert_type(repo.save(Lesson(course_id="py", position=1, title="t", level="a")), Lesson)
    assert_type(repo.delete(key), None)
    assert_type(repo.batch_save([Lesson(course_id="py", position=1)]), int)
    assert_type(repo.batch_delete([key]), int)
    assert_type(repo.scan(), Iterator[Lesson])
    assert_type(
        repo.scan(segments=3, filter_condition=Lesson.level == "advanced"), Iterator[Lesson]
    )
    assert_type(repo.scan(projection=LessonCard), Iterator[LessonCard])
    assert_type(repo.scan_page(limit=10), Page[Lesson])
    assert_type(repo.scan(index=Lesson.by_level), Iterator[Lesson])
    assert_type(
        repo.scan(index="by-level", segments=2, projection=LessonCard), Iterator[LessonCard]
    )
    assert_type(repo.scan_page(index=Lesson.by_level, limit=10), Page[Lesson])
    assert_type(repo.scan_page(index="by-level", projection=LessonCard), Page[LessonCard])
    assert_type(repo.get(key).title, str)
    assert_type(repo.get(key, projection=LessonCard).position, int)


def hash_only() -> None:
    assert_type(BlobRepository().get(b"\x00"), Blob)
    assert_type(BlobRepository().batch_get([b"a", b"b"]), list[Blob])
    assert_type(CounterRepository().get(7), Counter)
    assert_type(CounterRepository().find(7), Counter | None)

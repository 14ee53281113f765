"""The example service runs against the embedded engine."""

from __future__ import annotations

import pytest

from examples.service import LessonDashboard
from portchops_models import ItemNotFound, User, UserRepository
from portchops_models.settings import Settings


def test_lesson_dashboard_pages_through_lessons(tables: Settings) -> None:
    UserRepository().save(User(user_id="u1", email="ada@example.com", name="Ada"))
    service = LessonDashboard()
    for i in range(23):
        service.submit("u1", f"lesson-{i:02d}", 50 + i * 2)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = service.page("u1", cursor=cursor, size=10)
        assert page.user.name == "Ada"
        seen.extend(line.lesson_id for line in page.lessons)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"lesson-{i:02d}" for i in range(23)]
    assert page.completed == sum(1 for i in range(23) if 50 + i * 2 >= 70)
    with pytest.raises(ItemNotFound):
        service.page("nobody")
    with pytest.raises(ItemNotFound):
        service.submit("nobody", "lesson-00", 90)

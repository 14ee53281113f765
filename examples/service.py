"""A small lesson-dashboard service written against the public API only.

It is type-checked with `mypy --strict` and run by `tests/test_examples.py`.
A web handler would call `LessonDashboard.page(...)` with the cursor the
previous response returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from portchops_models import (
    ItemNotFound,
    Projection,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)


class UserCard(Projection[User]):
    """The header of the dashboard."""

    user_id: str
    name: str
    email: str


class LessonLine(Projection[UserProgress]):
    """One line of the lesson list."""

    lesson_id: str
    status: str
    score: float
    attempts: int


@dataclass(frozen=True)
class DashboardPage:
    """What the dashboard endpoint returns."""

    user: UserCard
    lessons: list[LessonLine]
    completed: int
    next_cursor: str | None


class LessonDashboard:
    """Reads a user's dashboard: header, a page of lessons, completed count."""

    def __init__(
        self,
        users: UserRepository | None = None,
        progress: UserProgressRepository | None = None,
    ) -> None:
        self.users = users or UserRepository()
        self.progress = progress or UserProgressRepository()

    def page(self, user_id: str, *, cursor: str | None = None, size: int = 10) -> DashboardPage:
        """One page of the dashboard; raises `ItemNotFound` for an unknown user."""
        card = self.users.get(user_id, projection=UserCard)
        lessons = self.progress.query(user_id, limit=size, cursor=cursor, projection=LessonLine)
        completed = len(self.progress.completed(user_id).items)
        return DashboardPage(card, lessons.items, completed, lessons.cursor)

    def submit(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record an attempt for a known user."""
        if self.users.find(user_id) is None:
            raise ItemNotFound(f"no user {user_id!r}", key=user_id)
        return self.progress.record_attempt(user_id, lesson_id, score)

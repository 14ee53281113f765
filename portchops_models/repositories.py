"""`UserRepository` and `UserProgressRepository`: the repositories the app uses.

Examples:
    >>> from portchops_models import UserRepository
    >>> users = UserRepository()                       # doctest: +SKIP
    >>> users.get("u1").email                          # doctest: +SKIP
    'ada@example.com'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from pynamodb.expressions.condition import Condition

from .errors import InvalidRequest
from .expressions import Expression
from .limits import RANGE_KEY_MAX_BYTES, check_key_part
from .models import User, UserProgress
from .projections import Projection
from .repository import Page, Repository

__all__ = ["PASSING_SCORE", "ProgressKey", "UserProgressRepository", "UserRepository"]

UP = TypeVar("UP", bound=Projection[User])
PP = TypeVar("PP", bound=Projection[UserProgress])

#: A ``(user_id, lesson_id)`` key of `UserProgress`.
ProgressKey = tuple[str, str]

#: `record_attempt` marks a lesson completed at this score or above.
PASSING_SCORE = 70.0


class UserRepository(Repository[User, str]):
    """Users by ``user_id``; by email through the ``email-index`` GSI."""

    model = User

    @overload
    def get(self, user_id: str, *, consistent: bool = False, projection: None = None) -> User: ...
    @overload
    def get(self, user_id: str, *, consistent: bool = False, projection: type[UP]) -> UP: ...
    def get(
        self, user_id: str, *, consistent: bool = False, projection: type[UP] | None = None
    ) -> User | UP:
        """The user with this id.

        Raises:
            ItemNotFound: no such user.
        """
        result: User | UP = self._get(user_id, consistent=consistent, projection=projection)
        return result

    @overload
    def find(
        self, user_id: str, *, consistent: bool = False, projection: None = None
    ) -> User | None: ...
    @overload
    def find(
        self, user_id: str, *, consistent: bool = False, projection: type[UP]
    ) -> UP | None: ...
    def find(
        self, user_id: str, *, consistent: bool = False, projection: type[UP] | None = None
    ) -> User | UP | None:
        """The user with this id, or ``None``."""
        result: User | UP | None = self._find(user_id, consistent=consistent, projection=projection)
        return result

    def delete(self, user_id: str, *, condition: Condition | None = None) -> None:
        """Delete the user (no error if absent, unless `condition` fails)."""
        self._delete(user_id, condition=condition)

    def update(
        self,
        user_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        condition: Condition | None = None,
    ) -> User:
        """Change an existing user's name or email in one atomic UpdateItem.

        The ``version`` goes up by one, so a copy read before this update fails
        its next `save` with `ConditionFailed` (optimistic locking holds across
        both kinds of write). ``updated_at`` is refreshed.

        Raises:
            ConditionFailed: no such user, or `condition` is false.
            InvalidRequest: nothing to change.
        """
        actions: list[Any] = []
        for attr, value in ((User.name, name), (User.email, email)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise InvalidRequest(f"{attr.attr_name} must be a non-empty str")
                actions.append(attr.set(value))
        if not actions:
            raise InvalidRequest("update() needs name or email")
        actions.append(User.version.add(1))
        exists = User.user_id.exists()
        return self._update(
            user_id, actions, condition=exists if condition is None else exists & condition
        )

    @overload
    def get_by_email(self, email: str, *, projection: None = None) -> User | None: ...
    @overload
    def get_by_email(self, email: str, *, projection: type[UP]) -> UP | None: ...
    def get_by_email(self, email: str, *, projection: type[UP] | None = None) -> User | UP | None:
        """The user with this email (through ``email-index``), or ``None``."""
        page = self._query_page(
            partition=("email", email), index="email-index", limit=1, projection=projection
        )
        return page.items[0] if page.items else None


class UserProgressRepository(Repository[UserProgress, ProgressKey]):
    """Lesson progress by ``(user_id, lesson_id)``; queries by user."""

    model = UserProgress

    @overload
    def get(
        self, user_id: str, lesson_id: str, *, consistent: bool = False, projection: None = None
    ) -> UserProgress: ...
    @overload
    def get(
        self, user_id: str, lesson_id: str, *, consistent: bool = False, projection: type[PP]
    ) -> PP: ...
    def get(
        self,
        user_id: str,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: type[PP] | None = None,
    ) -> UserProgress | PP:
        """The progress row for this user and lesson (expired rows count as absent).

        Raises:
            ItemNotFound: no such row.
        """
        key = (user_id, lesson_id)
        result: UserProgress | PP = self._get(key, consistent=consistent, projection=projection)
        return result

    @overload
    def find(
        self, user_id: str, lesson_id: str, *, consistent: bool = False, projection: None = None
    ) -> UserProgress | None: ...
    @overload
    def find(
        self, user_id: str, lesson_id: str, *, consistent: bool = False, projection: type[PP]
    ) -> PP | None: ...
    def find(
        self,
        user_id: str,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: type[PP] | None = None,
    ) -> UserProgress | PP | None:
        """The progress row, or ``None``."""
        key = (user_id, lesson_id)
        result: UserProgress | PP | None = self._find(
            key, consistent=consistent, projection=projection
        )
        return result

    def delete(self, user_id: str, lesson_id: str, *, condition: Condition | None = None) -> None:
        """Delete the row (no error if absent, unless `condition` fails)."""
        self._delete((user_id, lesson_id), condition=condition)

    def update(
        self,
        user_id: str,
        lesson_id: str,
        *,
        score: float | None = None,
        status: str | None = None,
        add_attempts: int = 0,
        condition: Condition | None = None,
    ) -> UserProgress:
        """Change a row in one atomic UpdateItem (creating it if absent).

        ``add_attempts`` is an atomic increment. ``updated_at`` and ``ttl`` are
        refreshed. Returns the row as stored afterwards.
        """
        actions: list[Any] = []
        if score is not None:
            actions.append(UserProgress.score.set(_check_score(score)))
        if status is not None:
            if status not in ("started", "completed"):
                raise InvalidRequest(f"status must be 'started' or 'completed', got {status!r}")
            actions.append(UserProgress.status.set(status))
            if status == "completed":
                now = datetime.now(UTC)
                actions.append(UserProgress.completed_at.set(UserProgress.completed_at | now))
        if add_attempts:
            actions.append(UserProgress.attempts.add(add_attempts))
        if not actions:
            raise InvalidRequest("update() needs score, status or add_attempts")
        return self._update((user_id, lesson_id), actions, condition=condition)

    def record_attempt(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record one attempt atomically: attempts + 1, latest score, completion.

        A single UpdateItem (no read-modify-write), so concurrent attempts are
        all counted. A score of `PASSING_SCORE` or more marks the lesson
        completed and sets ``completed_at`` the first time; a later lower score
        does not undo a completion. Refreshes ``ttl``.
        """
        score = _check_score(score)
        actions: list[Any] = [UserProgress.attempts.add(1), UserProgress.score.set(score)]
        if score >= PASSING_SCORE:
            now = datetime.now(UTC)
            actions.append(UserProgress.status.set("completed"))
            actions.append(UserProgress.completed_at.set(UserProgress.completed_at | now))
        else:
            actions.append(UserProgress.status.set(UserProgress.status | "started"))
        return self._update((user_id, lesson_id), actions)

    @overload
    def query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
        projection: None = None,
    ) -> Page[UserProgress]: ...
    @overload
    def query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
        projection: type[PP],
    ) -> Page[PP]: ...
    def query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
        projection: type[PP] | None = None,
    ) -> Page[UserProgress] | Page[PP]:
        """One page of a user's progress rows, by lesson id.

        Args:
            user_id: the partition to read.
            lesson_prefix: only lessons whose id starts with this.
            between: only lessons with ``low <= lesson_id <= high``.
            limit: at most this many rows evaluated for the page.
            cursor: from the previous page's ``cursor``; valid only for this query.
            newest_first: descending lesson order.
            consistent: strongly consistent read.
            projection: return these projections instead of full rows.

        Raises:
            InvalidRequest: both ``lesson_prefix`` and ``between``; a bad or foreign cursor.
        """
        sort = _sort_condition(lesson_prefix, between)
        page: Page[UserProgress] | Page[PP] = self._query_page(
            partition=("userId", user_id),
            sort=sort,
            limit=limit,
            cursor=cursor,
            newest_first=newest_first,
            projection=projection,
            consistent=consistent,
        )
        return page

    @overload
    def iter_query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        newest_first: bool = False,
        projection: None = None,
    ) -> Iterator[UserProgress]: ...
    @overload
    def iter_query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        newest_first: bool = False,
        projection: type[PP],
    ) -> Iterator[PP]: ...
    def iter_query(
        self,
        user_id: str,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        newest_first: bool = False,
        projection: type[PP] | None = None,
    ) -> Iterator[UserProgress] | Iterator[PP]:
        """Every matching row, fetched lazily page by page (memory stays at one page)."""
        sort = _sort_condition(lesson_prefix, between)
        return self._iter_pages(
            lambda cursor: self._query_page(
                partition=("userId", user_id),
                sort=sort,
                limit=page_size,
                cursor=cursor,
                newest_first=newest_first,
                projection=projection,
            )
        )

    @overload
    def completed(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        projection: None = None,
    ) -> Page[UserProgress]: ...
    @overload
    def completed(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        projection: type[PP],
    ) -> Page[PP]: ...
    def completed(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        projection: type[PP] | None = None,
    ) -> Page[UserProgress] | Page[PP]:
        """A user's completed lessons, most recent first, from the sparse ``completed-index``."""
        page: Page[UserProgress] | Page[PP] = self._query_page(
            partition=("userId", user_id),
            index="completed-index",
            limit=limit,
            cursor=cursor,
            newest_first=True,
            projection=projection,
        )
        return page


def _check_score(score: float) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidRequest(f"score must be a finite number, got {score!r}")
    return float(score)


def _sort_condition(
    lesson_prefix: str | None, between: tuple[str, str] | None
) -> Callable[[Expression], str] | None:
    if lesson_prefix is not None and between is not None:
        raise InvalidRequest("give lesson_prefix or between, not both")
    if lesson_prefix is not None:
        prefix = check_key_part(lesson_prefix, name="lesson_prefix", max_bytes=RANGE_KEY_MAX_BYTES)

        def begins(expr: Expression) -> str:
            return f"begins_with({expr.name('lessonId')}, {expr.value({'S': prefix})})"

        return begins
    if between is not None:
        if not (isinstance(between, tuple) and len(between) == 2):
            raise InvalidRequest("between must be a (low, high) tuple")
        low, high = (
            check_key_part(v, name="between", max_bytes=RANGE_KEY_MAX_BYTES) for v in between
        )
        if low > high:
            raise InvalidRequest(f"between: {low!r} sorts after {high!r}")

        def within(expr: Expression) -> str:
            name = expr.name("lessonId")
            return f"{name} BETWEEN {expr.value({'S': low})} AND {expr.value({'S': high})}"

        return within
    return None

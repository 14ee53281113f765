"""`UserRepository` and `UserProgressRepository`: the built-in models' domain helpers.

Everything generic (get, find, exists, batch reads, queries, counts, writes,
scans) comes from `Repository`; these classes add only what is particular to
users and progress rows: key-shaped calls (``progress.get(user_id, lesson_id)``),
lookups by email, attempts and completions, built from the domain rules of
`portchops_models.domain`.

Examples:
    >>> from portchops_models import UserRepository
    >>> users = UserRepository()                       # doctest: +SKIP
    >>> users.get("u1").email                          # doctest: +SKIP
    'ada@example.com'
"""

# Generated from portchops_models/aio/repositories.py by tools/unasync.py: do not edit.
# Change the async source, then run `make generate`.

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar, overload

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .domain import (
    PASSING_SCORE,
    ProgressKey,
    attempt_actions,
    complete_lesson,
    lesson_condition,
    progress_key,
    progress_update,
    user_update,
)
from .models import User, UserProgress
from .models.projections import ProjectionType
from .ops import writes
from .ops.page import Page
from .ops.queries import IndexRef
from .ops.sync_runtime import drive
from .repository import Repository

__all__ = ["PASSING_SCORE", "UserProgressRepository", "UserRepository", "ProgressKey"]

P = TypeVar("P")


class UserRepository(Repository[User, str]):
    """Users by ``user_id``; by email through the ``email-index`` GSI."""

    model = User

    def update(
        self,
        key: str,
        actions: Sequence[Action] | None = None,
        *,
        name: str | None = None,
        email: str | None = None,
        condition: Condition | None = None,
    ) -> User:
        """Change an existing user in one atomic UpdateItem (never creates one).

        Give ``name`` / ``email``, or PynamoDB `actions`. The ``version`` goes up
        by one, so a copy read before this update fails its next `save` with
        `ConditionFailed` (optimistic locking holds across both kinds of write).

        Raises:
            ConditionFailed: no such user, or `condition` is false.
            InvalidRequest: nothing to change.
        """
        changes, only_existing = user_update(actions, name, email, condition)
        with self._calling("update") as ctx:
            updated: User = drive(writes.update(ctx, key, changes, only_existing))
        return updated

    @overload
    def get_by_email(self, email: str, *, projection: None = None) -> User | None: ...
    @overload
    def get_by_email(self, email: str, *, projection: ProjectionType[User, P]) -> P | None: ...
    def get_by_email(
        self, email: str, *, projection: ProjectionType[User, P] | None = None
    ) -> User | P | None:
        """The user with this email (through ``email-index``), or ``None``."""
        page = self.query(email, index=User.email_index, limit=1, projection=projection)
        return page.items[0] if page.items else None


class UserProgressRepository(Repository[UserProgress, ProgressKey]):
    """Lesson progress by ``(user_id, lesson_id)``; queries by user.

    Rows expire ``progress_ttl_hours`` after their last write (sliding TTL).
    """

    model = UserProgress

    @overload
    def get(
        self,
        user_id: str,
        /,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: None = None,
    ) -> UserProgress: ...
    @overload
    def get(
        self,
        user_id: str,
        /,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P],
    ) -> P: ...
    @overload
    def get(
        self, key: ProgressKey, *, consistent: bool = False, projection: None = None
    ) -> UserProgress: ...
    @overload
    def get(
        self,
        key: ProgressKey,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P],
    ) -> P: ...
    def get(
        self,
        key: ProgressKey | str,
        lesson_id: str | None = None,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P] | None = None,
    ) -> UserProgress | P:
        """The row for ``get(user_id, lesson_id)`` or ``get((user_id, lesson_id))``.

        A lone ``user_id`` is not a key: mypy rejects ``get("u1")``, and at run
        time it is `InvalidRequest`.

        Raises:
            ItemNotFound: no such row (expired rows count as absent).
            InvalidRequest: a lone str, or a key part that is not a str.
        """
        return super().get(
            progress_key(key, lesson_id), consistent=consistent, projection=projection
        )

    @overload
    def find(
        self,
        user_id: str,
        /,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: None = None,
    ) -> UserProgress | None: ...
    @overload
    def find(
        self,
        user_id: str,
        /,
        lesson_id: str,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P],
    ) -> P | None: ...
    @overload
    def find(
        self, key: ProgressKey, *, consistent: bool = False, projection: None = None
    ) -> UserProgress | None: ...
    @overload
    def find(
        self,
        key: ProgressKey,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P],
    ) -> P | None: ...
    def find(
        self,
        key: ProgressKey | str,
        lesson_id: str | None = None,
        *,
        consistent: bool = False,
        projection: ProjectionType[UserProgress, P] | None = None,
    ) -> UserProgress | P | None:
        """The row, or ``None``; ``find(user_id, lesson_id)`` or ``find((user_id, lesson_id))``
        (never a lone str: `InvalidRequest`)."""
        return super().find(
            progress_key(key, lesson_id), consistent=consistent, projection=projection
        )

    @overload
    def exists(self, user_id: str, /, lesson_id: str, *, consistent: bool = False) -> bool: ...
    @overload
    def exists(self, key: ProgressKey, *, consistent: bool = False) -> bool: ...
    def exists(
        self, key: ProgressKey | str, lesson_id: str | None = None, *, consistent: bool = False
    ) -> bool:
        """Whether the (unexpired) row exists: ``exists(user_id, lesson_id)`` or
        ``exists((user_id, lesson_id))`` (never a lone str: `InvalidRequest`)."""
        return super().exists(progress_key(key, lesson_id), consistent=consistent)

    @overload
    def delete(
        self, user_id: str, /, lesson_id: str, *, condition: Condition | None = None
    ) -> None: ...
    @overload
    def delete(
        self, key_or_item: ProgressKey | UserProgress, *, condition: Condition | None = None
    ) -> None: ...
    def delete(
        self,
        key_or_item: ProgressKey | UserProgress | str,
        lesson_id: str | None = None,
        *,
        condition: Condition | None = None,
    ) -> None:
        """Delete the row (by key, by instance, or ``delete(user_id, lesson_id)``; never
        a lone str: `InvalidRequest`)."""
        if isinstance(key_or_item, UserProgress):
            super().delete(key_or_item, condition=condition)
        else:
            super().delete(progress_key(key_or_item, lesson_id), condition=condition)

    @overload
    def update(
        self,
        user_id: str,
        lesson_id: str,
        /,
        *,
        score: float | None = None,
        status: str | None = None,
        add_attempts: int = 0,
        condition: Condition | None = None,
    ) -> UserProgress: ...
    @overload
    def update(
        self,
        key: ProgressKey,
        actions: Sequence[Action] | None = None,
        *,
        score: float | None = None,
        status: str | None = None,
        add_attempts: int = 0,
        condition: Condition | None = None,
    ) -> UserProgress: ...
    def update(
        self,
        key: ProgressKey | str,
        actions: Sequence[Action] | str | None = None,
        *,
        score: float | None = None,
        status: str | None = None,
        add_attempts: int = 0,
        condition: Condition | None = None,
    ) -> UserProgress:
        """Change a row in one atomic UpdateItem (creating it if absent).

        ``update(user_id, lesson_id, score=..., status=..., add_attempts=...)``, or
        the generic ``update((user_id, lesson_id), actions)`` (never a lone str:
        `InvalidRequest`). ``add_attempts`` is
        an atomic increment; ``updated_at`` and ``ttl`` are refreshed. Returns the
        row as stored afterwards.
        """
        row_key, changes = progress_update(key, actions, score, status, add_attempts)
        with self._calling("update") as ctx:
            row: UserProgress = drive(writes.update(ctx, row_key, changes, condition))
        return row

    def record_attempt(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record one attempt atomically: attempts + 1, latest score, completion.

        A single UpdateItem (no read-modify-write), so concurrent attempts are
        all counted. A score of `PASSING_SCORE` or more marks the lesson
        completed and sets ``completed_at`` the first time; a later lower score
        does not undo a completion. Refreshes ``ttl``.
        """
        row_key = progress_key(user_id, lesson_id)
        with self._calling("record_attempt") as ctx:
            row: UserProgress = drive(writes.update(ctx, row_key, attempt_actions(score), None))
        return row

    def complete_lesson(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record the completing attempt and count it on the user, in one transaction
        (see `UserProgressRepository.complete_lesson`).

        Raises:
            TransactionCanceled: no such user (``failed == [1]``); nothing was written.
        """
        with self._calling("complete_lesson") as ctx:
            done: UserProgress = drive(complete_lesson(ctx, user_id, lesson_id, score))
        return done

    @overload
    def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: None = None,
        consistent: bool = False,
    ) -> Page[UserProgress]: ...
    @overload
    def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[UserProgress, P],
        consistent: bool = False,
    ) -> Page[P]: ...
    def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[UserProgress, P] | None = None,
        consistent: bool = False,
    ) -> Page[UserProgress] | Page[P]:
        """One page of a user's rows by lesson id: `Repository.query` plus two shortcuts.

        Args:
            lesson_prefix: only lessons whose id starts with this.
            between: only lessons with ``low <= lesson_id <= high``.

        Raises:
            InvalidRequest: more than one of ``lesson_prefix``, ``between`` and
                ``range_key_condition``; a bad or foreign cursor.
        """
        fetch = self._query(
            hash_key,
            lesson_condition(range_key_condition, lesson_prefix, between),
            filter_condition,
            index,
            limit,
            newest_first,
            projection,
            consistent,
        )
        page: Page[UserProgress] | Page[P] = (fetch(cursor, None)).decoded()
        return page

    @overload
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: None = None,
        consistent: bool = False,
    ) -> Iterator[UserProgress]: ...
    @overload
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[UserProgress, P],
        consistent: bool = False,
    ) -> Iterator[P]: ...
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        lesson_prefix: str | None = None,
        between: tuple[str, str] | None = None,
        page_size: int | None = None,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[UserProgress, P] | None = None,
        consistent: bool = False,
    ) -> Iterator[UserProgress] | Iterator[P]:
        """The matching rows of `query`, lazily page by page: at most ``limit`` rows in
        all, ``page_size`` a request (`Repository.iter_query`)."""
        items: Iterator[UserProgress] | Iterator[P] = self._iter_query(
            hash_key,
            lesson_condition(range_key_condition, lesson_prefix, between),
            filter_condition,
            index,
            limit,
            page_size,
            cursor,
            newest_first,
            projection,
            consistent,
        )
        return items

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
        projection: ProjectionType[UserProgress, P],
    ) -> Page[P]: ...
    def completed(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        projection: ProjectionType[UserProgress, P] | None = None,
    ) -> Page[UserProgress] | Page[P]:
        """A user's completed lessons, most recent first, from the sparse ``completed-index``."""
        return super().query(
            user_id,
            index=UserProgress.completed_index,
            limit=limit,
            cursor=cursor,
            newest_first=True,
            projection=projection,
        )

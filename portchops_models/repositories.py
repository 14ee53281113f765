"""`UserRepository` and `UserProgressRepository`: the built-in models' domain helpers.

Everything generic (get, find, exists, batch reads, queries, counts, writes,
scans) comes from `Repository`; these classes add only what is particular to
users and progress rows: key-shaped calls (``progress.get(user_id, lesson_id)``),
lookups by email, attempts and completions.

Examples:
    >>> from portchops_models import UserRepository
    >>> users = UserRepository()                       # doctest: +SKIP
    >>> users.get("u1").email                          # doctest: +SKIP
    'ada@example.com'
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar, overload

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .errors import InvalidRequest, TransactionCanceled
from .limits import RANGE_KEY_MAX_BYTES, check_key_part
from .models import User, UserProgress
from .ops import reads, writes
from .ops.base import RepositoryBase
from .projections import ProjectionType
from .repository import IndexRef, Page, Repository, run_call
from .transactions import TransactionCore

__all__ = ["PASSING_SCORE", "ProgressKey", "UserProgressRepository", "UserRepository"]

P = TypeVar("P")

#: A ``(user_id, lesson_id)`` key of `UserProgress`.
ProgressKey = tuple[str, str]

#: `record_attempt` marks a lesson completed at this score or above.
PASSING_SCORE = 70.0

#: `complete_lesson` tries again this often when an expired row is in the way.
_COMPLETE_ATTEMPTS = 3


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
        return super().update(key, changes, condition=only_existing)

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


def progress_key(key: ProgressKey | str, lesson_id: object) -> ProgressKey:
    """``(user_id, lesson_id)`` from either calling form: a tuple, or two arguments."""
    if lesson_id is None:
        if isinstance(key, str):
            raise InvalidRequest("give (user_id, lesson_id), or user_id and lesson_id")
        return key
    if not isinstance(key, str):
        raise InvalidRequest(f"user_id must be a str when lesson_id is given, got {key!r}")
    if not isinstance(lesson_id, str):
        raise InvalidRequest(f"lesson_id must be a str, got {type(lesson_id).__name__}")
    return (key, lesson_id)


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
        return super().update(row_key, changes, condition=condition)

    def record_attempt(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record one attempt atomically: attempts + 1, latest score, completion.

        A single UpdateItem (no read-modify-write), so concurrent attempts are
        all counted. A score of `PASSING_SCORE` or more marks the lesson
        completed and sets ``completed_at`` the first time; a later lower score
        does not undo a completion. Refreshes ``ttl``.
        """
        return super().update(progress_key(user_id, lesson_id), attempt_actions(score))

    def complete_lesson(self, user_id: str, lesson_id: str, score: float) -> UserProgress:
        """Record the attempt that completes a lesson, and count the completion on the user.

        One transaction: the progress row gets attempts + 1, the score, status
        "completed" and ``completed_at`` (kept from the first completion), and
        the user's ``completed_lessons`` goes up by one, both or neither. A
        lesson already completed is not counted again: the attempt is recorded
        on its own. An expired row still stored counts as absent. Returns the
        row as stored afterwards.

        Raises:
            TransactionCanceled: no such user (``failed == [1]``); nothing was written.
        """
        completed: UserProgress = run_call(
            complete_lesson(self, user_id, lesson_id, score), self, "complete_lesson"
        )
        return completed

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
        page: Page[UserProgress] | Page[P] = self._query(
            hash_key,
            lesson_condition(range_key_condition, lesson_prefix, between),
            filter_condition,
            index,
            limit,
            cursor,
            newest_first,
            projection,
            consistent,
        )
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
        items: Iterator[UserProgress] | Iterator[P] = self._query(
            hash_key,
            lesson_condition(range_key_condition, lesson_prefix, between),
            filter_condition,
            index,
            limit,
            cursor,
            newest_first,
            projection,
            consistent,
            lazily=True,
            page_size=page_size,
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


async def complete_lesson(
    repo: RepositoryBase[UserProgress, ProgressKey], user_id: str, lesson_id: str, score: float
) -> UserProgress:
    """`UserProgressRepository.complete_lesson` for both APIs: one transaction, retried
    as a plain attempt when the lesson was already completed."""
    key = progress_key(user_id, lesson_id)
    score = _check_score(score)
    not_completed = UserProgress.status.does_not_exist() | (UserProgress.status != "completed")
    attempt_only = progress_update(key, [UserProgress.attempts.add(1)], score, None, 0)[1]
    for _ in range(_COMPLETE_ATTEMPTS):
        tx = TransactionCore(retry=repo.retry, metrics=repo.metrics)
        tx.update(
            UserProgress,
            key,
            [
                UserProgress.attempts.add(1),
                UserProgress.score.set(score),
                UserProgress.status.set("completed"),
                UserProgress.completed_at.set(UserProgress.completed_at | datetime.now(UTC)),
            ],
            condition=not_completed,
        )
        tx.update(
            User,
            user_id,
            [User.completed_lessons.set((User.completed_lessons | 0) + 1)],
            condition=User.user_id.exists(),
        )
        try:
            await tx._commit(repo.runtime)
        except TransactionCanceled as err:
            if err.failed != [0]:
                raise
            stored = err.reasons[0].item_as(UserProgress) if err.reasons[0] else None
            if stored is None or (stored.status == "completed" and not _expired(stored)):
                row: UserProgress = await writes.update(repo, key, attempt_only, None)
                return row
            # An expired row in the way: remove it (if still that one) and start afresh.
            await writes.delete(repo, key, UserProgress.ttl == stored.ttl)
            continue
        done: UserProgress = await reads.get(repo, key, True, None)
        return done
    last: UserProgress = await writes.update(repo, key, attempt_only, None)
    return last


def _expired(row: UserProgress) -> bool:
    """Whether the row's TTL has passed (DynamoDB may still hold it)."""
    return row.ttl is not None and row.ttl <= datetime.now(UTC)


def user_update(
    actions: Sequence[Action] | None,
    name: str | None,
    email: str | None,
    condition: Condition | None,
) -> tuple[list[Action], Condition]:
    """The actions and condition of `UserRepository.update` (it never creates a user)."""
    changes: list[Action] = list(actions or ())
    for attr, value in ((User.name, name), (User.email, email)):
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidRequest(f"{attr.attr_name} must be a non-empty str")
            changes.append(attr.set(value))
    if not changes:
        raise InvalidRequest("update() needs name, email or actions")
    exists = User.user_id.exists()
    return changes, exists if condition is None else exists & condition


def progress_update(
    key: ProgressKey | str,
    actions: Sequence[Action] | str | None,
    score: float | None,
    status: str | None,
    add_attempts: int,
) -> tuple[ProgressKey, list[Action]]:
    """The row key and actions of `UserProgressRepository.update`, checked."""
    if isinstance(actions, str):
        row_key, changes = progress_key(key, actions), []
    else:
        row_key, changes = progress_key(key, None), list(actions or ())
    if score is not None:
        changes.append(UserProgress.score.set(_check_score(score)))
    if status is not None:
        if status not in ("started", "completed"):
            raise InvalidRequest(f"status must be 'started' or 'completed', got {status!r}")
        changes.append(UserProgress.status.set(status))
        if status == "completed":
            now = datetime.now(UTC)
            changes.append(UserProgress.completed_at.set(UserProgress.completed_at | now))
    if add_attempts:
        if isinstance(add_attempts, bool) or not isinstance(add_attempts, int):
            raise InvalidRequest(f"add_attempts must be an int, got {add_attempts!r}")
        changes.append(UserProgress.attempts.add(add_attempts))
    if not changes:
        raise InvalidRequest("update() needs score, status, add_attempts or actions")
    return row_key, changes


def attempt_actions(score: float) -> list[Action]:
    """The one UpdateItem of `record_attempt`: attempts + 1, latest score, completion."""
    score = _check_score(score)
    actions: list[Action] = [UserProgress.attempts.add(1), UserProgress.score.set(score)]
    if score >= PASSING_SCORE:
        now = datetime.now(UTC)
        actions.append(UserProgress.status.set("completed"))
        actions.append(UserProgress.completed_at.set(UserProgress.completed_at | now))
    else:
        actions.append(UserProgress.status.set(UserProgress.status | "started"))
    return actions


def _check_score(score: float) -> float:
    numeric = isinstance(score, int | float | Decimal) and not isinstance(score, bool)
    if not numeric or not math.isfinite(score):
        raise InvalidRequest(f"score must be a finite number, got {score!r}")
    return float(score)


def lesson_condition(
    condition: Condition | None, lesson_prefix: str | None, between: tuple[str, str] | None
) -> Condition | None:
    """The sort key condition from the ``lesson_prefix`` / ``between`` shortcuts."""
    given = [c for c in (condition, lesson_prefix, between) if c is not None]
    if len(given) > 1:
        raise InvalidRequest("give one of range_key_condition, lesson_prefix or between")
    if lesson_prefix is not None:
        prefix = check_key_part(lesson_prefix, name="lesson_prefix", max_bytes=RANGE_KEY_MAX_BYTES)
        return UserProgress.lesson_id.startswith(prefix)
    if between is not None:
        if not (isinstance(between, tuple) and len(between) == 2):
            raise InvalidRequest("between must be a (low, high) tuple")
        low, high = (
            check_key_part(v, name="between", max_bytes=RANGE_KEY_MAX_BYTES) for v in between
        )
        if low > high:
            raise InvalidRequest(f"between: {low!r} sorts after {high!r}")
        return UserProgress.lesson_id.between(low, high)
    return condition

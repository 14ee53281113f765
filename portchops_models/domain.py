"""The built-in models' domain rules, written once for both APIs.

Keys in either calling form, the update actions of the progress and user
helpers (attempts, scores, completion), the sort key shortcuts, and
`complete_lesson` (one transaction over a progress row and its user), used by
`portchops_models.aio.repositories` and the `portchops_models.repositories`
generated from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .dynamo.limits import RANGE_KEY_MAX_BYTES, check_key_part
from .errors import InvalidRequest, TransactionCanceled
from .models import User, UserProgress
from .ops import reads, writes
from .ops.context import Bound
from .ops.transactions import TransactionCore

__all__ = [
    "PASSING_SCORE",
    "ProgressKey",
    "attempt_actions",
    "complete_lesson",
    "lesson_condition",
    "progress_key",
    "progress_update",
    "user_update",
]

#: A ``(user_id, lesson_id)`` key of `UserProgress`.
ProgressKey = tuple[str, str]

#: `record_attempt` marks a lesson completed at this score or above.
PASSING_SCORE = 70.0

#: `complete_lesson` tries again this often when an expired row is in the way.
_COMPLETE_ATTEMPTS = 3


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


async def complete_lesson(
    ctx: Bound[UserProgress], user_id: str, lesson_id: str, score: float
) -> UserProgress:
    """`UserProgressRepository.complete_lesson` for both APIs: one transaction, retried
    as a plain attempt when the lesson was already completed."""
    key = progress_key(user_id, lesson_id)
    score = _check_score(score)
    not_completed = UserProgress.status.does_not_exist() | (UserProgress.status != "completed")
    attempt_only = progress_update(key, [UserProgress.attempts.add(1)], score, None, 0)[1]
    for _ in range(_COMPLETE_ATTEMPTS):
        tx = TransactionCore(retry=ctx.retry, metrics=ctx.metrics)
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
            await tx._commit(ctx.runtime)
        except TransactionCanceled as err:
            if err.failed != [0]:
                raise
            stored = err.reasons[0].item_as(UserProgress) if err.reasons[0] else None
            if stored is None or (stored.status == "completed" and not _expired(stored)):
                row: UserProgress = await writes.update(ctx, key, attempt_only, None)
                return row
            # An expired row in the way: remove it (if still that one) and start afresh.
            await writes.delete(ctx, key, UserProgress.ttl == stored.ttl)
            continue
        done: UserProgress = await reads.get(ctx, key, True, None)
        return done
    last: UserProgress = await writes.update(ctx, key, attempt_only, None)
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

"""Deterministic demo data, loaded idempotently: `seed` (``portchops seed``).

The data is a pure function of the arguments: users ``u-0001``, ``u-0002``...
(names and emails from a fixed list, ``created_at`` on fixed dates) and, for
each, progress on lessons ``lesson-001``, ``lesson-002``... with fixed scores,
attempts and completion dates.

Idempotent by creating only what is missing: `seed` reads which of its keys
exist (BatchGetItem, keys only) and writes the others through the
repositories' `batch_save`; it never overwrites. Running it twice leaves every
item exactly as it was, timestamps included (``updated_at`` and ``ttl`` are
set by `batch_save` when an item is created and never touched again), and it
never undoes changes made while using the app. A progress row whose ``ttl``
has passed counts as missing (the repositories hide it), so it is written
again with a fresh ``ttl``. Needs the tables: ``portchops migrate up``.

Example:
    >>> from portchops_models.cli.seed import seed
    >>> seed(users=10, lessons=5).progress_rows           # doctest: +SKIP
    50
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ..errors import InvalidRequest
from ..migrate import connection_errors
from ..models import BaseModel, User, UserProgress
from ..models.projections import Projection
from ..observe.metrics import Metrics
from ..repositories import PASSING_SCORE, UserProgressRepository, UserRepository

__all__ = ["NAMES", "SeedResult", "demo_progress", "demo_users", "seed"]

#: Names of the demo users, in order; emails are ``first-name@example.com``.
NAMES = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Frances Allen",
    "John McCarthy",
    "Radia Perlman",
    "Tony Hoare",
)
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_CHUNK = 100
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class SeedResult:
    """What `seed` found and wrote.

    Attributes:
        users: demo users that exist now.
        progress_rows: demo progress rows that exist now.
        users_created: users written by this call (0 when run again).
        progress_created: progress rows written by this call (0 when run again).
    """

    users: int
    progress_rows: int
    users_created: int
    progress_created: int


class _UserKey(Projection[User]):
    user_id: str


class _ProgressKey(Projection[UserProgress]):
    user_id: str
    lesson_id: str


def demo_users(count: int) -> list[User]:
    """The first `count` demo users: ``u-0001`` Ada Lovelace (ada@example.com), ...

    Past the name list, names and emails get a number: ``Ada Lovelace 2``, ``ada2@...``.
    """
    users = []
    for i in range(1, count + 1):
        name = NAMES[(i - 1) % len(NAMES)]
        cycle = (i - 1) // len(NAMES) + 1
        first = name.split()[0].lower()
        suffix = str(cycle) if cycle > 1 else ""
        created = _EPOCH + timedelta(days=i)
        users.append(
            User(
                user_id=f"u-{i:04d}",
                email=f"{first}{suffix}@example.com",
                name=f"{name} {suffix}".strip(),
                created_at=created,
            )
        )
    return users


def demo_progress(user_ids: Sequence[str], lessons: int) -> list[UserProgress]:
    """Each user's progress on lessons ``lesson-001`` ... ``lesson-{lessons:03d}``.

    Scores are ``(37 * user + 11 * lesson) % 101``; a score of at least
    `PASSING_SCORE` completes the lesson (with a fixed ``completed_at``).
    """
    rows = []
    for u, user_id in enumerate(user_ids, start=1):
        for lesson in range(1, lessons + 1):
            score = (37 * u + 11 * lesson) % 101
            done = score >= PASSING_SCORE
            rows.append(
                UserProgress(
                    user_id=user_id,
                    lesson_id=f"lesson-{lesson:03d}",
                    status="completed" if done else "started",
                    score=score,
                    attempts=1 + (u + lesson) % 3,
                    completed_at=_EPOCH + timedelta(days=u, hours=lesson) if done else None,
                )
            )
    return rows


def seed(
    users: int = 25,
    *,
    lessons: int = 10,
    console: Console | None = None,
    metrics: Metrics | None = None,
) -> SeedResult:
    """Load the demo data: `users` users with progress on `lessons` lessons each.

    Only missing items are written (see the module docstring), so running it
    again changes nothing.

    Args:
        users: how many demo users (0-9999).
        lessons: lessons per user (0-999; 0 writes users only).
        console: where the progress bar goes (default: a new rich console).
        metrics: passed to the repositories (default: `default_metrics`).

    Raises:
        InvalidRequest: a count out of range.
        TableNotFound: the tables do not exist (run ``portchops migrate up``).
    """
    if not (isinstance(users, int) and 0 <= users <= 9999):
        raise InvalidRequest(f"users must be 0-9999, got {users!r}")
    if not (isinstance(lessons, int) and 0 <= lessons <= 999):
        raise InvalidRequest(f"lessons must be 0-999, got {lessons!r}")
    out = console or Console()
    with connection_errors():
        user_repo = UserRepository(cache=None, metrics=metrics)
        progress_repo = UserProgressRepository(cache=None, metrics=metrics)
        wanted_users = demo_users(users)
        wanted_rows = demo_progress([u.user_id for u in wanted_users], lessons)
        have_users = {
            u.user_id for u in user_repo.batch_get(_keys(wanted_users), projection=_UserKey)
        }
        have_rows = {
            (r.user_id, r.lesson_id)
            for r in progress_repo.batch_get(_row_keys(wanted_rows), projection=_ProgressKey)
        }
        new_users = [u for u in wanted_users if u.user_id not in have_users]
        new_rows = [r for r in wanted_rows if (r.user_id, r.lesson_id) not in have_rows]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=out) as bar:
            _write(bar, "seeding users", user_repo.batch_save, new_users)
            _write(bar, "seeding progress", progress_repo.batch_save, new_rows)
    out.print(
        f"seeded {users} users ({len(new_users)} new) and "
        f"{len(wanted_rows)} progress rows ({len(new_rows)} new)"
    )
    return SeedResult(
        users=len(wanted_users),
        progress_rows=len(wanted_rows),
        users_created=len(new_users),
        progress_created=len(new_rows),
    )


def _keys(users: Sequence[User]) -> list[str]:
    return [u.user_id for u in users]


def _row_keys(rows: Sequence[UserProgress]) -> list[tuple[str, str]]:
    return [(r.user_id, r.lesson_id) for r in rows]


def _write(
    bar: Progress, label: str, save: Callable[[Sequence[ModelT]], int], items: Sequence[ModelT]
) -> None:
    if not items:
        return
    task = bar.add_task(label, total=len(items))
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        save(chunk)
        bar.advance(task, len(chunk))

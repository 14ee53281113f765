"""The demo job behind `portchops demo` and `make demo`.

Starts the embedded engine, creates the tables by running the migrations,
loads the demo users with `seed`, writes progress through the repositories,
reads them back (point reads, batch reads, projections, paged queries, the
sparse index, the cache), then writes a batch through a fault-injecting proxy
(throttles and partial batches, retried until everything is stored) and prints
a summary and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from ..migrate import upgrade
from ..models import User, UserProgress
from ..models.projections import Projection
from ..repositories import UserProgressRepository, UserRepository
from ..repository import default_metrics
from ..settings import configure, current_settings
from ..testing.engine import LocalEngine
from ..testing.faultproxy import FaultProxy, Faults
from .seed import demo_users, seed

__all__ = ["DemoResult", "UserSummary", "run_demo"]

LESSONS = 12
#: (user_id, email, name) of the seeded users: Ada, Alan, Grace and Edsger.
USERS = tuple((u.user_id, u.email, u.name) for u in demo_users(4))


class UserSummary(Projection[User]):
    """What a dashboard header shows of a user."""

    user_id: str
    email: str
    name: str


@dataclass(frozen=True)
class DemoResult:
    """What the demo read back, for tests to check."""

    users: int
    progress_rows: int
    completed: int
    pages: int
    cache_hits: int
    stormed_rows: int
    throttles: int
    retries: int


def run_demo(console: Console | None = None, *, table_prefix: str = "demo-") -> DemoResult:
    """Run the demo on an embedded engine and print what it does.

    Args:
        console: where to print (the terminal by default).
        table_prefix: the tables' prefix. moto keeps one store per process, shared by
            every `LocalEngine` in it, so a second run in the same process needs
            another prefix to start from empty tables.
    """
    out = console or Console()
    with LocalEngine() as engine:
        configure(endpoint_url=engine.endpoint_url, table_prefix=table_prefix)
        out.print(f"[bold]embedded engine[/] at {engine.endpoint_url}")
        upgrade(console=out)
        default_metrics().reset()
        seed(len(USERS), lessons=0, console=out)
        users = UserRepository()
        progress = UserProgressRepository()

        rows = [
            UserProgress(user_id=u, lesson_id=f"lesson-{i:03d}", status="started")
            for u, _, _ in USERS
            for i in range(LESSONS)
        ]
        progress.batch_save(rows)
        for i, (user_id, _, _) in enumerate(USERS):
            for lesson in range(i + 3):
                progress.record_attempt(user_id, f"lesson-{lesson:03d}", 60 + lesson * 5)

        table = Table(title="users and their progress")
        for column in ("user", "email", "lessons", "completed", "best completed"):
            table.add_column(column)
        summaries = users.batch_get([u for u, _, _ in USERS], projection=UserSummary)
        total_completed = 0
        for summary in summaries:
            done = progress.completed(summary.user_id).items
            total_completed += len(done)
            count = sum(1 for _ in progress.iter_query(summary.user_id, page_size=5))
            best = max((row.score for row in done), default=0)
            table.add_row(summary.name, summary.email, str(count), str(len(done)), f"{best:g}")
        out.print(table)

        pages, cursor = 0, None
        first, grace, alan = USERS[0][0], USERS[2][0], USERS[1]
        while True:
            page = progress.query(first, limit=5, cursor=cursor)
            pages += 1
            cursor = page.cursor
            if cursor is None:
                break
        out.print(f"paged {first}'s {LESSONS} lessons 5 at a time: {pages} pages")

        for _ in range(3):
            users.get(grace)
        by_email = users.get_by_email(alan[1])
        out.print(f"get_by_email({alan[1]!r}) -> {by_email.name if by_email else None}")

        stormed, throttles = _storm(engine.endpoint_url, progress, out)

        snapshot = default_metrics().snapshot()
        metrics = Table(title="metrics")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name in (
            "requests",
            "consumed_read_capacity_units",
            "consumed_write_capacity_units",
            "throttled_requests",
            "retries",
            "user_errors",
            "cache_hits",
            "cache_misses",
        ):
            metrics.add_row(name, f"{snapshot[name]:g}")
        out.print(metrics)
        return DemoResult(
            users=len(summaries),
            progress_rows=len(rows),
            completed=total_completed,
            pages=pages,
            cache_hits=int(snapshot["cache_hits"]),
            stormed_rows=stormed,
            throttles=throttles,
            retries=int(snapshot["retries"]),
        )


def _storm(upstream: str, progress: UserProgressRepository, out: Console) -> tuple[int, int]:
    """batch_save 500 rows through a proxy that throttles 20% and leaves 30% unprocessed."""
    settings = current_settings()
    faults = Faults(throttle=0.2, unprocessed=0.3, operations=frozenset({"BatchWriteItem"}))
    rows = [UserProgress(user_id="u-storm", lesson_id=f"lesson-{i:03d}") for i in range(500)]
    with FaultProxy(upstream=upstream, faults=faults, seed=1) as proxy:
        configure(settings, endpoint_url=proxy.endpoint_url)
        try:
            progress.batch_save(rows)
            stats = proxy.stats
        finally:
            configure(settings)
    stored = sum(1 for _ in progress.iter_query("u-storm"))
    out.print(
        f"batch_save of {len(rows)} rows through a fault proxy: {stats.throttled} throttled "
        f"requests and {stats.unprocessed_items} unprocessed items retried; {stored} stored"
    )
    return stored, stats.throttled

"""Scenario 13: a profile page (a user and 50 progress rows), one table against two, 5 ms RTT.

The page a learner's profile shows: the user and their 50 progress rows, read with the
caches off (every page goes to the table), for 20 users in both layouts, over the same
proxy:

* one table (issue 23): ``ProfileUser`` (``USER#{user_id}`` / ``PROFILE``) and
  ``ProfileProgress`` (``USER#{user_id}`` / ``PROGRESS#{lesson_id}``) on an
  `EntityTable`, the page one `Collection` query of the user's partition
  (``query_all``: one Query while the partition fits one page);
* two tables, as a simple handler reads them: ``UserRepository.get``, then
  ``UserProgressRepository.iter_query`` over the user's partition;
* two tables, as a careful handler reads them: the same two reads at once, the get
  on a second thread while the calling thread runs the query.

Each round renders every user's page once per contender (interleaved rounds, the order
rotating); wall and client CPU (the whole process) per page are medians with their
ranges. Requests and response bytes per page are counted at the proxy, and requests and
consumed read capacity by the layer's `Metrics`, in a pass of their own.

Targets (issue 23): the collection page at least 1.3x faster than the two reads one
after the other, in one request a page against two. The concurrent two-table page is
reported beside it, without a target.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from portchops_models import (
    Repository,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.admin.tables import create_table, delete_table
from portchops_models.entities import Collection, Entity, EntityTable
from portchops_models.metrics import Metrics
from portchops_models.settings import current_settings
from portchops_models.testing.faultproxy import Faults
from portchops_models.transport.connection import current_connection

from .common import (
    RTT,
    Column,
    RemoteProxy,
    ScenarioResult,
    Spread,
    Target,
    interleaved,
    ratio,
    use_layer,
)
from .context import Bench

#: progress rows on each user's page (the issue's figure)
ROWS = 50
#: the collection page at least this much faster than the sequential two-table page
SPEEDUP_LIMIT = 1.3

COLLECTION = "Collection.query_all"
SEQUENTIAL = "get, then iter_query"
CONCURRENT = "get and iter_query, 2 threads"
ORDER = (COLLECTION, SEQUENTIAL, CONCURRENT)
TABLES = {COLLECTION: 1, SEQUENTIAL: 2, CONCURRENT: 2}


# ---------------------------------------------------------------------------- one table


class ProfileApp(EntityTable):
    """The benchmark's single table (``bench-app`` under the benchmarks' prefix)."""

    base_table_name = "app"


class ProfileUser(ProfileApp):
    """A user: one item per user, at the head of their partition's page."""

    __entity__ = Entity("user", pk="USER#{user_id}", sk="PROFILE")
    user_id = UnicodeAttribute()
    email = UnicodeAttribute()
    name = UnicodeAttribute()


class ProfileProgress(ProfileApp):
    """One lesson's progress, in its user's partition."""

    __entity__ = Entity("progress", pk="USER#{user_id}", sk="PROGRESS#{lesson_id}")
    user_id = UnicodeAttribute()
    lesson_id = UnicodeAttribute()
    status = UnicodeAttribute()
    score = NumberAttribute()
    attempts = NumberAttribute()


class ProfileUsers(Repository[ProfileUser, str]):
    model = ProfileUser


class ProfileProgressRows(Repository[ProfileProgress, tuple[str, str]]):
    model = ProfileProgress


class ProfilePage(Collection):
    """A user with their progress rows: one Query of ``USER#{user_id}``."""

    entities = (ProfileUser, ProfileProgress)


# ---------------------------------------------------------------------------- data


def _lesson(j: int) -> dict[str, Any]:
    """The progress values of lesson ``j``: the same in both layouts."""
    return {
        "lesson_id": f"lesson-{j:03d}",
        "status": "completed" if j % 3 == 0 else "started",
        "score": (j * 7) % 100,
        "attempts": 1 + j % 4,
    }


def _seed(user_ids: list[str]) -> None:
    """Write each user and their `ROWS` progress rows in both layouts (the layer's batches)."""
    metrics = Metrics()
    lessons = [_lesson(j) for j in range(ROWS)]
    people = [(u, f"{u}@example.com", f"Learner {u}") for u in user_ids]
    ProfileUsers(cache=None, metrics=metrics).batch_save(
        ProfileUser(user_id=u, email=e, name=n) for u, e, n in people
    )
    ProfileProgressRows(cache=None, metrics=metrics).batch_save(
        ProfileProgress(user_id=u, **lesson) for u in user_ids for lesson in lessons
    )
    UserRepository(cache=None, metrics=metrics).batch_save(
        User(user_id=u, email=e, name=n) for u, e, n in people
    )
    UserProgressRepository(cache=None, metrics=metrics).batch_save(
        UserProgress(user_id=u, **lesson) for u in user_ids for lesson in lessons
    )


def _drop(user_ids: list[str]) -> None:
    """Delete the single table and the seeded users' rows of the two shared tables."""
    delete_table(
        current_settings().table_name(ProfileApp.base_table_name), conn=current_connection()
    )
    metrics = Metrics()
    UserProgressRepository(cache=None, metrics=metrics).batch_delete(
        (u, _lesson(j)["lesson_id"]) for u in user_ids for j in range(ROWS)
    )
    UserRepository(cache=None, metrics=metrics).batch_delete(user_ids)


# ---------------------------------------------------------------------------- run


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    scale = bench.scale
    user_ids = [f"profile-{i:03d}" for i in range(scale.profile_users)]
    order = list(user_ids)
    random.Random(13).shuffle(order)  # pages read in an order unrelated to the writes
    pages = len(order)
    use_layer(bench.engine_url)
    create_table(ProfileUser)  # the one table of both entities
    try:
        _seed(user_ids)
        with (
            RemoteProxy(bench.engine_url, faults=Faults(latency=RTT), seed=13) as proxy,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-profile") as pool,
        ):
            use_layer(proxy.endpoint_url)
            metrics = {name: Metrics() for name in ORDER}
            collection = ProfilePage(metrics=metrics[COLLECTION])
            two_tables = {
                name: (
                    UserRepository(cache=None, metrics=metrics[name]),
                    UserProgressRepository(cache=None, metrics=metrics[name]),
                )
                for name in (SEQUENTIAL, CONCURRENT)
            }

            def collection_page(user_id: str) -> tuple[Any, list[Any]]:
                page = collection.query_all(user_id)
                users = page.of(ProfileUser)
                return (users[0] if users else None), page.of(ProfileProgress)

            def sequential_page(user_id: str) -> tuple[Any, list[Any]]:
                users, progress = two_tables[SEQUENTIAL]
                user = users.get(user_id)
                return user, list(progress.iter_query(user_id))

            def concurrent_page(user_id: str) -> tuple[Any, list[Any]]:
                users, progress = two_tables[CONCURRENT]
                user = pool.submit(users.get, user_id)
                rows = list(progress.iter_query(user_id))
                return user.result(), rows

            page_of: dict[str, Callable[[str], tuple[Any, list[Any]]]] = {
                COLLECTION: collection_page,
                SEQUENTIAL: sequential_page,
                CONCURRENT: concurrent_page,
            }

            def every_page(page: Callable[[str], tuple[Any, list[Any]]]) -> Callable[[], int]:
                def render() -> int:
                    return sum(1 + len(page(user_id)[1]) for user_id in order)

                return render

            contenders = {name: every_page(page_of[name]) for name in ORDER}
            samples = interleaved(contenders, scale.profile_rounds)

            # Counting pass, apart from the timed rounds: the proxy's requests and bytes,
            # the layer's requests and read capacity, and what each page held.
            counted: dict[str, dict[str, float]] = {}
            shapes: dict[str, set[tuple[bool, int]]] = {}
            for name in ORDER:
                metrics[name].snapshot(reset=True)
                proxy.reset_stats()
                held = [page_of[name](user_id) for user_id in order]
                stats = proxy.stats
                snap = metrics[name].snapshot(reset=True)
                shapes[name] = {(user is not None, len(rows)) for user, rows in held}
                counted[name] = {
                    "proxy_requests": stats.requests / pages,
                    "layer_requests": snap["requests"] / pages,
                    "rcu": snap["consumed_read_capacity_units"] / pages,
                    "bytes": stats.bytes_to_client / pages,
                }
    finally:
        use_layer(bench.engine_url)
        _drop(user_ids)

    wall = {name: [s.wall / pages for s in runs] for name, runs in samples.items()}
    cpu = {name: [s.proc_cpu / pages for s in runs] for name, runs in samples.items()}
    rows: list[dict[str, Any]] = []
    for name in ORDER:
        w, c = Spread.of(wall[name]), Spread.of(cpu[name])
        rows.append(
            {
                "contender": name,
                "tables": TABLES[name],
                "wall_ms": w.median * 1e3,
                "wall_range": f"{w.low * 1e3:.2f}-{w.high * 1e3:.2f}",
                "client_cpu_ms": c.median * 1e3,
                "requests": counted[name]["proxy_requests"],
                "rcu": counted[name]["rcu"],
                "bytes": counted[name]["bytes"],
                "vs_collection": ratio(wall[name], wall[COLLECTION]).times(),
            }
        )
    vs_sequential = ratio(wall[SEQUENTIAL], wall[COLLECTION])
    vs_concurrent = ratio(wall[CONCURRENT], wall[COLLECTION])
    requests = counted[COLLECTION]["proxy_requests"]
    targets = [
        Target(
            "profile page: collection vs two tables read one after the other, wall",
            vs_sequential.median,
            SPEEDUP_LIMIT,
            ">=",
            spread=vs_sequential.range,
            source="#23",
            floor="get, then iter_query",
        ),
        Target(
            "profile page: collection requests per page "
            f"(two tables: {counted[SEQUENTIAL]['proxy_requests']:g})",
            requests,
            1,
            "<=",
            unit=" req",
            source="#23",
            floor="one request",
        ),
    ]
    notes = [
        f"{scale.profile_rounds} interleaved rounds of {pages} pages per contender (1 user + "
        f"{ROWS} progress rows each, caches off); medians per page and (min-max) ranges "
        "across rounds; GC on. Client CPU is time.process_time() of the client process.",
        f"Two tables on two threads: {vs_concurrent.times()} the collection page's wall; one "
        f"after the other, {vs_sequential.times()}.",
        "Requests and bytes per page counted at the proxy in a pass of their own; the "
        "layer's Metrics counted "
        + ", ".join(f"{counted[n]['layer_requests']:g}" for n in ORDER)
        + " requests per page (in the table's order). Read capacity is dynalite's figure "
        "(eventually consistent reads); DynamoDB charges a GetItem 0.5 per 4 KB of its "
        "item and a Query 0.5 per 4 KB of all the items it reads, each rounded up.",
    ]
    expected = {(True, ROWS)}
    for name, found in shapes.items():
        if found != expected:
            notes.append(f"{name} returned pages of (user found, rows) {sorted(found)}")
    return ScenarioResult(
        key="profile",
        title=f"13. Profile page: a user and {ROWS} progress rows, one table vs two (5 ms RTT)",
        setup={
            "rtt_ms": RTT * 1e3,
            "users": pages,
            "rows_per_user": ROWS,
            "rounds": scale.profile_rounds,
        },
        columns=[
            Column("contender", "page read", "{}"),
            Column("tables", "tables", "{}"),
            Column("wall_ms", "wall ms/page", "{:.2f}"),
            Column("wall_range", "range", "{}"),
            Column("client_cpu_ms", "client CPU ms/page", "{:.2f}"),
            Column("requests", "requests/page", "{:g}"),
            Column("rcu", "RCU/page", "{:g}"),
            Column("bytes", "bytes/page", "{:,.0f}"),
            Column("vs_collection", "wall vs collection", "{}"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={
            "speedup_vs_sequential": vs_sequential.median,
            "speedup_vs_concurrent": vs_concurrent.median,
            "requests_per_page": {n: counted[n]["proxy_requests"] for n in ORDER},
            "rcu_per_page": {n: counted[n]["rcu"] for n in ORDER},
        },
    )

"""Writes under lost answers, all-or-nothing validation, and calls bounded in time.

The fault proxy forwards a write, lets the engine apply it, then resets the
client connection instead of answering (a lost response, or a read timeout after
the write landed). The retried write must not apply twice nor fail its own
condition. Everything runs over HTTP on moto and on dynalite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portchops_models import (
    CallTimeout,
    InvalidRequest,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
    configure,
)
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry


@pytest.fixture
def lossy(any_tables: Settings, engine_url: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of each engine in turn; settings point at it."""
    with FaultProxy(upstream=engine_url, seed=11) as running:
        configure(any_tables, endpoint_url=running.endpoint_url)
        yield running


def _lose(proxy: FaultProxy, fraction: float, *operations: str) -> None:
    proxy.faults = Faults(lost_answer=fraction, operations=frozenset(operations))


def test_record_attempt_counts_once_under_lost_answers(lossy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    _lose(lossy, 0.15, "UpdateItem")
    for n in range(120):
        progress.record_attempt("u1", "l1", 40 + n % 50)
    lossy.faults = Faults()
    assert lossy.stats.lost_answers > 0  # the hazard happened
    row = progress.get("u1", "l1", consistent=True)
    assert row.attempts == 120


def test_update_add_counts_once_under_lost_answers(lossy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    _lose(lossy, 0.15, "UpdateItem")
    for _ in range(40):
        progress.update("u1", "l2", add_attempts=3)
    lossy.faults = Faults()
    assert lossy.stats.lost_answers > 0
    assert progress.get("u1", "l2", consistent=True).attempts == 120


def test_saves_do_not_conflict_with_themselves_under_lost_answers(lossy: FaultProxy) -> None:
    users = UserRepository(cache=None, retry=fast_retry())
    _lose(lossy, 0.15, "PutItem")
    saved = [users.save(User(user_id=f"u{i}", email=f"{i}@x.io", name="A")) for i in range(60)]
    assert all(user.version == 1 for user in saved)
    for user in saved:
        user.name = "B"
        users.save(user)  # no ConditionFailed for its own landed write
    lossy.faults = Faults()
    assert lossy.stats.lost_answers > 0
    stored = users.batch_get([f"u{i}" for i in range(60)])
    assert [(u.version, u.name) for u in stored] == [(2, "B")] * 60


def test_user_update_bumps_the_version_once_under_lost_answers(lossy: FaultProxy) -> None:
    users = UserRepository(cache=None, retry=fast_retry())
    users.save(User(user_id="v", email="v@x.io", name="V"))
    _lose(lossy, 0.15, "UpdateItem")
    for n in range(60):
        users.update("v", name=f"V{n}")
    lossy.faults = Faults()
    assert users.get("v", consistent=True).version == 61


def test_a_genuine_condition_failure_is_still_reported(lossy: FaultProxy) -> None:
    from portchops_models import ConditionFailed

    users = UserRepository(cache=None, retry=fast_retry())
    with pytest.raises(ConditionFailed):
        users.update("nobody", name="Ghost")  # update never creates a user
    assert users.find("nobody") is None


def test_one_bad_number_in_a_batch_sends_nothing(lossy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    rows = [UserProgress(user_id="b", lesson_id=f"l{i:03d}", score=i) for i in range(500)]
    rows[317].score = 1e200
    lossy.reset_stats()
    with pytest.raises(InvalidRequest, match="score"):
        progress.batch_save(rows)
    assert lossy.stats.requests == 0
    assert progress.query("b").items == []


def test_a_write_never_revives_an_expired_row(lossy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    past = int((datetime.now(UTC) - timedelta(hours=2)).timestamp())
    table = current_connection().settings.table_name(UserProgress.base_table_name)
    current_connection().call(
        "PutItem",
        {
            "TableName": table,
            "Item": {
                "userId": {"S": "old"},
                "lessonId": {"S": "l1"},
                "attempts": {"N": "42"},
                "status": {"S": "completed"},
                "score": {"N": "99"},
                "completedAt": {"S": "2020-01-01T00:00:00.000000+0000"},
                "ttl": {"N": str(past)},
            },
        },
    )
    assert progress.find("old", "l1") is None  # expired: hidden, though still stored
    row = progress.record_attempt("old", "l1", 10)
    assert (row.attempts, row.status, row.completed_at) == (1, "started", None)
    assert row.ttl > datetime.now(UTC)


def test_reused_cursors_with_another_direction_or_prefix_are_refused(lossy: FaultProxy) -> None:
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    progress.batch_save([UserProgress(user_id="c", lesson_id=f"l{i:02d}") for i in range(6)])
    page = progress.query("c", lesson_prefix="l0", newest_first=True, limit=2)
    assert page.cursor is not None
    with pytest.raises(InvalidRequest, match="cursor"):
        progress.query("c", lesson_prefix="l0", limit=2, cursor=page.cursor)
    with pytest.raises(InvalidRequest, match="cursor"):
        progress.query("c", lesson_prefix="l", newest_first=True, limit=2, cursor=page.cursor)
    again = progress.query("c", lesson_prefix="l0", newest_first=True, limit=2, cursor=page.cursor)
    assert [r.lesson_id for r in again] == ["l03", "l02"]


@pytest.mark.parametrize("call", ["get", "batch_get", "save"])
def test_a_never_answering_endpoint_ends_each_call_within_its_timeout(
    lossy: FaultProxy, call: str
) -> None:
    configure(current_connection().settings, call_timeout=2.5)
    users = UserRepository(cache=None)
    lossy.faults = Faults(hang=1.0)
    actions = {
        "get": lambda: users.get("u1"),
        "batch_get": lambda: users.batch_get([f"u{i}" for i in range(150)]),
        "save": lambda: users.save(User(user_id="u1", email="a@x.io", name="A")),
    }
    start = time.monotonic()
    with pytest.raises(CallTimeout) as info:
        actions[call]()
    elapsed = time.monotonic() - start
    assert elapsed < 4.5, f"{call} took {elapsed:.2f}s"
    assert "call_timeout (2.5 s)" in str(info.value)
    assert info.value.waited_for in ("answer", "backoff")


def test_waiting_for_a_pooled_connection_is_bounded_too(lossy: FaultProxy) -> None:
    import threading

    from portchops_models.transport import deadline

    configure(current_connection().settings, call_timeout=1.0, max_pool_connections=2)
    users = UserRepository(cache=None)
    lossy.faults = Faults(hang=1.0)
    holding = threading.Barrier(3)
    errors: list[CallTimeout] = []

    def hold(n: int) -> None:  # two calls with a longer deadline keep both connections
        with deadline.bounded(3.0):
            holding.wait()
            with pytest.raises(CallTimeout):
                users.get(f"h{n}")

    holders = [threading.Thread(target=hold, args=(n,)) for n in range(2)]
    for thread in holders:
        thread.start()
    holding.wait()
    until = time.monotonic() + 2.0
    while lossy.stats.hung < 2 and time.monotonic() < until:  # both requests at the proxy
        time.sleep(0.005)
    assert lossy.stats.hung == 2

    def read(n: int) -> None:
        try:
            users.get(f"u{n}")
        except CallTimeout as err:
            errors.append(err)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(6)]
    start = time.monotonic()
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    waited = time.monotonic() - start
    for thread in holders:
        thread.join()
    assert waited < 2.5
    assert [err.waited_for for err in errors] == ["connection"] * 6


# ---------------------------------------------------------------------- bad input, no engine faults

_TEXT = st.text(
    st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), min_size=0, max_size=6
)
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**140), max_value=10**140),
    st.floats(allow_nan=True, allow_infinity=True),
)
_TTLS = st.one_of(
    st.none(),
    st.integers(min_value=-(10**21), max_value=10**21),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=_TEXT, lesson=_TEXT, score=_NUMBERS, ttl=_TTLS, batch=st.booleans())
def test_random_values_give_success_or_invalid_request_and_nothing_on_failure(
    tables: Settings, name: str, lesson: str, score: float, ttl: object, batch: bool
) -> None:
    users = UserRepository(cache=None, retry=fast_retry())
    progress = UserProgressRepository(cache=None, retry=fast_retry())
    try:
        user = User(user_id="h", email="h@x.io", name=name)
        row = UserProgress(user_id="h", lesson_id=lesson or "l", score=score)
        if ttl is not None:
            row.ttl = ttl  # type: ignore[assignment]
        if batch:
            progress.batch_save([UserProgress(user_id="h", lesson_id="ok"), row])
        else:
            users.save(user)
            users.delete("h")
            progress.save(row)
    except InvalidRequest:
        assert progress.query("h").items == []
        assert users.find("h") is None
        return
    progress.batch_delete([(r.user_id, r.lesson_id) for r in progress.query("h")])

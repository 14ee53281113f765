"""The repositories under injected faults: throttling, 5xx, drops, partial batches.

Every test runs through `FaultProxy` in front of the embedded engine; the proxy
counts what really crossed the wire, so the assertions compare with that.
"""

from __future__ import annotations

import threading

import pytest

from portchops_models import (
    Metrics,
    ThrottledError,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.retry import RetryBudget, RetryPolicy
from portchops_models.testing.faultproxy import FaultProxy, Faults
from tests.conftest import fast_retry, no_sleep


def _users(n: int) -> list[User]:
    return [
        User(user_id=f"u{i:05d}", email=f"u{i}@example.com", name=f"User {i}") for i in range(n)
    ]


def test_batch_save_2000_under_faults_stores_each_item_exactly_once(proxy: FaultProxy) -> None:
    metrics = Metrics()
    repo = UserProgressRepository(cache=None, retry=fast_retry(), metrics=metrics)
    rows = [
        UserProgress(user_id=f"u{i % 40:02d}", lesson_id=f"l-{i:05d}", score=i % 100, attempts=i)
        for i in range(2000)
    ]
    proxy.faults = Faults(
        unprocessed=0.30,
        throttle=0.10,
        server_error=0.02,
        drop=0.01,
        operations=frozenset({"BatchWriteItem"}),
    )
    assert repo.batch_save(rows) == 2000
    stats = proxy.stats
    assert stats.unprocessed_items > 0
    assert stats.throttled > 0
    proxy.faults = Faults()
    stored = {(r.user_id, r.lesson_id): r for r in repo.scan(segments=4)}
    assert len(stored) == 2000
    for row in rows:
        got = stored[(row.user_id, row.lesson_id)]
        assert (got.score, got.attempts) == (row.score, row.attempts)
    snapshot = metrics.snapshot()
    batch_requests = stats.by_operation["BatchWriteItem"]
    assert snapshot["operations"]["BatchWriteItem"]["requests"] == batch_requests
    assert snapshot["throttled_requests"] == stats.throttled
    assert snapshot["errors"] == stats.throttled + stats.server_errors + stats.dropped


def test_batch_get_1000_under_half_unprocessed_returns_all(proxy: FaultProxy) -> None:
    repo = UserRepository(cache=None, retry=fast_retry())
    repo.batch_save(_users(1000))
    proxy.faults = Faults(unprocessed=0.5, operations=frozenset({"BatchGetItem"}))
    keys = [f"u{i:05d}" for i in range(999, -1, -1)]
    got = repo.batch_get(keys)
    assert [u.user_id for u in got] == keys
    assert proxy.stats.unprocessed_keys >= 400


def test_permanent_throttle_gives_up_within_the_policy_bound(proxy: FaultProxy) -> None:
    metrics = Metrics()
    repo = UserRepository(cache=None, retry=fast_retry(max_attempts=5), metrics=metrics)
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    proxy.reset_stats()
    proxy.faults = Faults(throttle=1.0)
    with pytest.raises(ThrottledError) as info:
        repo.get("u1")
    assert info.value.attempts == 5
    assert info.value.code == "ProvisionedThroughputExceededException"
    assert proxy.stats.requests == 5
    assert proxy.stats.forwarded == 0
    assert metrics.snapshot()["retries"] == 4


def test_retry_budget_caps_load_in_a_throttling_storm(proxy: FaultProxy) -> None:
    budget = RetryBudget(capacity=50, retry_cost=5)
    repo = UserRepository(
        cache=None, retry=RetryPolicy(max_attempts=8, budget=budget, sleep=no_sleep)
    )
    proxy.faults = Faults(throttle=1.0)
    calls = 40
    for i in range(calls):
        with pytest.raises(ThrottledError):
            repo.get(f"u{i}")
    # Without a budget: 40 calls x 8 attempts = 320 requests. With it: 40 + 50 / 5.
    assert proxy.stats.requests <= calls + 50 // 5


def test_batch_rounds_without_progress_give_up_naming_outstanding(proxy: FaultProxy) -> None:
    repo = UserRepository(cache=None, retry=fast_retry(max_attempts=3))
    repo.batch_save(_users(30))
    proxy.faults = Faults(unprocessed=1.0, operations=frozenset({"BatchGetItem"}))
    with pytest.raises(ThrottledError) as info:
        repo.batch_get([f"u{i:05d}" for i in range(30)])
    assert info.value.outstanding == 30
    assert proxy.stats.by_operation["BatchGetItem"] == 3  # 3 rounds in a row without progress


def test_validation_errors_are_not_retried(proxy: FaultProxy) -> None:
    from portchops_models import ConditionFailed

    repo = UserRepository(cache=None, retry=fast_retry())
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    proxy.reset_stats()
    with pytest.raises(ConditionFailed):
        repo.save(User(user_id="u1", email="b@example.com", name="Dup"))
    # The PutItem is sent once; the one read after it checks the failure was not our own
    # earlier attempt (exactly-once reconciliation), it is not a retry.
    assert [seen.operation for seen in proxy.seen] == ["PutItem", "GetItem"]


def test_cache_stampede_100_threads_one_request(proxy: FaultProxy) -> None:
    repo = UserRepository(retry=fast_retry())
    repo.save(User(user_id="hot", email="hot@example.com", name="Hot"))
    repo.cache_clear()
    proxy.reset_stats()
    proxy.faults = Faults(latency=0.05, operations=frozenset({"GetItem"}))
    barrier = threading.Barrier(100)
    names: list[str] = []

    def reader() -> None:
        barrier.wait()
        names.append(repo.get("hot").name)

    threads = [threading.Thread(target=reader) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert names == ["Hot"] * 100
    assert proxy.stats.by_operation["GetItem"] == 1


def test_batch_get_sends_only_uncached_keys(proxy: FaultProxy) -> None:
    metrics = Metrics()
    repo = UserRepository(metrics=metrics, retry=fast_retry())
    repo.batch_save(_users(100))
    repo.batch_get([f"u{i:05d}" for i in range(60)])  # warm 60 keys
    proxy.reset_stats()
    got = repo.batch_get([f"u{i:05d}" for i in range(100)])
    assert len(got) == 100
    assert proxy.stats.by_operation == {"BatchGetItem": 1}
    assert metrics.snapshot()["cache_hits"] == 60
    sent_keys = metrics.snapshot()["operations"]["BatchGetItem"]["requests"]
    assert sent_keys == 2  # the warm-up and the 40 cold keys


def test_write_then_read_is_never_stale_through_the_same_repository(proxy: FaultProxy) -> None:
    repo = UserRepository(retry=fast_retry())
    repo.save(User(user_id="u1", email="a@example.com", name="v0"))
    proxy.faults = Faults(latency=0.002, latency_jitter=0.004, operations=frozenset({"GetItem"}))
    stop = threading.Event()

    def hammer() -> None:  # keeps loads in flight that race with the writes
        while not stop.is_set():
            repo.get("u1")

    readers = [threading.Thread(target=hammer) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(1, 40):
            user = repo.get("u1", consistent=True)
            user.name = f"v{i}"
            repo.save(user)
            assert repo.get("u1").name == f"v{i}"
    finally:
        stop.set()
        for t in readers:
            t.join()


def test_reads_and_writes_keep_working_with_drops_and_5xx(proxy: FaultProxy) -> None:
    metrics = Metrics()
    repo = UserRepository(cache=None, metrics=metrics, retry=fast_retry())
    proxy.faults = Faults(throttle=0.15, server_error=0.1, drop=0.05)
    for user in _users(60):
        repo.save(user)
    for i in range(60):
        assert repo.get(f"u{i:05d}").name == f"User {i}"
    stats = proxy.stats
    snapshot = metrics.snapshot()
    assert snapshot["requests"] == stats.requests
    assert snapshot["throttled_requests"] == stats.throttled
    assert snapshot["errors"] == stats.throttled + stats.server_errors + stats.dropped
    assert snapshot["retries"] == snapshot["errors"]
    assert stats.forwarded == 120


def test_the_models_own_methods_are_retried_too(proxy: FaultProxy) -> None:
    from portchops_models.settings import configure, current_settings

    fast = {"retry_base_delay": 0.001, "retry_max_delay": 0.002}
    settings = configure(current_settings(), retry_max_attempts=10, **fast)
    User(user_id="u1", email="a@example.com", name="Ada").save()
    proxy.faults = Faults(throttle=0.2, server_error=0.05, operations=frozenset({"GetItem"}))
    for _ in range(20):  # a call fails only if 10 attempts in a row do: 0.25**10
        assert User.get("u1").name == "Ada"
    assert proxy.stats.throttled + proxy.stats.server_errors > 0
    configure(settings, retry_max_attempts=4)
    proxy.reset_stats()
    proxy.faults = Faults(throttle=1.0, operations=frozenset({"GetItem"}))
    with pytest.raises(ThrottledError) as info:
        User.get("u1")
    assert info.value.attempts == 4
    assert proxy.stats.requests == 4

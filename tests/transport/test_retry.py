"""Tests for portchops_models.retry: no real sleeping, no timing assertions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from portchops_models.errors import ThrottledError
from portchops_models.retry import RetryBudget, RetryPolicy, retrying


def client_error(code: str, status: int = 400, operation: str = "GetItem") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


class FakeSleep:
    """Records the delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Flaky:
    """Raises the given errors in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors: Iterator[BaseException] = iter(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        err = next(self.errors, None)
        if err is not None:
            raise err
        return self.result


def always(err_factory: Callable[[], BaseException]) -> Callable[[], str]:
    def fail() -> str:
        raise err_factory()

    return fail


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def policy(sleep: FakeSleep) -> RetryPolicy:
    """A policy that records its sleeps and always jitters to the full ceiling."""
    return RetryPolicy(sleep=sleep, random=lambda: 1.0)


RETRYABLE = [
    pytest.param(lambda: client_error("ProvisionedThroughputExceededException"), id="throughput"),
    pytest.param(lambda: client_error("ThrottlingException"), id="throttling"),
    pytest.param(lambda: client_error("RequestLimitExceeded"), id="request-limit"),
    pytest.param(lambda: client_error("InternalServerError", status=500), id="500"),
    pytest.param(lambda: EndpointConnectionError(endpoint_url="http://x"), id="endpoint"),
    pytest.param(lambda: ConnectionClosedError(endpoint_url="http://x"), id="closed"),
]

NOT_RETRYABLE = [
    "ConditionalCheckFailedException",
    "ValidationException",
    "ResourceNotFoundException",
]


@pytest.mark.parametrize("make_error", RETRYABLE)
def test_retryable_errors_are_retried_then_succeed(
    make_error: Callable[[], BaseException], sleep: FakeSleep
) -> None:
    fn = Flaky([make_error(), make_error()])
    assert policy(sleep).call(fn) == "ok"
    assert fn.calls == 3
    assert len(sleep.delays) == 2


@pytest.mark.parametrize("code", NOT_RETRYABLE)
def test_non_retryable_errors_propagate_unchanged_after_one_call(
    code: str, sleep: FakeSleep
) -> None:
    err = client_error(code)
    fn = Flaky([err])
    with pytest.raises(ClientError) as info:
        policy(sleep).call(fn)
    assert info.value is err
    assert fn.calls == 1
    assert sleep.delays == []


def test_non_retryable_error_after_retries_propagates_unchanged(sleep: FakeSleep) -> None:
    err = client_error("ValidationException")
    fn = Flaky([client_error("ThrottlingException"), err])
    with pytest.raises(ClientError) as info:
        policy(sleep).call(fn)
    assert info.value is err
    assert fn.calls == 2


def test_other_exceptions_are_not_retried(sleep: FakeSleep) -> None:
    fn = Flaky([KeyError("k")])
    with pytest.raises(KeyError):
        policy(sleep).call(fn)
    assert fn.calls == 1


def test_gives_up_after_max_attempts(sleep: FakeSleep) -> None:
    calls = 0
    last: list[BaseException] = []

    def fail() -> str:
        nonlocal calls
        calls += 1
        err = client_error("ProvisionedThroughputExceededException")
        last.append(err)
        raise err

    with pytest.raises(ThrottledError) as info:
        policy(sleep).with_(max_attempts=4).call(fail, table="users")
    assert calls == 4
    assert len(sleep.delays) == 3
    err = info.value
    assert err.attempts == 4
    assert err.code == "ProvisionedThroughputExceededException"
    assert err.table == "users"
    assert err.__cause__ is last[-1]
    assert "attempts exhausted" in str(err)


def test_max_attempts_one_never_retries(sleep: FakeSleep) -> None:
    fn = Flaky([client_error("ThrottlingException")])
    with pytest.raises(ThrottledError) as info:
        policy(sleep).with_(max_attempts=1).call(fn)
    assert fn.calls == 1
    assert info.value.attempts == 1
    assert sleep.delays == []


def test_connection_error_gives_up_without_code(sleep: FakeSleep) -> None:
    fail = always(lambda: EndpointConnectionError(endpoint_url="http://x"))
    with pytest.raises(ThrottledError) as info:
        policy(sleep).with_(max_attempts=2).call(fail)
    assert info.value.code is None
    assert isinstance(info.value.__cause__, EndpointConnectionError)


def test_on_retry_is_called_before_each_sleep(sleep: FakeSleep) -> None:
    errors = [client_error("ThrottlingException"), client_error("ThrottlingException")]
    seen: list[tuple[BaseException, int, float]] = []
    fn = Flaky(list(errors))
    policy(sleep).call(fn, on_retry=lambda err, n, delay: seen.append((err, n, delay)))
    assert [(e, n) for e, n, _ in seen] == [(errors[0], 1), (errors[1], 2)]
    assert [d for _, _, d in seen] == sleep.delays


@pytest.mark.parametrize(
    ("base", "cap", "total"), [(0.025, 1.0, 20.0), (0.5, 4.0, 3.0), (1.0, 1.0, 2.5)]
)
def test_total_sleep_never_exceeds_max_total_delay(
    base: float, cap: float, total: float, sleep: FakeSleep
) -> None:
    fail = always(lambda: client_error("ThrottlingException"))
    p = policy(sleep).with_(
        max_attempts=1000, base_delay=base, max_delay=cap, max_total_delay=total
    )
    with pytest.raises(ThrottledError) as info:
        p.call(fail)
    assert sum(sleep.delays) <= total
    assert "total delay cap" in str(info.value)
    assert info.value.attempts == len(sleep.delays) + 1


def test_budget_limits_retries_across_calls(sleep: FakeSleep) -> None:
    budget = RetryBudget(capacity=50)
    p = policy(sleep).with_(budget=budget, max_attempts=8)
    calls = 0

    def fail() -> str:
        nonlocal calls
        calls += 1
        raise client_error("ThrottlingException")

    outcomes = []
    for _ in range(20):
        with pytest.raises(ThrottledError) as info:
            p.call(fail)
        outcomes.append(str(info.value))
    retries = calls - 20
    assert retries == 50 // budget.retry_cost  # far fewer than 20 * 7
    assert budget.available < budget.retry_cost
    assert any("retry budget empty" in message for message in outcomes)


def test_connection_errors_cost_more_tokens(sleep: FakeSleep) -> None:
    budget = RetryBudget(capacity=100)
    fail = always(lambda: ConnectionClosedError(endpoint_url="http://x"))
    with pytest.raises(ThrottledError):
        policy(sleep).with_(budget=budget, max_attempts=3).call(fail)
    assert budget.available == 100 - 2 * budget.timeout_cost


def test_successes_refund_tokens(sleep: FakeSleep) -> None:
    budget = RetryBudget(capacity=20)
    p = policy(sleep).with_(budget=budget)
    with pytest.raises(ThrottledError):
        p.call(always(lambda: client_error("ThrottlingException")))
    assert budget.available == 0
    for _ in range(7):
        assert p.call(lambda: "ok") == "ok"
    assert budget.available == 7 * budget.success_refund
    # A call that succeeds after a retry gives back its last retry's cost.
    assert p.call(Flaky([client_error("ThrottlingException")])) == "ok"
    assert budget.available == 7
    for _ in range(100):
        p.call(lambda: "ok")
    assert budget.available == budget.capacity


def test_no_budget_means_only_attempts_and_delay_limit(sleep: FakeSleep) -> None:
    p = policy(sleep).with_(budget=None, max_attempts=5)
    for _ in range(50):
        with pytest.raises(ThrottledError):
            p.call(always(lambda: client_error("ThrottlingException")))
    assert len(sleep.delays) == 50 * 4


def test_each_policy_gets_its_own_budget_and_with_shares_it() -> None:
    a, b = RetryPolicy(), RetryPolicy()
    assert a.budget is not b.budget
    assert a.with_(max_attempts=2).budget is a.budget
    assert a.with_(budget=None).budget is None


def test_budget_try_acquire_and_release() -> None:
    budget = RetryBudget(capacity=10)
    assert budget.try_acquire(5)
    assert budget.try_acquire(5)
    assert not budget.try_acquire(1)
    assert budget.available == 0
    budget.release_on_success()
    assert budget.available == 1
    budget.release_on_success(100)
    assert budget.available == 10


def test_budget_is_thread_safe() -> None:
    capacity, threads, attempts = 1000, 16, 500
    budget = RetryBudget(capacity=capacity)
    taken = [0] * threads
    start = threading.Barrier(threads)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(attempts):
            if budget.try_acquire(3):
                taken[i] += 3

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sum(taken) == capacity - capacity % 3
    assert budget.available == capacity - sum(taken)


def test_budget_refunds_are_thread_safe() -> None:
    budget = RetryBudget(capacity=10_000, success_refund=1)
    assert budget.try_acquire(10_000)
    threads = 8

    def worker() -> None:
        for _ in range(500):
            budget.release_on_success()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert budget.available == threads * 500


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    base=st.floats(min_value=1e-6, max_value=1.0),
    cap=st.floats(min_value=1.0, max_value=60.0),
)
def test_backoff_is_within_full_jitter_bounds(
    attempt: int, r: float, base: float, cap: float
) -> None:
    p = RetryPolicy(base_delay=base, max_delay=cap, random=lambda: r)
    delay = p.backoff(attempt)
    ceiling = cap if attempt > 200 else min(cap, base * 2**attempt)
    assert 0.0 <= delay <= ceiling
    assert delay == pytest.approx(r * ceiling)


def test_backoff_uses_injected_random() -> None:
    values = iter([0.0, 0.5, 0.25])
    p = RetryPolicy(base_delay=0.1, max_delay=1.0, random=lambda: next(values))
    assert p.backoff(0) == 0.0
    assert p.backoff(1) == pytest.approx(0.5 * 0.2)
    assert p.backoff(10) == pytest.approx(0.25 * 1.0)


def test_backoff_huge_attempt_does_not_overflow() -> None:
    p = RetryPolicy(random=lambda: 1.0)
    assert p.backoff(10**30) == p.max_delay


def test_backoff_rejects_negative_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy().backoff(-1)


def test_sleeps_use_backoff_with_full_jitter(sleep: FakeSleep) -> None:
    p = RetryPolicy(sleep=sleep, random=lambda: 0.5, base_delay=0.1, max_delay=0.3)
    with pytest.raises(ThrottledError):
        p.with_(max_attempts=5).call(always(lambda: client_error("ThrottlingException")))
    assert sleep.delays == pytest.approx([0.05, 0.1, 0.15, 0.15])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": 0.0}, "base_delay"),
        ({"base_delay": -1.0}, "base_delay"),
        ({"max_delay": 0.0}, "max_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"base_delay": float("nan")}, "base_delay"),
        ({"max_total_delay": 0.0}, "max_total_delay"),
        ({"base_delay": 2.0, "max_delay": 1.0}, "<= max_delay"),
    ],
)
def test_bad_policy_values_raise_value_error(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        RetryPolicy().with_(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["capacity", "retry_cost", "timeout_cost", "success_refund"])
def test_bad_budget_values_raise_value_error(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryBudget(**{name: -1})


def test_policy_is_frozen() -> None:
    p = RetryPolicy()
    with pytest.raises(AttributeError):
        p.max_attempts = 3  # type: ignore[misc]


def test_decorator_preserves_arguments_and_return_value(sleep: FakeSleep) -> None:
    fails = Flaky([client_error("ThrottlingException")])

    @retrying(policy(sleep))
    def add(a: int, b: int = 0, *, scale: int = 1) -> int:
        """Add and scale."""
        fails()
        return (a + b) * scale

    assert add(1, 2, scale=10) == 30
    assert add(4) == 4
    assert fails.calls == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Add and scale."


def test_decorator_on_methods_and_default_policy() -> None:
    class Repo:
        def __init__(self) -> None:
            self.calls = 0

        @retrying()
        def get(self, key: str) -> str:
            self.calls += 1
            return key.upper()

    repo = Repo()
    assert repo.get("k") == "K"
    assert repo.calls == 1


def test_decorator_raises_throttled_error(sleep: FakeSleep) -> None:
    @retrying(policy(sleep).with_(max_attempts=2))
    def fetch() -> str:
        raise client_error("RequestLimitExceeded")

    with pytest.raises(ThrottledError) as info:
        fetch()
    assert info.value.attempts == 2
    assert info.value.code == "RequestLimitExceeded"

"""Retries at the repository boundary: capped exponential backoff, full jitter, a retry budget.

Every DynamoDB request made by a repository runs through a `RetryPolicy`::

    policy = RetryPolicy(max_attempts=5)
    item = policy.call(lambda: table.get_item(Key=key), table="users")

The policy retries only what `errors.is_retryable` says is transient (throttling,
5xx, dropped connections); validation errors, failed conditions and missing tables
propagate unchanged after one call. Three limits stop a retry loop, whichever comes
first:

- ``max_attempts`` calls in total (the first call counts);
- ``max_total_delay`` seconds of sleeping in total;
- the `RetryBudget`, a token bucket shared by every call made with the policy (like
  the AWS SDKs' retry quota). Each retry takes tokens and each success gives some
  back, so under a throttling storm the bucket empties and calls fail fast instead
  of multiplying the load on a table that is already saturated.

When a limit stops the loop, `ThrottledError` is raised ``from`` the last error and
says which limit it was. SDK-level retries are off (see `connection`), so the two
layers do not multiply.

Delays use full jitter (``random() * min(max_delay, base_delay * 2**n)``), which
spreads out clients that were throttled at the same moment. ``sleep`` and
``random`` are injectable, so tests never wait and are deterministic.

Why not tenacity: its engine allocates a retry state and runs its action chain on
every call, including the ones that succeed first time. Here the success path is a
plain ``try``/``return`` (plus a lock-free check of the budget), which matters for a
wrapper around every request; the retry loop itself is a short ``while`` loop, and
one dependency fewer ships with the package.
"""

from __future__ import annotations

import functools
import math
import random as _random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypedDict, TypeVar, Unpack

from portchops_models import errors
from portchops_models.transport import deadline
from portchops_models.transport.drive import awaitable, run_sync

__all__ = ["RetryBudget", "RetryPolicy", "retrying"]

T = TypeVar("T")
P = ParamSpec("P")


class RetryBudget:
    """A thread-safe token bucket that limits retries across calls (the AWS "retry quota").

    A retry takes ``retry_cost`` tokens (``timeout_cost`` when the error carries no
    AWS error code: a dropped connection or a timeout, where the service never
    answered). A success gives back the cost of its last retry, or ``success_refund``
    if it did not retry; the bucket never holds more than ``capacity``. When the
    bucket cannot pay for a retry, the policy gives up at once.

    Share one budget between policies to bound their retries together::

        budget = RetryBudget(capacity=100)
        reads = RetryPolicy(budget=budget)
        writes = RetryPolicy(budget=budget, max_attempts=3)
        budget.try_acquire(budget.retry_cost)  # True while tokens are left
    """

    __slots__ = ("_available", "_lock", "capacity", "retry_cost", "success_refund", "timeout_cost")

    def __init__(
        self,
        *,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        for name, value in (
            ("capacity", capacity),
            ("retry_cost", retry_cost),
            ("timeout_cost", timeout_cost),
            ("success_refund", success_refund),
        ):
            if value < 0:
                raise ValueError(f"RetryBudget {name} must be >= 0, got {value!r}")
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refund = success_refund
        self._available = capacity
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        """Tokens currently in the bucket.

        For example:

            RetryBudget(capacity=10).available  # 10
        """
        return self._available

    def cost_of(self, err: BaseException) -> int:
        """Tokens a retry of ``err`` costs: ``timeout_cost`` if it has no AWS error code.

        For example:

            RetryBudget().cost_of(TimeoutError())  # 10
        """
        return self.retry_cost if errors.error_code(err) is not None else self.timeout_cost

    def try_acquire(self, cost: int) -> bool:
        """Take ``cost`` tokens and return True, or return False (taking none) if too few.

        For example:

            budget = RetryBudget(capacity=5)
            budget.try_acquire(5), budget.try_acquire(5)  # (True, False)
        """
        with self._lock:
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def release_on_success(self, cost: int = 0) -> None:
        """Refund a successful call: ``cost`` (its last retry's cost) or ``success_refund``.

        Pass the cost of the call's last retry when it retried; a call that succeeded
        first time passes nothing. The bucket is refilled to ``capacity`` at most.

        For example:

            budget = RetryBudget(capacity=10)
            budget.try_acquire(5)
            budget.release_on_success(5)  # back to 10
        """
        if self._available >= self.capacity:  # lock-free fast path for the common case
            return
        with self._lock:
            self._available = min(self.capacity, self._available + (cost or self.success_refund))

    def __repr__(self) -> str:
        return f"RetryBudget(available={self._available}, capacity={self.capacity})"


class _Changes(TypedDict, total=False):
    """The fields `RetryPolicy.with_` accepts, so mypy checks their names and types."""

    max_attempts: int
    base_delay: float
    max_delay: float
    max_total_delay: float
    budget: RetryBudget | None
    retry_on: Callable[[BaseException], bool]
    sleep: Callable[[float], None]
    random: Callable[[], float]


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How to retry a transient DynamoDB failure; immutable, safe to share between threads.

    Attributes:
        max_attempts: calls in total, the first included (1 disables retrying).
        base_delay: backoff ceiling of the first retry, seconds; doubled per retry.
        max_delay: the largest backoff ceiling, seconds.
        max_total_delay: cap on the sum of all sleeps of one call, seconds.
        budget: the retry budget (a fresh one per policy by default; ``None`` for none).
        retry_on: which exceptions to retry (default `errors.is_retryable`).
        sleep: how to wait (inject a fake in tests).
        random: a uniform [0, 1) source for the jitter (inject a fake in tests).

    For example:

        policy = RetryPolicy(max_attempts=4, base_delay=0.05)
        policy.call(lambda: client.get_item(TableName="users", Key=key), table="users")
    """

    max_attempts: int = 8
    base_delay: float = 0.025
    max_delay: float = 1.0
    max_total_delay: float = 20.0
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    retry_on: Callable[[BaseException], bool] = errors.is_retryable
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = _random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not self.max_total_delay > 0:
            raise ValueError(f"max_total_delay must be > 0, got {self.max_total_delay!r}")
        if self.base_delay > self.max_delay:
            raise ValueError(
                f"base_delay ({self.base_delay!r}) must be <= max_delay ({self.max_delay!r})"
            )

    def backoff(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (0 = first retry), with full jitter.

        Returns ``random() * min(max_delay, base_delay * 2**attempt)``; never overflows.

        For example:

            RetryPolicy(random=lambda: 0.5).backoff(2)  # 0.5 * min(1.0, 0.025 * 4) == 0.05
        """
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        try:
            ceiling = min(self.max_delay, math.ldexp(self.base_delay, attempt))
        except OverflowError:
            ceiling = self.max_delay
        return self.random() * ceiling

    def call(
        self,
        fn: Callable[[], T],
        *,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
        table: str | None = None,
    ) -> T:
        """Call ``fn()``, retrying transient failures; raise `ThrottledError` on giving up.

        Args:
            fn: the request, with no arguments (use a lambda or `functools.partial`).
            on_retry: called as ``on_retry(error, attempt, delay)`` before each sleep,
                where ``attempt`` is the number (from 1) of the attempt that failed.
            table: the table name, attached to the `ThrottledError`.

        Returns:
            What ``fn`` returned. Exceptions that ``retry_on`` rejects propagate unchanged.

        For example:

            RetryPolicy().call(lambda: client.describe_table(TableName="users"), table="users")
        """
        return run_sync(
            self.run(awaitable(fn), wait=self.blocking_wait, on_retry=on_retry, table=table)
        )

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        wait: Callable[[float], Awaitable[None]],
        on_retry: Callable[[BaseException, int, float], None] | None = None,
        table: str | None = None,
    ) -> T:
        """The one retry loop, as a coroutine: `call` for awaitable requests.

        `wait` is how the caller's runtime waits out a backoff: `blocking_wait` in
        the calling thread (the sync API, `call`), or the async runtime's, which
        awaits the event loop and never blocks it (`portchops_models.ops.aio_runtime`).

        For example:

            item = await policy.run(lambda: session.get_item(key), wait=wait, table="users")
        """
        try:
            result = await fn()
        except Exception as err:
            if not self.retry_on(err):
                raise
            return await self._retry(fn, err, on_retry, table, wait)
        if self.budget is not None:
            self.budget.release_on_success()
        return result

    async def blocking_wait(self, seconds: float) -> None:
        """Wait in the calling thread with this policy's ``sleep`` (the sync API's way)."""
        self.sleep(seconds)

    async def _retry(
        self,
        fn: Callable[[], Awaitable[T]],
        last: BaseException,
        on_retry: Callable[[BaseException, int, float], None] | None,
        table: str | None,
        sleep: Callable[[float], Awaitable[None]],
    ) -> T:
        """The slow path of `run`: ``fn`` already failed once with ``last``."""
        attempts = 1
        slept = 0.0
        while True:
            delay, cost, reason = self._next_delay(attempts, attempts - 1, slept, last, table)
            if reason:
                raise errors.gave_up(last, table=table, attempts=attempts, reason=reason) from last
            if on_retry is not None:
                on_retry(last, attempts, delay)
            await sleep(delay)
            slept += delay
            attempts += 1
            try:
                result = await fn()
            except Exception as err:
                if not self.retry_on(err):
                    raise
                last = err
                continue
            if self.budget is not None:
                self.budget.release_on_success(cost)
            return result

    def _next_delay(
        self,
        attempts: int,
        backoff_step: int,
        slept: float,
        last: BaseException | None,
        table: str | None,
    ) -> tuple[float, int, str]:
        """Whether to try again and after how long: ``(delay, cost, "")``, or a reason to stop.

        The one place that applies the limits (attempts, total delay, budget, and the
        call's deadline) for both single requests (`call`) and batch rounds (`resubmit`).

        Raises:
            CallTimeout: the call's deadline comes before the next attempt could start.
        """
        left = deadline.remaining()
        if left is not None and left <= 0:  # past the deadline: CallTimeout, whatever else
            waited = "connection" if last is not None and errors.never_answered(last) else "answer"
            raise deadline.timeout_error(waited, table=table, attempts=attempts) from last
        if attempts >= self.max_attempts:
            return 0.0, 0, f"attempts exhausted (max_attempts={self.max_attempts})"
        delay = self.backoff(backoff_step)
        if left is not None and left <= delay:
            raise deadline.timeout_error("backoff", table=table, attempts=attempts) from last
        if slept + delay > self.max_total_delay:
            return (
                0.0,
                0,
                (
                    f"total delay cap reached (slept {slept:.3f}s, next {delay:.3f}s, "
                    f"max_total_delay={self.max_total_delay}s)"
                ),
            )
        cost = 0
        budget = self.budget
        if budget is not None:
            cost = budget.retry_cost if last is None else budget.cost_of(last)
            if not budget.try_acquire(cost):
                return 0.0, 0, f"retry budget empty ({budget.available}/{budget.capacity} tokens)"
        return delay, cost, ""

    def resubmit(
        self,
        pending: list[T],
        send_round: Callable[[list[T]], list[T]],
        *,
        table: str | None = None,
        operation: str = "batch",
        on_retry: Callable[[int, float], None] | None = None,
    ) -> None:
        """Send `pending` round after round until nothing comes back unprocessed.

        ``send_round(pending)`` sends one round and returns what DynamoDB left
        unprocessed (``UnprocessedKeys`` / ``UnprocessedItems``). Rounds continue
        while they make progress; ``max_attempts`` rounds in a row that process
        nothing, the total-delay cap or an empty budget end the loop with a
        `ThrottledError` whose ``outstanding`` is the number left.

        For example:

            policy.resubmit(keys, lambda keys: send_chunks(keys), table="users")
        """

        async def send(batch: list[T]) -> list[T]:
            return send_round(batch)

        run_sync(
            self.rounds(
                pending,
                send,
                wait=self.blocking_wait,
                table=table,
                operation=operation,
                on_retry=on_retry,
            )
        )

    async def rounds(
        self,
        pending: list[T],
        send_round: Callable[[list[T]], Awaitable[list[T]]],
        *,
        wait: Callable[[float], Awaitable[None]],
        table: str | None = None,
        operation: str = "batch",
        on_retry: Callable[[int, float], None] | None = None,
    ) -> None:
        """The one resubmission loop, as a coroutine: `resubmit` for awaitable rounds
        (`wait`: the caller's runtime's way to wait out a backoff, as in `run`)."""
        stalled = 0
        rounds = 0
        slept = 0.0
        cost = 0
        while pending:
            leftover = await send_round(pending)
            if not leftover:
                if self.budget is not None and rounds:
                    self.budget.release_on_success(cost)
                return
            stalled = stalled + 1 if len(leftover) >= len(pending) else 0
            rounds += 1
            delay, cost, reason = self._next_delay(max(stalled, 1), stalled, slept, None, table)
            if reason:
                raise errors.ThrottledError(
                    f"{table or 'request'}: {operation} left {len(leftover)} unprocessed after "
                    f"{rounds} round(s), {stalled} in a row without progress: {reason}",
                    table=table,
                    attempts=rounds + 1,
                    outstanding=len(leftover),
                )
            if on_retry is not None:
                on_retry(rounds, delay)
            await wait(delay)
            slept += delay
            pending = leftover

    def with_(self, **changes: Unpack[_Changes]) -> RetryPolicy:
        """A copy with some fields changed (like tenacity's ``retry_with``).

        The copy shares this policy's budget unless ``budget=`` is among the changes.

        For example:

            patient = RetryPolicy().with_(max_attempts=20, max_total_delay=60.0)
        """
        return replace(self, **changes)


def retrying(
    policy: RetryPolicy | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function (or method) so every call goes through ``policy.call``.

    The wrapper keeps the function's signature for type checkers. It does not expose
    the policy as an attribute: a callable Protocol carrying one would stop mypy from
    binding ``self`` on decorated methods. Keep a reference to the policy instead.

    Args:
        policy: the policy to use; a default `RetryPolicy` (with its own budget) if None.

    For example:

        @retrying(RetryPolicy(max_attempts=3))
        def fetch(key: str) -> dict[str, object]:
            return client.get_item(TableName="users", Key={"id": {"S": key}})
    """
    active = RetryPolicy() if policy is None else policy

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return active.call(functools.partial(fn, *args, **kwargs))

        return wrapper

    return decorate

"""``call_timeout`` bounds every async public call as a whole; a sidecar's 503 is retried.

The async twin of tests/transport/test_deadlines.py: the calls of `portchops_models.aio`
(get, save, batch_get, scan, record_attempt, query, `AsyncTransaction.commit`)
run at once on one event loop, through the fault proxy in front of moto (or
against `DroppedSyns`), and each ends with a typed `PortChopsError` within
``call_timeout`` plus half a second against a trickling body, headers sent a
byte at a time, a silent endpoint, dropped SYNs and an exhausted pool; an HTML
503 from an endpoint that has answered as DynamoDB is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from portchops_models import (
    CallTimeout,
    PortChopsError,
    ThrottledError,
    User,
    UserProgress,
    configure,
)
from portchops_models.aio import (
    AsyncTransaction,
    AsyncUserProgressRepository,
    AsyncUserRepository,
)
from portchops_models.errors import NotDynamoDB
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import DroppedSyns, FaultProxy, Faults
from portchops_models.transport import deadline
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry

CALL_TIMEOUT = 1.0
BOUND = CALL_TIMEOUT + 0.5
TRICKLE = 0.2

Outcome = tuple[float, BaseException | None]
Call = Callable[[], Awaitable[object]]


def public_calls() -> dict[str, Call]:
    """One of each async public call under test, by name (fresh repositories, no cache)."""
    users = AsyncUserRepository(cache=None)
    progress = AsyncUserProgressRepository(cache=None)

    async def scan() -> list[User]:
        return [user async for user in users.scan()]

    async def commit() -> None:
        tx = AsyncTransaction()
        tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
        await tx.commit()

    return {
        "get": lambda: users.get("u1"),
        "save": lambda: users.save(User(user_id="u9", email="u9@x.io", name="Nine")),
        "batch_get": lambda: users.batch_get(["u1", "u2", "u3"]),
        "scan": scan,
        "record_attempt": lambda: progress.record_attempt("u1", "l1", 50),
        "query": lambda: progress.query("u1"),
        "AsyncTransaction.commit": commit,
    }


async def timed(call: Call) -> Outcome:
    """How long `call` took and what it raised."""
    start = time.monotonic()
    try:
        await call()
    except BaseException as err:  # every outcome is recorded, then asserted
        return time.monotonic() - start, err
    return time.monotonic() - start, None


async def at_once(calls: dict[str, Call]) -> dict[str, Outcome]:
    """Run every call concurrently on the running loop."""
    outcomes = await asyncio.gather(*(timed(call) for call in calls.values()))
    return dict(zip(calls, outcomes, strict=True))


def assert_bounded(scenario: str, outcomes: dict[str, Outcome]) -> None:
    """Every call raised a `CallTimeout` within `BOUND` seconds (figures printed)."""
    figures = ", ".join(
        f"{name} {took:.2f}s {type(err).__name__}" for name, (took, err) in outcomes.items()
    )
    print(f"\nasync, {scenario} (call_timeout={CALL_TIMEOUT}): {figures}")
    for name, (took, err) in outcomes.items():
        assert isinstance(err, PortChopsError), f"{scenario}: {name} raised {err!r}"
        assert isinstance(err, CallTimeout), f"{scenario}: {name} raised {err!r}"
        assert took <= BOUND, f"{scenario}: {name} took {took:.2f}s"


@pytest.fixture
def seeded(proxy: FaultProxy) -> FaultProxy:
    """The proxy, healthy, with u1 and its progress on l1 stored; ``call_timeout`` short."""

    async def seed() -> None:
        await AsyncUserRepository(cache=None).save(User(user_id="u1", email="u1@x.io", name="One"))
        await AsyncUserProgressRepository(cache=None).record_attempt("u1", "l1", 40)

    asyncio.run(seed())
    configure(current_connection().settings, call_timeout=CALL_TIMEOUT)
    current_connection()  # built now: the first call after configure() builds the client
    proxy.reset_stats()
    return proxy


@pytest.mark.parametrize(
    ("scenario", "faults"),
    [
        ("body trickled", Faults(trickle_body=TRICKLE)),
        ("headers trickled", Faults(trickle_headers=TRICKLE)),
        ("silent", Faults(hang=1.0)),
    ],
)
def test_slow_and_silent_answers_end_every_call_in_time(
    seeded: FaultProxy, scenario: str, faults: Faults
) -> None:
    seeded.faults = faults
    outcomes = asyncio.run(at_once(public_calls()))
    assert_bounded(scenario, outcomes)
    if faults.trickles:
        assert seeded.stats.trickled >= len(outcomes)


def test_dropped_syns_end_every_call_in_time(tables: Settings) -> None:
    with DroppedSyns() as silent:
        configure(tables, endpoint_url=silent.endpoint_url, call_timeout=CALL_TIMEOUT)
        current_connection()
        outcomes = asyncio.run(at_once(public_calls()))
    assert_bounded("SYNs dropped", outcomes)
    for name, (_, err) in outcomes.items():
        assert isinstance(err, CallTimeout)
        assert err.waited_for == "connection", f"{name}: {err}"


def test_an_exhausted_pool_ends_every_call_in_time(seeded: FaultProxy) -> None:
    configure(current_connection().settings, max_pool_connections=2)
    conn = current_connection()
    seeded.faults = Faults(hang=1.0, operations=frozenset({"ListTables"}))

    async def hold() -> None:
        with deadline.bounded(CALL_TIMEOUT + 0.8), pytest.raises(CallTimeout):
            await conn.send_async("ListTables", {}, wait=asyncio.sleep)

    async def scenario() -> dict[str, Outcome]:
        holders = [asyncio.create_task(hold()) for _ in range(2)]
        until = time.monotonic() + 2.0
        while seeded.stats.hung < 2 and time.monotonic() < until:  # both connections busy
            await asyncio.sleep(0.005)
        assert seeded.stats.hung == 2
        outcomes = await at_once(public_calls())
        await asyncio.gather(*holders)
        return outcomes

    outcomes = asyncio.run(scenario())
    assert_bounded("pool exhausted", outcomes)
    for name, (_, err) in outcomes.items():
        assert isinstance(err, CallTimeout)
        assert err.waited_for == "connection", f"{name}: {err}"
    assert seeded.stats.requests == 2  # only the holders' requests reached the proxy


def test_connections_freed_late_leave_no_call_past_its_deadline(seeded: FaultProxy) -> None:
    """Two connections, 0.9 s per answer, 6 calls at once: two calls get a connection
    at 0.9 s, with 0.1 s left; they must end then, not wait 0.9 s more for their
    answer (before, the read timeout was fixed before the wait: they took 1.8 s)."""
    configure(current_connection().settings, max_pool_connections=2)
    current_connection()  # built before the clock starts (see `seeded`)
    seeded.faults = Faults(latency=0.9, operations=frozenset({"GetItem"}))
    users = AsyncUserRepository(cache=None)
    calls: dict[str, Call] = {f"get {n}": (lambda: users.get("u1")) for n in range(6)}
    outcomes = asyncio.run(at_once(calls))
    print(
        "\nasync, pool freed late:",
        ", ".join(f"{took:.2f}s {type(err).__name__}" for took, err in outcomes.values()),
    )
    assert sum(err is None for _, err in outcomes.values()) == 2
    for name, (took, err) in outcomes.items():
        assert err is None or isinstance(err, CallTimeout), f"{name}: {err!r}"
        assert took <= CALL_TIMEOUT + 0.1, f"{name} took {took:.2f}s"


# ------------------------------------------------------------------ an HTML 503 from a sidecar


def test_a_sidecars_503_on_one_request_in_three_fails_no_call(proxy: FaultProxy) -> None:
    users = AsyncUserRepository(cache=None)
    progress = AsyncUserProgressRepository(cache=None)

    async def scenario() -> list[BaseException]:
        await users.save(User(user_id="u0", email="u0@x.io", name="Zero"))
        proxy.reset_stats()
        proxy.faults = Faults(html_error_every=3)
        failures: list[BaseException] = []
        for n in range(60):
            try:
                if n % 3 == 0:
                    await users.save(User(user_id=f"s{n}", email=f"s{n}@x.io", name=f"N{n}"))
                elif n % 3 == 1:
                    await progress.record_attempt("u0", "l1", n)
                else:
                    await users.get("u0")
            except PortChopsError as err:
                failures.append(err)
        return failures

    failures = asyncio.run(scenario())
    stats = proxy.stats
    print(
        f"\nasync, sidecar 503 every 3rd request: {stats.requests} requests, "
        f"{stats.html_errors} HTML 503s, {len(failures)} of 60 calls failed"
    )
    assert failures == []
    assert stats.html_errors >= 20
    proxy.faults = Faults()
    row = asyncio.run(progress.get("u0", "l1", consistent=True))
    assert row.attempts == 20  # each counted once


def test_past_the_budget_a_sidecars_503_is_a_service_error_and_never_answered_is_not_dynamodb(
    proxy: FaultProxy,
) -> None:
    users = AsyncUserRepository(cache=None, retry=fast_retry(max_attempts=3))
    proxy.faults = Faults(html_error_every=1)
    with pytest.raises(NotDynamoDB):  # the endpoint has not answered as DynamoDB yet
        asyncio.run(users.get("u0"))
    proxy.faults = Faults()
    asyncio.run(users.save(User(user_id="u0", email="u0@x.io", name="Zero")))
    proxy.faults = Faults(html_error_every=1)
    with pytest.raises(ThrottledError) as info:
        asyncio.run(users.get("u0"))
    assert not isinstance(info.value, NotDynamoDB)
    assert info.value.attempts == 3
    assert "HTTP 503 without a request id (text/html)" in str(info.value)


# ------------------------------------------------------------------ botocore's own path


def test_botocores_path_is_bounded_and_retries_a_sidecars_503(
    seeded: FaultProxy, monkeypatch: pytest.MonkeyPatch, portchops_engine: str
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", seeded.endpoint_url)
    configure(current_connection().settings, endpoint_url=portchops_engine)
    assert current_connection().transport.fallback is not None
    users = AsyncUserRepository(cache=None)
    assert asyncio.run(users.get("u1")).name == "One"  # answered as DynamoDB, via botocore
    seeded.faults = Faults(html_error_every=3)

    async def gets() -> list[str]:
        return [(await users.get("u1")).name for _ in range(9)]

    assert asyncio.run(gets()) == ["One"] * 9
    assert seeded.stats.html_errors >= 3
    seeded.faults = Faults(trickle_body=TRICKLE)
    outcomes = asyncio.run(at_once(public_calls()))
    assert_bounded("botocore, body trickled", outcomes)

"""``call_timeout`` bounds every public call as a whole, and a sidecar's 503 page is retried.

Every public call (the repositories', a transaction's commit, the models' own
``User.get``) ends with a typed `PortChopsError` within ``call_timeout`` plus
half a second, against: an answer whose body trickles in a byte every 0.2 s
after a ``Content-Length`` of 100,000; one whose headers do; an endpoint that
never completes the TCP handshake (its SYNs dropped); a silent one; and a pool
whose every connection is busy. Each scenario runs the calls at once, one
thread each, through the fault proxy in front of moto (or against
`DroppedSyns`), and measures each with ``time.monotonic``.

An HTML 503 without a request id, from an endpoint that has answered as
DynamoDB, is a server error (retried; past the budget a `ThrottledError` naming
the status); `NotDynamoDB` stays for an endpoint that never answered as
DynamoDB. The same hold on botocore's own path (behind an HTTP proxy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from portchops_models import (
    CallTimeout,
    PortChopsError,
    ThrottledError,
    Transaction,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
    configure,
)
from portchops_models.errors import NotDynamoDB, ServiceError
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import DroppedSyns, FaultProxy, Faults
from portchops_models.transport import deadline
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry

CALL_TIMEOUT = 1.0
#: The correctness bound every call must meet.
BOUND = CALL_TIMEOUT + 0.5
#: Seconds between two bytes of a trickled answer.
TRICKLE = 0.2

Outcome = tuple[float, BaseException | None]


def public_calls() -> dict[str, Callable[[], object]]:
    """One of each public call under test, by name (fresh repositories, no cache)."""
    users = UserRepository(cache=None)
    progress = UserProgressRepository(cache=None)

    def commit() -> None:
        tx = Transaction()
        tx.update(UserProgress, ("u1", "l1"), [UserProgress.attempts.add(1)])
        tx.commit()

    return {
        "get": lambda: users.get("u1"),
        "save": lambda: users.save(User(user_id="u9", email="u9@x.io", name="Nine")),
        "batch_get": lambda: users.batch_get(["u1", "u2", "u3"]),
        "scan": lambda: list(users.scan()),
        "record_attempt": lambda: progress.record_attempt("u1", "l1", 50),
        "query": lambda: progress.query("u1"),
        "Transaction.commit": commit,
        "User.get": lambda: User.get("u1"),
    }


def run_at_once(calls: dict[str, Callable[[], object]]) -> dict[str, Outcome]:
    """Run every call on its own thread, all at once: how long each took, what it raised."""
    outcomes: dict[str, Outcome] = {}
    start_together = threading.Barrier(len(calls))

    def run(name: str, call: Callable[[], object]) -> None:
        start_together.wait()
        start = time.monotonic()
        error: BaseException | None = None
        try:
            call()
        except BaseException as err:  # every outcome is recorded, then asserted
            error = err
        outcomes[name] = (time.monotonic() - start, error)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def assert_bounded(scenario: str, outcomes: dict[str, Outcome]) -> None:
    """Every call raised a `PortChopsError` within `BOUND` seconds (figures printed)."""
    figures = ", ".join(
        f"{name} {took:.2f}s {type(err).__name__}" for name, (took, err) in outcomes.items()
    )
    print(f"\n{scenario} (call_timeout={CALL_TIMEOUT}): {figures}")
    for name, (took, err) in outcomes.items():
        assert isinstance(err, PortChopsError), f"{scenario}: {name} raised {err!r}"
        assert took <= BOUND, f"{scenario}: {name} took {took:.2f}s"


@pytest.fixture
def seeded(proxy: FaultProxy) -> FaultProxy:
    """The proxy, healthy, with u1 and its progress on l1 stored; ``call_timeout`` short."""
    UserRepository(cache=None).save(User(user_id="u1", email="u1@x.io", name="One"))
    UserProgressRepository(cache=None).record_attempt("u1", "l1", 40)
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
    outcomes = run_at_once(public_calls())
    assert_bounded(scenario, outcomes)
    assert all(isinstance(err, CallTimeout) for _, err in outcomes.values())
    if faults.trickles:
        assert seeded.stats.trickled >= len(outcomes)  # every call's answer came slowly


def test_dropped_syns_end_every_call_in_time(tables: Settings) -> None:
    with DroppedSyns() as silent:
        configure(tables, endpoint_url=silent.endpoint_url, call_timeout=CALL_TIMEOUT)
        current_connection()
        outcomes = run_at_once(public_calls())
    assert_bounded("SYNs dropped", outcomes)
    for name, (_, err) in outcomes.items():
        assert isinstance(err, CallTimeout), f"{name}: {err!r}"
        assert err.waited_for == "connection", f"{name}: {err}"


def test_a_connect_timeout_shorter_than_the_call_is_retried_until_the_deadline(
    tables: Settings,
) -> None:
    with DroppedSyns() as silent:
        configure(
            tables, endpoint_url=silent.endpoint_url, call_timeout=CALL_TIMEOUT, connect_timeout=0.3
        )
        start = time.monotonic()
        with pytest.raises(CallTimeout) as info:
            UserRepository(cache=None).get("u1")
        took = time.monotonic() - start
    assert CALL_TIMEOUT - 0.05 <= took <= BOUND
    waited = info.value.waited_for
    if waited == "connection":
        assert info.value.attempts >= 3  # 0.3 s each, then the last one cut to the time left
    elif waited == "backoff":
        # A loaded machine can stretch the connect attempts so that the deadline falls in
        # the backoff before the next one: still retried, still bounded.
        assert info.value.attempts >= 2
    else:
        # Under load the kernel may still complete one handshake on the full accept queue
        # (a SYN-ACK for a request it then never accepts): the call waited for an answer on
        # that connection instead, and the deadline held all the same.
        assert waited == "answer", waited


@pytest.fixture
def busy_pool(seeded: FaultProxy) -> Iterator[FaultProxy]:
    """Both pooled connections held by calls that hang (ListTables), for longer than a call."""
    configure(current_connection().settings, max_pool_connections=2)
    conn = current_connection()
    seeded.faults = Faults(hang=1.0, operations=frozenset({"ListTables"}))
    holding = threading.Barrier(3)

    def hold() -> None:
        with deadline.bounded(CALL_TIMEOUT + 0.8):
            holding.wait()
            with pytest.raises(CallTimeout):
                conn.send("ListTables", {})

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    holding.wait()
    until = time.monotonic() + 2.0
    while seeded.stats.hung < 2 and time.monotonic() < until:  # both requests at the proxy
        time.sleep(0.005)
    assert seeded.stats.hung == 2
    yield seeded
    for thread in holders:
        thread.join()


def test_an_exhausted_pool_ends_every_call_in_time(busy_pool: FaultProxy) -> None:
    outcomes = run_at_once(public_calls())
    assert_bounded("pool exhausted", outcomes)
    for name, (_, err) in outcomes.items():
        assert isinstance(err, CallTimeout), f"{name}: {err!r}"
        assert err.waited_for == "connection", f"{name}: {err}"
    assert busy_pool.stats.hung == 2  # nothing else reached the proxy
    assert busy_pool.stats.requests == 2


def test_connections_freed_late_leave_no_call_past_its_deadline(seeded: FaultProxy) -> None:
    """Two connections, 0.9 s per answer, 6 calls at once: two calls get a connection
    at 0.9 s, with 0.1 s left; they must end then, not wait 0.9 s more for their
    answer (the read gets the time left, not a fresh timeout)."""
    configure(current_connection().settings, max_pool_connections=2)
    current_connection()  # built before the clock starts (see `seeded`)
    seeded.faults = Faults(latency=0.9, operations=frozenset({"GetItem"}))
    users = UserRepository(cache=None)
    calls: dict[str, Callable[[], object]] = {
        f"get {n}": (lambda: users.get("u1")) for n in range(6)
    }
    outcomes = run_at_once(calls)
    print(
        "\npool freed late:",
        ", ".join(f"{took:.2f}s {type(err).__name__}" for took, err in outcomes.values()),
    )
    assert sum(err is None for _, err in outcomes.values()) == 2
    for name, (took, err) in outcomes.items():
        assert err is None or isinstance(err, CallTimeout), f"{name}: {err!r}"
        assert took <= CALL_TIMEOUT + 0.1, f"{name} took {took:.2f}s"


def test_a_trickling_body_that_ends_in_time_is_read_whole(seeded: FaultProxy) -> None:
    """The bound is on the whole answer, not a cut-off: a slow answer within it is read."""
    configure(current_connection().settings, call_timeout=5.0)
    seeded.faults = Faults(trickle_body=0.001, trickle_body_length=400)
    assert UserRepository(cache=None).get("u1").name == "One"
    assert seeded.stats.trickled == 1


# ------------------------------------------------------------------ an HTML 503 from a sidecar


def test_a_sidecars_503_on_one_request_in_three_fails_no_call(proxy: FaultProxy) -> None:
    users = UserRepository(cache=None)
    progress = UserProgressRepository(cache=None)
    users.save(User(user_id="u0", email="u0@x.io", name="Zero"))  # answered as DynamoDB
    proxy.reset_stats()
    proxy.faults = Faults(html_error_every=3)
    failures: list[BaseException] = []
    for n in range(60):
        try:
            if n % 3 == 0:
                users.save(User(user_id=f"s{n}", email=f"s{n}@x.io", name=f"N{n}"))
            elif n % 3 == 1:
                progress.record_attempt("u0", "l1", n)
            else:
                users.get("u0")
        except PortChopsError as err:
            failures.append(err)
    stats = proxy.stats
    print(
        f"\nsidecar 503 every 3rd request: {stats.requests} requests, "
        f"{stats.html_errors} HTML 503s, {len(failures)} of 60 calls failed"
    )
    assert failures == []
    assert stats.html_errors >= 20
    proxy.faults = Faults()
    assert progress.get("u0", "l1", consistent=True).attempts == 20  # each counted once


def test_past_the_budget_a_sidecars_503_is_a_service_error_naming_the_status(
    proxy: FaultProxy,
) -> None:
    users = UserRepository(cache=None, retry=fast_retry(max_attempts=3))
    users.save(User(user_id="u0", email="u0@x.io", name="Zero"))
    proxy.faults = Faults(html_error_every=1)
    with pytest.raises(ThrottledError) as info:
        users.get("u0")
    err = info.value
    assert isinstance(err, ServiceError)
    assert not isinstance(err, NotDynamoDB)
    assert err.attempts == 3
    assert "HTTP 503 without a request id (text/html)" in str(err)
    assert proxy.stats.html_errors == 3


def test_an_endpoint_that_never_answered_as_dynamodb_is_not_dynamodb(proxy: FaultProxy) -> None:
    proxy.faults = Faults(html_error_every=1)  # the very first answer is an HTML 503
    with pytest.raises(NotDynamoDB) as info:
        UserRepository(cache=None).get("u0")
    assert info.value.status == 503
    assert info.value.content_type == "text/html"
    assert proxy.stats.requests == 1  # not retried


def test_the_models_own_methods_retry_a_sidecars_503_too(proxy: FaultProxy) -> None:
    User(user_id="u0", email="u0@x.io", name="Zero").save()
    proxy.faults = Faults(html_error_every=2)
    for _ in range(10):
        assert User.get("u0").name == "Zero"
    assert proxy.stats.html_errors >= 5


# ------------------------------------------------------------------ botocore's own path


@pytest.fixture
def through_botocore(
    seeded: FaultProxy, monkeypatch: pytest.MonkeyPatch, portchops_engine: str
) -> FaultProxy:
    """Calls go through botocore's client: the fault proxy is its HTTP proxy to moto."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", seeded.endpoint_url)
    configure(current_connection().settings, endpoint_url=portchops_engine)
    assert current_connection().transport.fallback is not None
    UserRepository(cache=None).get("u1")  # through the proxy, answered as DynamoDB
    assert seeded.stats.by_operation == {"GetItem": 1}  # (others: botocore's credential probes)
    seeded.reset_stats()
    return seeded


@pytest.mark.parametrize(
    ("scenario", "faults"),
    [
        ("botocore, body trickled", Faults(trickle_body=TRICKLE)),
        ("botocore, headers trickled", Faults(trickle_headers=TRICKLE)),
        ("botocore, silent", Faults(hang=1.0)),
    ],
)
def test_botocores_path_is_bounded_as_a_whole_too(
    through_botocore: FaultProxy, scenario: str, faults: Faults
) -> None:
    through_botocore.faults = faults
    outcomes = run_at_once(public_calls())
    assert_bounded(scenario, outcomes)
    assert all(isinstance(err, CallTimeout) for _, err in outcomes.values())


def test_botocores_path_retries_a_sidecars_503(through_botocore: FaultProxy) -> None:
    users = UserRepository(cache=None)
    through_botocore.faults = Faults(html_error_every=3)
    for _ in range(12):
        assert users.get("u1").name == "One"
    assert through_botocore.stats.html_errors >= 4

"""The embedded engine applies each request atomically, whatever the client's threads do.

moto's threaded server, left alone, runs concurrent requests on unlocked copies of its
store: 8 threads x 10 ``record_attempt`` on one item stored 79 of 80, and a read that
iterated an item while a write changed it failed with an HTML 500 (``NotDynamoDB``).
`LocalEngine` serves moto through `atomic`; these tests drive it with threads released
together by a barrier, through a `LocalEngine` of their own and through the pytest
plugin's session engine (``portchops_engine`` / ``portchops_tables``).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import botocore.session
import pytest
from werkzeug.serving import make_server

from portchops_models import (
    ConditionFailed,
    User,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.settings import Settings
from portchops_models.testing.engine import LocalEngine, atomic
from portchops_models.testing.plugin import configured_tables

THREADS = 8
CALLS = 25


def _together(work: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Run ``work(i)`` in `threads` threads released at once; the errors they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as err:  # collected and asserted on by the caller
            with lock:
                errors.append(err)

    pool = [threading.Thread(target=run, args=(i,), name=f"client-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not [t for t in pool if t.is_alive()], "a client thread did not finish"
    return errors


def _hammer_one_progress_row() -> None:
    """8 threads x 25 record_attempt on one (user_id, lesson_id): all 200 are stored."""
    repo = UserProgressRepository(cache=None)

    def attempts(_: int) -> None:
        for _ in range(CALLS):
            repo.record_attempt("u-hot", "lesson-1", 80)

    errors = _together(attempts)
    assert errors == []
    row = repo.get("u-hot", "lesson-1", consistent=True)
    assert row.attempts == THREADS * CALLS
    assert row.status == "completed"


def _versioned_writes_on_distinct_items() -> None:
    """Each thread creates its own users, then saves each one again and again (versioned)."""
    repo = UserRepository(cache=None)
    per_thread, rounds = 4, 5

    def writes(i: int) -> None:
        mine = [f"u-{i}-{n}" for n in range(per_thread)]
        for user_id in mine:  # a new item (no version): put only if absent
            repo.save(User(user_id=user_id, email=f"{user_id}@example.com", name="v1"))
        for r in range(rounds):
            for user_id in mine:
                user = repo.get(user_id, consistent=True)
                user.name = f"round {r}"
                repo.save(user)  # conditional on the version read

    errors = _together(writes)
    assert errors == []
    stored = [
        repo.get(f"u-{i}-{n}", consistent=True) for i in range(THREADS) for n in range(per_thread)
    ]
    assert {(u.name, u.version) for u in stored} == {(f"round {rounds - 1}", rounds + 1)}


def _one_winner_among_stale_saves() -> None:
    """8 threads save the same version of one item at once: exactly one passes the check."""
    repo = UserRepository(cache=None)
    repo.save(User(user_id="u-contended", email="c@example.com", name="start"))
    copies = [repo.get("u-contended", consistent=True) for _ in range(THREADS)]

    def save(i: int) -> None:
        copies[i].name = f"writer {i}"
        repo.save(copies[i])

    errors = _together(save)
    assert len(errors) == THREADS - 1
    assert all(isinstance(err, ConditionFailed) for err in errors), errors
    stored = repo.get("u-contended", consistent=True)
    assert stored.version == 2
    winners = [i for i in range(THREADS) if copies[i].version == 2]
    assert [stored.name] == [f"writer {i}" for i in winners]


@pytest.fixture(scope="module")
def own_engine() -> Iterator[LocalEngine]:
    """A `LocalEngine` started by this module (not the plugin's session engine)."""
    with LocalEngine() as engine:
        yield engine


@pytest.fixture
def own_tables(own_engine: LocalEngine) -> Iterator[Settings]:
    """User and UserProgress tables on `own_engine`, fresh prefix."""
    with configured_tables(own_engine.endpoint_url) as settings:
        yield settings


# --- through a LocalEngine ------------------------------------------------------------


def test_local_engine_counts_every_concurrent_attempt(own_tables: Settings) -> None:
    _hammer_one_progress_row()


def test_local_engine_keeps_concurrent_versioned_writes_on_distinct_items(
    own_tables: Settings,
) -> None:
    _versioned_writes_on_distinct_items()


def test_local_engine_lets_one_of_many_stale_saves_win(own_tables: Settings) -> None:
    _one_winner_among_stale_saves()


def _client(endpoint_url: str) -> Any:
    """A plain botocore DynamoDB client on `endpoint_url` (no layer in between)."""
    session = botocore.session.get_session()
    return session.create_client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_two_engines_of_one_process_share_the_lock(
    own_engine: LocalEngine, own_tables: Settings
) -> None:
    """moto has one store per process: increments through two engines must not race either.

    Every ``ADD`` answers the count it produced: all 200 answers are distinct and the
    last is 200 only if no two increments ran on the same copy of the item.
    """
    table = own_tables.table_name(User.base_table_name)
    seen: list[int] = []
    with LocalEngine() as second:
        urls = (own_engine.endpoint_url, second.endpoint_url)
        clients = [_client(urls[i % 2]) for i in range(THREADS)]

        def adds(i: int) -> None:
            for _ in range(CALLS):
                answer = clients[i].update_item(
                    TableName=table,
                    Key={"userId": {"S": "counter"}},
                    UpdateExpression="ADD n :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW",
                )
                seen.append(int(answer["Attributes"]["n"]["N"]))

        errors = _together(adds)
        for client in clients:
            client.close()
    assert errors == []
    assert sorted(seen) == list(range(1, THREADS * CALLS + 1))


# --- through the pytest plugin's engine -----------------------------------------------


def test_plugin_engine_counts_every_concurrent_attempt(
    portchops_engine: str, portchops_tables: Settings
) -> None:
    assert portchops_tables.endpoint_url == portchops_engine
    _hammer_one_progress_row()


def test_plugin_engine_keeps_concurrent_versioned_writes_on_distinct_items(
    portchops_tables: Settings,
) -> None:
    _versioned_writes_on_distinct_items()


def test_plugin_engine_lets_one_of_many_stale_saves_win(portchops_tables: Settings) -> None:
    _one_winner_among_stale_saves()


# --- the wrapper itself, on a real werkzeug server -------------------------------------


class _Probe:
    """A WSGI app that records whether the lock was held at every step of its answer."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.held: list[bool] = []
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.held.append(self.lock.locked())
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(environ["wsgi.input"].read(length))
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")  # the legacy write() callable
        return self._stream()

    def _stream(self) -> Iterator[bytes]:
        try:
            for part in (b"one;", b"two;", b"three"):
                self.held.append(self.lock.locked())
                yield part
        finally:
            self.held.append(self.lock.locked())  # close() runs under the lock too


@pytest.fixture
def probe_server() -> Iterator[tuple[_Probe, threading.Lock, int]]:
    """`_Probe` behind `atomic` with a lock of its own, on werkzeug, on a free port."""
    lock = threading.Lock()
    probe = _Probe(lock)
    server = make_server("127.0.0.1", 0, atomic(probe, lock), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield probe, lock, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _post(port: int, body: bytes, **headers: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def test_a_streamed_answer_is_produced_in_full_under_the_lock(
    probe_server: tuple[_Probe, threading.Lock, int],
) -> None:
    probe, lock, port = probe_server
    assert _post(port, b"hello") == b"written;one;two;three"
    assert probe.bodies == [b"hello"]
    assert probe.held == [True] * 5
    assert not lock.locked()


def test_a_chunked_body_is_read_whole(probe_server: tuple[_Probe, threading.Lock, int]) -> None:
    probe, _, port = probe_server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True)
        assert conn.getresponse().read() == b"written;one;two;three"
    finally:
        conn.close()
    assert probe.bodies == [b"abcdef"]


def test_a_slow_client_does_not_hold_the_engine(
    probe_server: tuple[_Probe, threading.Lock, int],
) -> None:
    """A body still on its way is read off the lock: other requests are served meanwhile."""
    probe, _, port = probe_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf-")
        assert _post(port, b"fast") == b"written;one;two;three"  # served while `slow` waits
        slow.sendall(b"done!")
        answer = http.client.HTTPResponse(slow)
        answer.begin()
        assert (answer.status, answer.read()) == (200, b"written;one;two;three")
    assert probe.bodies == [b"fast", b"half-done!"]


def test_configured_tables_deletes_every_table_under_its_prefix(own_engine: LocalEngine) -> None:
    """What the code inside made under the prefix (a stream worker's lease table) goes
    too; tables of other prefixes stay."""
    client = _client(own_engine.endpoint_url)
    key = {
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    client.create_table(TableName="other-prefix-kept", **key)
    with configured_tables(own_engine.endpoint_url) as settings:
        made = settings.table_name("stream-leases")
        client.create_table(TableName=made, **key)
        assert made in client.list_tables()["TableNames"]
    names = client.list_tables()["TableNames"]
    assert [name for name in names if name.startswith(settings.table_prefix)] == []
    assert "other-prefix-kept" in names
    client.delete_table(TableName="other-prefix-kept")

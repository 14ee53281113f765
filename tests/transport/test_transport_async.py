"""The async half of the lean request path: same answers and errors, one session per loop.

Each test runs its own ``asyncio.run`` (a fresh event loop), so sessions are shown to
belong to one loop each and to close when it ends.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from portchops_models import CallTimeout, configure
from portchops_models.settings import Settings
from portchops_models.testing.engine import LocalEngine
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport import Transport, deadline
from portchops_models.transport.aio import AsyncPool
from portchops_models.transport.connection import current_connection
from tests.transport.test_transport import _answer, _Lying, liar  # noqa: F401 (the fixture)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _item(user_id: str) -> dict[str, Any]:
    return {"userId": {"S": user_id}, "b": {"B": b"\x00\xff"}, "n": {"N": "1.5"}}


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _sessions(pool: AsyncPool) -> list[Any]:
    """Each open loop's set of connections."""
    return list(pool._pools.values())


def test_async_answers_are_the_sync_answers(any_tables: Settings) -> None:
    conn = current_connection()
    users = any_tables.table_name("users")
    key = {"TableName": users, "Key": {"userId": {"S": "u1"}}}

    async def main() -> dict[str, Any]:
        await conn.call_async("PutItem", {"TableName": users, "Item": _item("u1")})
        return await conn.call_async("GetItem", key)

    got = run(main())
    assert _strip(got) == _strip(conn.call("GetItem", key))
    assert got["Item"]["b"] == {"B": b"\x00\xff"}
    with pytest.raises(ClientError) as info:
        run(conn.call_async("GetItem", {"TableName": "no-such-table", "Key": key["Key"]}))
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_each_loop_has_its_own_session_closed_when_the_loop_ends(tables: Settings) -> None:
    transport = current_connection().transport
    users = tables.table_name("users")
    seen: list[Any] = []

    async def one() -> None:
        await transport.call_async("GetItem", {"TableName": users, "Key": {"userId": {"S": "x"}}})
        seen.extend(_sessions(transport.aio))

    run(one())
    run(one())
    first, second = seen
    assert first is not second
    assert first.closed  # asyncio.run's shutdown closed each
    assert second.closed
    assert not _sessions(transport.aio)  # and forgot them with their loops


def test_aclose_and_close_from_the_loop(tables: Settings) -> None:
    transport = current_connection().transport
    params = {"TableName": tables.table_name("users"), "Key": {"userId": {"S": "x"}}}

    async def main() -> None:
        await transport.call_async("GetItem", params)
        (session,) = _sessions(transport.aio)
        await transport.aclose()
        assert session.closed
        await transport.call_async("GetItem", params)  # a new session on first use
        (again,) = _sessions(transport.aio)
        assert again is not session
        transport.close()  # e.g. configure() from inside a coroutine: closed on its loop
        for _ in range(100):
            if again.closed:
                break
            await asyncio.sleep(0)
        assert again.closed

    run(main())


def test_a_loop_in_another_thread_keeps_its_own_session(tables: Settings) -> None:
    transport = current_connection().transport
    params = {"TableName": tables.table_name("users"), "Key": {"userId": {"S": "x"}}}
    results: list[dict[str, Any]] = []

    def worker() -> None:
        results.append(run(transport.call_async("GetItem", params)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    run(transport.call_async("GetItem", params))
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert not _sessions(transport.aio)


def test_concurrent_async_calls_stay_within_the_pool(
    tables: Settings, moto_engine: LocalEngine
) -> None:
    users = tables.table_name("users")
    with FaultProxy(upstream=moto_engine.endpoint_url, faults=Faults(latency=0.01)) as proxy:
        configure(tables, endpoint_url=proxy.endpoint_url, max_pool_connections=4)
        conn = current_connection()

        async def main() -> list[dict[str, Any]]:
            keys = [{"TableName": users, "Key": {"userId": {"S": f"u{i}"}}} for i in range(40)]
            return await asyncio.gather(*(conn.call_async("GetItem", k) for k in keys))

        answers = run(main())
        stats = proxy.stats
    assert len(answers) == 40
    assert stats.requests == 40
    assert 2 <= stats.peak_connections <= 4


def test_async_failures_are_botocores_exceptions(proxy: FaultProxy) -> None:
    conn = current_connection()
    key = {"TableName": conn.settings.table_name("users"), "Key": {"userId": {"S": "u1"}}}
    proxy.faults = Faults(drop=1.0)
    with pytest.raises(ConnectionClosedError):
        run(conn.call_async("GetItem", key))
    proxy.faults = Faults(hang=1.0)
    short = Transport(
        endpoint=proxy.endpoint_url,
        region="us-east-1",
        credentials=conn.transport.credentials,
        connect_timeout=1,
        read_timeout=0.2,
        max_connections=1,
    )
    with pytest.raises(ReadTimeoutError):
        run(short.call_async("GetItem", key))
    proxy.faults = Faults()
    assert "Item" not in run(conn.call_async("GetItem", key))


def test_async_refused_and_lying_endpoints(liar: tuple[str, type[_Lying]]) -> None:  # noqa: F811
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EndpointConnectionError):
        run(current_connection().call_async("ListTables", {}))
    url, handler = liar
    body = json.dumps({"TableNames": []}).encode()
    status, headers, _ = _answer(200, body)
    handler.answers.append((status, {**headers, "x-amz-crc32": str(zlib.crc32(body) ^ 1)}, body))
    configure(endpoint_url=url)
    with pytest.raises(ChecksumError):
        run(current_connection().call_async("ListTables", {}))


def test_waiting_for_a_connection_is_bounded_by_the_deadline(proxy: FaultProxy) -> None:
    configure(current_connection().settings, max_pool_connections=1)
    conn = current_connection()
    key = {"TableName": conn.settings.table_name("users"), "Key": {"userId": {"S": "u1"}}}
    proxy.faults = Faults(hang=1.0)

    async def hold() -> None:
        with deadline.bounded(2.0), pytest.raises(ReadTimeoutError):
            await conn.call_async("GetItem", key)

    async def main() -> CallTimeout:
        holder = asyncio.create_task(hold())
        until = time.monotonic() + 2.0
        while proxy.stats.hung < 1 and time.monotonic() < until:  # the one connection is busy
            await asyncio.sleep(0.005)
        assert proxy.stats.hung == 1
        start = time.monotonic()
        with deadline.bounded(0.3), pytest.raises(CallTimeout) as info:
            await conn.call_async("GetItem", key)
        assert time.monotonic() - start < 1.5
        await holder
        return info.value

    error = run(main())
    assert error.waited_for == "connection"


def test_under_a_deadline_an_async_answer_is_read_by_it_as_a_whole(proxy: FaultProxy) -> None:
    conn = current_connection()
    key = {"TableName": conn.settings.table_name("users"), "Key": {"userId": {"S": "u1"}}}
    pool = AsyncPool(proxy.endpoint_url, limit=2, connect_timeout=2, read_timeout=5)
    request = conn.transport.encode("GetItem", key)

    async def timed_out() -> float:
        start = time.monotonic()
        with deadline.bounded(0.5), pytest.raises(ReadTimeoutError):
            await pool.send(request)  # each byte within read_timeout: only the deadline ends it
        return time.monotonic() - start

    for faults in (Faults(trickle_headers=0.05), Faults(trickle_body=0.05)):
        proxy.faults = faults
        assert 0.45 <= run(timed_out()) <= 0.5 + 0.1
    proxy.faults = Faults(trickle_body=0.0005, trickle_body_length=300)

    async def slow_but_in_time() -> tuple[int, bytes]:
        with deadline.bounded(5.0):
            status, _, body = await pool.send(request)
        await pool.aclose()
        return status, body

    status, body = run(slow_but_in_time())
    assert (status, len(body)) == (200, 300)


def test_async_connecting_gets_the_time_left_and_says_so() -> None:
    from portchops_models.testing.faultproxy import DroppedSyns

    with DroppedSyns() as silent:
        configure(endpoint_url=silent.endpoint_url, connect_timeout=10)
        conn = current_connection()

        async def main() -> tuple[float, CallTimeout]:
            start = time.monotonic()
            with deadline.bounded(0.3), pytest.raises(CallTimeout) as info:
                await conn.call_async("ListTables", {})
            return time.monotonic() - start, info.value

        took, error = run(main())
    assert 0.25 <= took <= 0.45
    assert error.waited_for == "connection"

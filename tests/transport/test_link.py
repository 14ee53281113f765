"""`Link`, the async pool's connection: any answer, however its bytes arrive, reads as
the standard library's ``http.client`` reads it whole; anything else fails the exchange
and drops the link.

Each test runs a `Link` on one end of a real socket pair (what it writes goes out on
it); the answer's bytes are handed to the protocol in the pieces a test chooses, as
the event loop hands over what each ``recv`` returned.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import itertools
import socket
from collections.abc import Awaitable, Callable

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st

from portchops_models.transport.assembler import Answer
from portchops_models.transport.http11 import MAX_LINE
from portchops_models.transport.link import Link
from tests.transport.test_http11 import _NAME, _VALUE, chunks

_REQUEST = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"


def _exchange(
    feed: Callable[[Link, socket.socket], Awaitable[None]],
    *,
    method: str = "POST",
    per_read: float = 5.0,
    until_in: float | None = None,
) -> tuple[Answer | BaseException, bool, bytes]:
    """Run one exchange on a Link while `feed` delivers its answer; returns the answer
    (or the error), whether the exchange left the link closed, and what the peer received."""

    async def main() -> tuple[Answer | BaseException, bool, bytes]:
        ours, peer = socket.socketpair()
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(Link, sock=ours)
        until = None if until_in is None else loop.time() + until_in
        task = asyncio.create_task(
            link.exchange(_REQUEST, method=method, url="http://h/", per_read=per_read, until=until)
        )
        await asyncio.sleep(0)  # the request is written
        received = peer.recv(65536)
        await feed(link, peer)
        try:
            outcome: Answer | BaseException = await task
        except (ConnectionClosedError, ReadTimeoutError) as err:
            outcome = err
        closed = link.closed  # as the exchange left it
        link.close()
        peer.close()
        return outcome, closed, received

    return asyncio.run(main())


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _delivered(
    pieces: list[bytes], *, close: bool = False
) -> Callable[[Link, socket.socket], Awaitable[None]]:
    async def feed(link: Link, peer: socket.socket) -> None:
        for piece in pieces:
            link.data_received(piece)
            await asyncio.sleep(0)
        if close:
            peer.shutdown(socket.SHUT_WR)

    return feed


class _Bytes:
    """What ``http.client.HTTPResponse`` reads an answer from: `data`, then the end."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def _stdlib(data: bytes) -> Answer:
    """How ``http.client`` reads the answer in `data`: the independent reading."""
    response = http.client.HTTPResponse(_Bytes(data), method="POST")  # type: ignore[arg-type]
    response.begin()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, response.read(), bool(response.will_close)


def _answer_bytes(status: int, headers: list[tuple[str, str]], body: bytes, ending: str) -> bytes:
    head = [f"HTTP/1.1 {status} Reason"] + [f"{n}: {v}" for n, v in headers]
    return (ending.join(head) + ending + ending).encode("latin-1") + body


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([200, 400, 500, 503]),
    headers=st.dictionaries(_NAME, _VALUE, max_size=8),
    body=st.binary(max_size=2000),
    size=st.integers(min_value=1, max_value=500),
    framing=st.sampled_from(["length", "chunked", "to-close"]),
    ending=st.sampled_from(["\r\n", "\n"]),
    interim=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_answer_in_any_pieces_reads_as_http_client_reads_it_whole(
    status: int,
    headers: dict[str, str],
    body: bytes,
    size: int,
    framing: str,
    ending: str,
    interim: bool,
    cuts: list[int],
) -> None:
    given_headers = list(headers.items())
    if framing == "length":
        given_headers.append(("Content-Length", str(len(body))))
        sent = body
    elif framing == "chunked":
        given_headers.append(("Transfer-Encoding", "chunked"))
        sent = chunks(body, size)
    else:
        sent = body
    data = _answer_bytes(status, given_headers, sent, ending)
    if interim:
        data = f"HTTP/1.1 100 Continue{ending}{ending}".encode() + data
    expected = _stdlib(data)
    outcome, closed, received = _exchange(
        _delivered(_pieces(data, cuts), close=framing == "to-close"), per_read=1.0
    )
    assert received == _REQUEST  # the request went out whole, in one write
    assert outcome == expected
    assert closed == expected[3]  # kept only when the answer lets it be


def test_bytes_past_the_answer_close_the_link() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"
    outcome, closed, _ = _exchange(_delivered([data]))
    assert outcome == (200, {"content-length": "2"}, b"ok", True)
    assert closed


def test_a_head_answer_has_no_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
    outcome, closed, _ = _exchange(_delivered([data]), method="HEAD")
    assert outcome == (200, {"content-length": "4"}, b"", False)
    assert not closed


@pytest.mark.parametrize(
    ("pieces", "cause"),
    [
        ([], http.client.RemoteDisconnected),  # closed before a byte of the answer
        ([b"SSH-2.0-OpenSSH\r\n\r\n"], http.client.BadStatusLine),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], http.client.IncompleteRead),
        (
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"],
            http.client.IncompleteRead,
        ),
        (
            [b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_LINE + 10) + b"\r\n\r\n"],
            http.client.LineTooLong,
        ),
    ],
)
def test_a_broken_or_cut_answer_fails_and_drops_the_link(
    pieces: list[bytes], cause: type[Exception]
) -> None:
    outcome, closed, _ = _exchange(_delivered(pieces, close=True))
    assert isinstance(outcome, ConnectionClosedError)
    assert isinstance(outcome.kwargs["error"], cause)
    assert closed


def test_a_silent_peer_is_a_read_timeout_and_so_is_the_deadline() -> None:
    async def silent(link: Link, peer: socket.socket) -> None:
        return None

    outcome, closed, _ = _exchange(silent, per_read=0.05)
    assert isinstance(outcome, ReadTimeoutError)
    assert "no bytes" in str(outcome.kwargs["error"])
    assert closed

    async def trickle(link: Link, peer: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n":
            link.data_received(bytes([byte]))  # each within per_read: only the deadline ends it
            await asyncio.sleep(0.01)

    outcome, closed, _ = _exchange(trickle, per_read=1.0, until_in=0.1)
    assert isinstance(outcome, ReadTimeoutError)
    assert "deadline" in str(outcome.kwargs["error"])
    assert closed


def test_bytes_while_idle_put_the_link_out_of_use() -> None:
    async def main() -> bool:
        ours, peer = socket.socketpair()
        _, link = await asyncio.get_running_loop().create_connection(Link, sock=ours)
        assert link.usable
        peer.sendall(b"HTTP/1.1 200 OK\r\n\r\n")  # nobody asked
        for _ in range(100):
            if not link.usable:
                break
            await asyncio.sleep(0.001)
        peer.close()
        return link.usable

    assert asyncio.run(main()) is False


def test_a_cancelled_exchange_drops_the_link() -> None:
    async def main() -> Link:
        ours, peer = socket.socketpair()
        _, link = await asyncio.get_running_loop().create_connection(Link, sock=ours)
        task = asyncio.create_task(
            link.exchange(_REQUEST, method="POST", url="http://h/", per_read=5, until=None)
        )
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        peer.close()
        return link

    assert asyncio.run(main()).closed

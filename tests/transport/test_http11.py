"""The hand-made HTTP/1.1 exchange: what it sends, and what it reads of any answer
(`Assembler`, given each answer whole here; `test_link` gives it in pieces)."""

from __future__ import annotations

import http.client

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portchops_models.transport.assembler import Answer, Assembler
from portchops_models.transport.http11 import MAX_HEADERS, MAX_LINE, request_bytes

_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
    lambda n: n not in ("content-length", "transfer-encoding", "connection", "keep-alive")
)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


def answer(
    status: int, headers: list[tuple[str, str]], body: bytes, *, version: str = "1.1"
) -> bytes:
    head = [f"HTTP/{version} {status} Reason Phrase"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def read_answer(data: bytes, method: str) -> Answer:
    """The answer in `data`, whole, then the peer's close if it needs one to end."""
    assembler = Assembler(method)
    return assembler.feed(data) or assembler.finish()


def chunks(body: bytes, size: int) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\nTrailer: x\r\n\r\n"


@given(
    status=st.sampled_from([200, 400, 404, 500, 503]),
    headers=st.dictionaries(_NAME, _VALUE, max_size=12),
    body=st.binary(max_size=3000),
    size=st.integers(min_value=1, max_value=700),
    chunked=st.booleans(),
)
def test_any_answer_reads_back_as_sent(
    status: int, headers: dict[str, str], body: bytes, size: int, chunked: bool
) -> None:
    framing = (
        [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(len(body)))]
    )
    sent = chunks(body, size) if chunked else body
    data = answer(status, [*headers.items(), *framing], sent)
    got_status, got_headers, got_body, close = read_answer(data, "POST")
    assert (got_status, got_body, close) == (status, body, False)
    assert {k: v for k, v in got_headers.items() if k in headers} == {
        k: v.strip() for k, v in headers.items()
    }
    # bytes after the answer leave the stream out of step: the connection must close
    assert read_answer(data + b"NEXT", "POST")[2:] == (body, True)


def test_what_says_the_connection_closes() -> None:
    assert read_answer(
        answer(200, [("Connection", "close"), ("Content-Length", "0")], b""), "POST"
    )[3]
    assert read_answer(answer(200, [("Content-Length", "0")], b"", version="1.0"), "POST")[3]
    kept = answer(200, [("Connection", "keep-alive"), ("Content-Length", "0")], b"", version="1.0")
    assert not read_answer(kept, "POST")[3]
    to_close = read_answer(answer(200, [], b"until the end"), "POST")
    assert to_close[2:] == (b"until the end", True)  # no length: read to the end, then close


def test_continue_is_skipped_and_folded_headers_join() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nX-Same: a\r\nX-Same: b\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    status, headers, body, _ = read_answer(data, "POST")
    assert (status, body) == (200, b"ok")
    assert headers["x-long"] == "one two"
    assert headers["x-same"] == "b"  # the last one, as the pool always kept it
    assert read_answer(answer(204, [], b"junk"), "POST")[2:] == (b"", True)  # no body: junk after
    assert read_answer(answer(200, [("Content-Length", "4")], b"body"), "HEAD")[2] == b""


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", http.client.RemoteDisconnected),
        (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 2000 Huh\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            http.client.IncompleteRead,
        ),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_LINE + 10) + b"\r\n\r\n", http.client.LineTooLong),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
            http.client.HTTPException,
        ),
    ],
)
def test_a_broken_answer_is_http_clients_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_answer(data, "POST")


def test_the_request_is_one_piece_with_the_signed_host() -> None:
    sent = request_bytes("POST", "/", "db.example:8000", {"X-Amz-Target": "T"}, b"{}")
    head, _, body = sent.partition(b"\r\n\r\n")
    assert body == b"{}"
    assert head.split(b"\r\n") == [
        b"POST / HTTP/1.1",
        b"Host: db.example:8000",
        b"X-Amz-Target: T",
        b"Content-Length: 2",
        b"Accept-Encoding: identity",
    ]
    given_host = request_bytes("POST", "/", "ignored", {"Host": "h", "Content-Length": "2"}, b"{}")
    assert given_host.count(b"Host:") == 1
    assert given_host.count(b"Content-Length") == 1

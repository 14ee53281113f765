"""Cursors: round trip, scope, tampering and junk (hypothesis)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portchops_models.dynamo.cursor import decode_cursor, encode_cursor
from portchops_models.errors import InvalidRequest

SCOPE = ("port-chops-user-progress", "query", "", "u1")
keys = st.dictionaries(
    st.sampled_from(["userId", "lessonId", "email", "completedAt"]),
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text(min_size=1, max_size=50)),
        st.builds(lambda n: {"N": str(n)}, st.integers()),
    ),
    min_size=1,
    max_size=4,
)


@given(keys)
def test_round_trip_is_url_safe(key: dict[str, dict[str, str]]) -> None:
    cursor = encode_cursor(key, scope=SCOPE)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, scope=SCOPE) == key


@given(keys, st.text(max_size=20))
def test_a_cursor_is_valid_only_for_its_scope(key: dict[str, dict[str, str]], other: str) -> None:
    cursor = encode_cursor(key, scope=SCOPE)
    if other != "u1":
        with pytest.raises(InvalidRequest):
            decode_cursor(cursor, scope=(*SCOPE[:3], other))


@given(keys, st.data())
def test_any_edit_is_detected(key: dict[str, dict[str, str]], data: st.DataObject) -> None:
    raw = bytearray(base64.urlsafe_b64decode(encode_cursor(key, scope=SCOPE) + "=="))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    edited = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidRequest):
        decode_cursor(edited, scope=SCOPE)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.hex())))
def test_junk_is_rejected_cleanly(junk: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_cursor(junk, scope=SCOPE)


@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_are_rejected_cleanly(junk: bytes) -> None:
    token = base64.urlsafe_b64encode(junk).rstrip(b"=").decode()
    with pytest.raises(InvalidRequest):
        decode_cursor(token, scope=SCOPE)


def test_non_string_cursor_is_rejected() -> None:
    with pytest.raises(InvalidRequest):
        decode_cursor(123, scope=SCOPE)  # type: ignore[arg-type]


def test_a_cursor_is_valid_only_under_its_secret() -> None:
    cursor = encode_cursor({"userId": {"S": "u"}}, scope=SCOPE, secret="one")
    assert decode_cursor(cursor, scope=SCOPE, secret="one") == {"userId": {"S": "u"}}
    for other in ("two", None):
        with pytest.raises(InvalidRequest):
            decode_cursor(cursor, scope=SCOPE, secret=other)

"""Opaque, URL-safe, tamper-evident pagination cursors, scoped to one query.

A cursor carries DynamoDB's ``LastEvaluatedKey`` plus the scope it came from
(table, index, partition key) and an HMAC-SHA256 tag. Decoding checks the tag
and the scope, so an edited cursor or one from another query raises
`InvalidRequest` before anything is sent.

The key for the tag is the ``cursor_secret`` setting (``PORTCHOPS_CURSOR_SECRET``);
without it a random per-process key is used, so cursors then do not survive a
restart or travel between processes: set it for a web service with several
workers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidRequest

__all__ = ["decode_cursor", "encode_cursor"]

_TAG_BYTES = 16
_MAX_CURSOR = 8192
_VALUE_TYPES = frozenset({"S", "N", "B"})
_PROCESS_KEY = secrets.token_bytes(32)


def _tag(body: bytes, secret: str | None) -> bytes:
    key = secret.encode() if secret else _PROCESS_KEY
    return hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(
    last_key: Mapping[str, Any], *, scope: Sequence[str], secret: str | None = None
) -> str:
    """Encode a ``LastEvaluatedKey`` for `scope` as an opaque URL-safe string.

    Args:
        last_key: DynamoDB's ``LastEvaluatedKey``.
        scope: what the cursor is valid for (table, index, partition key...).
        secret: the signing secret; None uses this process's random key.
    """
    body = json.dumps(
        [list(scope), _portable(last_key)], separators=(",", ":"), sort_keys=True
    ).encode()
    return base64.urlsafe_b64encode(_tag(body, secret) + body).rstrip(b"=").decode("ascii")


def decode_cursor(
    cursor: str, *, scope: Sequence[str], secret: str | None = None
) -> dict[str, dict[str, Any]]:
    """Check and decode a cursor made by `encode_cursor` for the same scope and secret.

    Raises:
        InvalidRequest: the cursor is malformed, was edited, or belongs to another query.
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR:
        raise InvalidRequest("invalid cursor: not a cursor returned by this query")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid cursor: not a cursor returned by this query") from None
    tag, body = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, _tag(body, secret)):
        raise InvalidRequest("invalid cursor: it was altered or made by another deployment")
    try:
        cursor_scope, last_key = json.loads(body)
    except (ValueError, TypeError):
        raise InvalidRequest("invalid cursor: unreadable") from None
    if cursor_scope != list(scope):
        raise InvalidRequest("invalid cursor: it belongs to a different query")
    if not _is_key(last_key):
        raise InvalidRequest("invalid cursor: unreadable key")
    return _restored(last_key)


def _portable(key: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A key with binary values base64-encoded, for JSON."""
    out: dict[str, dict[str, str]] = {}
    for name, value in key.items():
        ((kind, data),) = value.items()
        if kind == "B":
            data = base64.b64encode(bytes(data)).decode("ascii")
        out[name] = {kind: data}
    return out


def _restored(key: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """The inverse of `_portable`: binary values back to bytes (as the client sends them)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in key.items():
        ((kind, data),) = value.items()
        if kind == "B":
            try:
                out[name] = {"B": base64.b64decode(data, validate=True)}
            except (binascii.Error, ValueError):
                raise InvalidRequest("invalid cursor: unreadable key") from None
        else:
            out[name] = {kind: data}
    return out


def _is_key(value: object) -> bool:
    if not isinstance(value, dict) or not value or len(value) > 4:
        return False
    for name, attr in value.items():
        if not isinstance(name, str) or not isinstance(attr, dict) or len(attr) != 1:
            return False
        ((kind, data),) = attr.items()
        if kind not in _VALUE_TYPES or not isinstance(data, str):
            return False
    return True

"""The invalidation bus's messages: their keys, their signature and their bounds.

Pure and bounded: `Invalidation.encode` / `Invalidation.decode` turn a message into
bytes and back, `sign` / `verify` put an HMAC-SHA256 over them with the bus secret
(``cache_bus_secret``), and decoding costs a bounded time whatever arrives:

- a message over `MAX_MESSAGE_BYTES` is refused before anything else is read (the
  publisher splits a write's keys over as many messages as that takes:
  `Invalidation.encode_chunks`);
- with a secret, the signature is checked before the JSON is parsed, so a forged
  message costs one HMAC;
- a number key part is refused unless DynamoDB could store it (at most 38 significant
  digits, exponent from -130 to 125), so no message makes the receiver build a
  million-digit integer.

Signed message: ``b"s1." + hex(HMAC-SHA256(secret, body)) + b"." + body``. Unsigned
(no secret set): the body alone. A receiver with a secret drops unsigned messages; a
receiver without one cannot tell forged from genuine and takes both (set the same
secret on every process to authenticate the bus).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Invalidation",
    "chunked",
    "decode_key",
    "encode_key",
    "sign",
    "verify",
]

_VERSION: Final = 1
#: The largest message a receiver reads (a write's keys are split over several): decoding
#: one of this size takes about 3 ms of the subscriber thread.
MAX_MESSAGE_BYTES: Final = 64 * 1024
_SIGNED: Final = b"s1."
_DIGEST_HEX: Final = 64
#: DynamoDB's numbers: 38 significant digits, magnitudes from 1e-130 to below 1e126.
_MAX_DIGITS: Final = 38
_MIN_EXPONENT: Final = -130
_MAX_EXPONENT: Final = 125


def encode_key(key: Hashable) -> list[Any]:
    """A canonical item key as JSON: ``["S", "u1"]``, or a list of such parts for a tuple.

    Parts are tagged like DynamoDB types: ``S`` (str), ``N`` (int, Decimal, float; as text),
    ``B`` (bytes; base64). Raises ``TypeError`` for anything else.
    """
    if isinstance(key, tuple):
        return [_encode_part(part) for part in key]
    return _encode_part(key)


def decode_key(raw: object) -> Hashable:
    """The key `encode_key` encoded (numbers come back as int or Decimal, equal by value).

    Raises ``ValueError`` if ``raw`` is not an encoded key (or holds a number DynamoDB
    could not store).
    """
    if isinstance(raw, list) and raw and isinstance(raw[0], list):
        return tuple(_decode_part(part) for part in raw)
    return _decode_part(raw)


def _encode_part(part: object) -> list[str]:
    if isinstance(part, str):
        return ["S", part]
    if isinstance(part, bytes):
        return ["B", base64.b64encode(part).decode("ascii")]
    if isinstance(part, int | Decimal | float) and not isinstance(part, bool):
        if isinstance(part, Decimal | float) and not Decimal(part).is_finite():
            raise TypeError(f"a key number must be finite, got {part!r}")
        return ["N", str(part)]
    raise TypeError(f"cannot send a key part of type {type(part).__name__}: {part!r}")


def _decode_part(raw: object) -> Hashable:
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) for x in raw)):
        raise ValueError(f"not an encoded key part: {raw!r:.80}")
    kind, text = str(raw[0]), str(raw[1])
    if kind == "S":
        return text
    if kind == "B":
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as err:
            raise ValueError(f"bad binary key part: {text:.80}") from err
    if kind == "N":
        return _number(text)
    raise ValueError(f"unknown key part type {kind!r:.20}")


def _number(text: str) -> int | Decimal:
    """A key number, only within DynamoDB's range (checked before any integer is built)."""
    if len(text) > 64:  # 38 digits, a sign, a point and an exponent fit well within
        raise ValueError(f"bad number key part: {text:.40}...")
    try:
        number = Decimal(text)
    except InvalidOperation as err:
        raise ValueError(f"bad number key part: {text!r}") from err
    if not number.is_finite():
        raise ValueError(f"bad number key part: {text!r}")
    if number:
        _sign, digits, exponent = number.as_tuple()  # no context arithmetic: cannot overflow
        significant = len(digits)
        while significant and digits[significant - 1] == 0:
            significant -= 1
        magnitude = len(digits) + int(exponent) - 1
        digits = digits[:significant]
        if len(digits) > _MAX_DIGITS or not _MIN_EXPONENT <= magnitude <= _MAX_EXPONENT:
            raise ValueError(f"number key part out of DynamoDB's range: {text!r}")
    return int(number) if number == number.to_integral_value() else number


def sign(body: bytes, secret: bytes) -> bytes:
    """`body` with its HMAC-SHA256 under `secret` in front (the signed form)."""
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest().encode("ascii")
    return _SIGNED + digest + b"." + body


def verify(data: bytes, secret: bytes | None) -> bytes:
    """The body of a message as received, checked.

    Raises:
        ValueError: oversized; or, with a `secret`, unsigned or wrongly signed.
    """
    if len(data) > MAX_MESSAGE_BYTES + len(_SIGNED) + _DIGEST_HEX + 1:
        raise ValueError(f"oversized ({len(data):,} bytes)")
    if data.startswith(_SIGNED):
        digest, body = data[len(_SIGNED) : len(_SIGNED) + _DIGEST_HEX], data[len(_SIGNED) + 65 :]
        if secret is None:
            return body  # no secret here: it cannot be checked
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode("ascii")
        if not hmac.compare_digest(digest, expected):
            raise ValueError("bad signature")
        return body
    if secret is not None:
        raise ValueError("unsigned")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"oversized ({len(data):,} bytes)")
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalidation:
    """One message on the bus.

    Attributes:
        origin: the sending process's id (`InvalidationBus.origin`).
        seq: the sender's sequence number (1, 2, ...), for tracing and de-duplication.
        at: the sender's wall clock (epoch seconds) when the write finished or failed;
            used for the write-to-eviction metric only, never to ignore a message.
        table: the full table name; ``None`` with ``clear``.
        keys: the canonical item keys the write touched.
        clear: drop every cache of every table (sent when the sender lost track of keys).
    """

    origin: str
    seq: int
    at: float
    table: str | None
    keys: tuple[Hashable, ...] = ()
    clear: bool = False

    def encode(self) -> bytes:
        """The message as compact JSON bytes."""
        body: dict[str, Any] = {"v": _VERSION, "o": self.origin, "s": self.seq, "at": self.at}
        if self.clear:
            body["clear"] = True
        else:
            body["t"] = self.table
            body["k"] = [encode_key(key) for key in self.keys]
        return json.dumps(body, separators=(",", ":")).encode()

    def encode_chunks(self, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[tuple[bytes, int]]:
        """The message as one or more encoded messages, each at most `max_bytes`, with
        the number of keys each carries (a write of many keys is split, never dropped)."""
        whole = self.encode()
        if len(whole) <= max_bytes or self.clear:
            yield whole, len(self.keys)
            return
        head = len(replace(self, keys=()).encode())
        chunk: list[Hashable] = []
        size = head
        for key in self.keys:
            cost = len(json.dumps(encode_key(key), separators=(",", ":"))) + 1
            if chunk and size + cost > max_bytes:
                yield replace(self, keys=tuple(chunk)).encode(), len(chunk)
                chunk, size = [], head
            chunk.append(key)
            size += cost
        if chunk:
            yield replace(self, keys=tuple(chunk)).encode(), len(chunk)

    @classmethod
    def decode(cls, data: bytes | str) -> Invalidation:
        """Parse a message body; raises ``ValueError`` for anything that is not one."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"oversized ({len(data):,} bytes)")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError("not JSON") from err
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("not a version 1 invalidation")
        origin, seq, at = body.get("o"), body.get("s"), body.get("at")
        if not isinstance(origin, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("bad origin or sequence number")
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise ValueError("bad timestamp")
        if body.get("clear") is True:
            return cls(origin=origin, seq=seq, at=float(at), table=None, clear=True)
        table, keys = body.get("t"), body.get("k")
        if not isinstance(table, str) or not isinstance(keys, list):
            raise ValueError("bad table or keys")
        decoded = tuple(decode_key(key) for key in keys)
        return cls(origin=origin, seq=seq, at=float(at), table=table, keys=decoded)


def chunked(message: Invalidation, secret: bytes | None) -> Sequence[tuple[bytes, int]]:
    """What the publisher sends for `message`: its chunks, each signed with `secret`."""
    parts = list(message.encode_chunks())
    if secret is None:
        return parts
    return [(sign(body, secret), count) for body, count in parts]

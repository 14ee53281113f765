"""Re-encryption after a key rotation: `reencrypt` rewrites items sealed with old keys.

Put the new key first in ``PORTCHOPS_ENCRYPTION_KEYS`` (old ones after it: they still
decrypt), deploy, then run `reencrypt` (from a migration step or a script) until it
reports nothing left under an old key; then the old keys can go.

Each stale item is opened, sealed again under the current key and written back with one
UpdateItem of only what the signature covers (the encrypted attributes, the blind
indexes, the signature and the material description), on condition that its signature
is still the one read: a write in the meantime (which sealed it under the current key
anyway) is never overwritten, and attributes outside the signature (counters, stamps,
the version) are never touched, so concurrent updates of them are not lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConditionFailed, InvalidRequest
from ..models.base import BaseModel
from ..models.encryption import DESCRIPTION_ATTRIBUTE, SIGNATURE_ATTRIBUTE, encryption_of
from ..models.keyring import keyring_of
from ..transport.connection import Connection, current_connection

__all__ = ["Reencrypted", "reencrypt"]


@dataclass(frozen=True)
class Reencrypted:
    """What a `reencrypt` run did.

    Attributes:
        scanned: items read.
        rewritten: items sealed again under the current key.
        current: items already under it.
        changed: stale items whose signature changed before the write back (left as
            they are: whoever wrote them sealed them under the current key; a retry of
            our own write whose answer was lost counts here too).
    """

    scanned: int
    rewritten: int
    current: int
    changed: int


def reencrypt(
    model: type[BaseModel],
    *,
    page_size: int = 100,
    conn: Connection | None = None,
    progress: Callable[[Reencrypted], None] | None = None,
) -> Reencrypted:
    """Seal every item of `model`'s table that an old key sealed under the current key.

    `progress` is called after each page with the counts so far.

    Raises:
        InvalidRequest: `model` encrypts nothing.
        DecryptionFailed: an item does not open (altered, or its key is not configured).
    """
    sealed = encryption_of(model)
    if sealed is None:
        raise InvalidRequest(f"{model.__name__} has no encrypted attributes")
    conn = conn or current_connection()
    current = keyring_of(conn.settings).current
    table = conn.settings.table_name(model.base_table_name)
    counts = {"scanned": 0, "rewritten": 0, "current": 0, "changed": 0}
    start: dict[str, Any] | None = None
    while True:
        params: dict[str, Any] = {"TableName": table, "Limit": page_size}
        if start is not None:
            params["ExclusiveStartKey"] = start
        page = conn.send("Scan", params, table=table)
        for raw in page.get("Items", []):
            counts["scanned"] += 1
            if sealed.key_id(raw) == current:
                counts["current"] += 1
                continue
            fresh = sealed.seal(sealed.open(raw))
            try:
                _write_back(conn, table, sealed.key_names, raw, fresh, sealed.signed)
            except ConditionFailed:
                counts["changed"] += 1
            else:
                counts["rewritten"] += 1
        if progress is not None:
            progress(Reencrypted(**counts))
        start = page.get("LastEvaluatedKey")
        if not start:
            return Reencrypted(**counts)


def _write_back(
    conn: Connection,
    table: str,
    keys: tuple[str, ...],
    old: dict[str, Any],
    new: dict[str, Any],
    signed: frozenset[str] | set[str],
) -> None:
    names = sorted(
        n for n in (*signed, SIGNATURE_ATTRIBUTE, DESCRIPTION_ATTRIBUTE) if n not in keys
    )
    placeholders = {f"#a{i}": n for i, n in enumerate(names)}
    sets = [f"#a{i} = :a{i}" for i, n in enumerate(names) if n in new]
    removes = [f"#a{i}" for i, n in enumerate(names) if n not in new]
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    values = {f":a{i}": new[n] for i, n in enumerate(names) if n in new}
    values[":sig"] = old[SIGNATURE_ATTRIBUTE]
    sig = next(k for k, v in placeholders.items() if v == SIGNATURE_ATTRIBUTE)
    conn.send(
        "UpdateItem",
        {
            "TableName": table,
            "Key": {k: old[k] for k in keys},
            "UpdateExpression": expression,
            "ConditionExpression": f"{sig} = :sig",
            "ExpressionAttributeNames": placeholders,
            "ExpressionAttributeValues": values,
        },
        table=table,
    )

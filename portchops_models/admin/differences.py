"""The differences between a model's table and the live one, as pure functions.

Each ``compare_*`` takes what the models want (CreateTable parameters from
`portchops_models.admin.tables.table_spec`, a TTL attribute name, a stream view)
and what the engine answered (DescribeTable, DescribeTimeToLive,
DescribeContinuousBackups), and returns a list of `Difference`, empty when they
agree. No I/O: `portchops_models.admin.drift.check` asks the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Difference",
    "compare_encryption",
    "compare_pitr",
    "compare_stream",
    "compare_table",
    "compare_ttl",
]

_ON = ("ENABLED", "ENABLING")


@dataclass(frozen=True)
class Difference:
    """One way the deployment differs from the models or the migration history.

    Attributes:
        table: the table concerned (the history table for a step of the history).
        what: what differs, e.g. ``"table"``, ``"hash key"``, ``"index email-index"``,
            ``"index email-index projection"``, ``"ttl"``, ``"pitr"``, ``"step 0004"``.
        expected: what the models or the history want, as text.
        found: what is live, as text.
        message: one line saying what differs and what to do about it.
    """

    table: str
    what: str
    expected: str
    found: str
    message: str


def _types(description: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(d["AttributeName"]): str(d["AttributeType"])
        for d in description.get("AttributeDefinitions") or []
    }


def _key(schema: Sequence[Mapping[str, Any]], role: str, types: Mapping[str, str]) -> str:
    for element in schema:
        if element.get("KeyType") == role:
            name = str(element["AttributeName"])
            return f"{name} ({types.get(name, '?')})"
    return "none"


def _keys(schema: Sequence[Mapping[str, Any]], types: Mapping[str, str]) -> str:
    parts = [f"{_key(schema, role, types)} {role}" for role in ("HASH", "RANGE")]
    return ", ".join(p for p in parts if not p.startswith("none"))


def _projection(projection: Mapping[str, Any]) -> str:
    kind = str(projection.get("ProjectionType", "ALL"))
    extra = sorted(str(a) for a in projection.get("NonKeyAttributes") or [])
    return f"{kind} ({', '.join(extra)})" if extra else kind


def compare_table(expected: Mapping[str, Any], live: Mapping[str, Any]) -> list[Difference]:
    """The differences between a model's CreateTable parameters (`table_spec`) and the
    table's DescribeTable answer: status, keys and their types, billing mode, and the
    global and local indexes (missing, extra, keys, projection, status)."""
    table = str(expected["TableName"])
    found: list[Difference] = []
    status = str(live.get("TableStatus", "ACTIVE"))
    if status != "ACTIVE":
        found.append(Difference(table, "status", "ACTIVE", status, f"{table}: table is {status}"))
    want_types, have_types = _types(expected), _types(live)
    for role, label in (("HASH", "hash key"), ("RANGE", "range key")):
        want = _key(expected["KeySchema"], role, want_types)
        have = _key(live.get("KeySchema") or [], role, have_types)
        if want != have:
            message = (
                f"{table}: the {label} is {have}, the model's is {want} (a key cannot change "
                "in place: create a new table and copy the items over)"
            )
            found.append(Difference(table, label, want, have, message))
    billing = str((live.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"))
    if "BillingMode" in expected and billing != expected["BillingMode"]:
        message = f"{table}: billing mode is {billing}, the models create {expected['BillingMode']}"
        found.append(Difference(table, "billing", str(expected["BillingMode"]), billing, message))
    for kind, field in (("global", "GlobalSecondaryIndexes"), ("local", "LocalSecondaryIndexes")):
        pair = (expected.get(field) or [], live.get(field) or [])
        found += _compare_indexes(table, kind, pair, (want_types, have_types))
    return found


def _compare_indexes(
    table: str,
    kind: str,
    indexes: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]],
    types: tuple[Mapping[str, str], Mapping[str, str]],
) -> list[Difference]:
    wanted = {str(i["IndexName"]): i for i in indexes[0]}
    have = {str(i["IndexName"]): i for i in indexes[1]}
    found: list[Difference] = []
    for name, spec in wanted.items():
        what = f"index {name}"
        live = have.get(name)
        if live is None:
            hint = (
                "a step adds it with ctx.add_index"
                if kind == "global"
                else "a local index is made only with its table"
            )
            message = f"{table}: {kind} index {name} is missing (the model declares it; {hint})"
            found.append(Difference(table, what, "present", "missing", message))
            continue
        want_keys, have_keys = (
            _keys(spec["KeySchema"], types[0]),
            _keys(live["KeySchema"], types[1]),
        )
        if want_keys != have_keys:
            message = f"{table}: index {name} is keyed {have_keys}, the model's by {want_keys}"
            found.append(Difference(table, f"{what} keys", want_keys, have_keys, message))
        want, got = (
            _projection(spec.get("Projection") or {}),
            _projection(live.get("Projection") or {}),
        )
        if want != got:
            message = (
                f"{table}: index {name} projects {got}, the model {want} (a projection "
                "cannot change in place: drop the index and add it again)"
            )
            found.append(Difference(table, f"{what} projection", want, got, message))
        status = str(live.get("IndexStatus", "ACTIVE"))
        if status != "ACTIVE":
            message = f"{table}: index {name} is {status}, not ACTIVE yet"
            found.append(Difference(table, f"{what} status", "ACTIVE", status, message))
    for name in sorted(set(have) - set(wanted)):
        message = f"{table}: {kind} index {name} is on the table but in no model"
        found.append(Difference(table, f"index {name}", "absent", "present", message))
    return found


def compare_encryption(expected: Mapping[str, Any], live: Mapping[str, Any]) -> list[Difference]:
    """Encryption at rest: the spec's ``SSESpecification`` against the live ``SSEDescription``."""
    if not (expected.get("SSESpecification") or {}).get("Enabled"):
        return []
    table = str(expected["TableName"])
    status = (live.get("SSEDescription") or {}).get("Status")
    if status in ("ENABLED", "ENABLING", "UPDATING"):
        return []
    found = f"SSE {status}" if status else "no SSEDescription (an AWS owned key)"
    message = (
        f"{table}: encryption at rest is {found}, the models create tables with SSE (KMS) "
        "on: UpdateTable with SSESpecification Enabled turns it on"
    )
    return [Difference(table, "encryption", "SSE ENABLED", found, message)]


def compare_stream(table: str, view: str | None, live: Mapping[str, Any]) -> list[Difference]:
    """The stream a model declares (``Meta.stream_view_type``; None: no opinion) against
    the DescribeTable answer's ``StreamSpecification``."""
    if view is None:
        return []
    spec = live.get("StreamSpecification") or {}
    found = str(spec.get("StreamViewType")) if spec.get("StreamEnabled") else "off"
    if found == view:
        return []
    message = f"{table}: its stream is {found}, the model declares {view}" + (
        " (turn it on with enable_stream)" if found == "off" else ""
    )
    return [Difference(table, "stream", view, found, message)]


def compare_ttl(table: str, attribute: str | None, live: Mapping[str, Any]) -> list[Difference]:
    """The model's TTL attribute (None: it has none) against a DescribeTimeToLive
    answer's ``TimeToLiveDescription``."""
    status = str(live.get("TimeToLiveStatus", "DISABLED"))
    on = live.get("AttributeName") if status in _ON else None
    if on == attribute:
        return []
    want = f"on {attribute}" if attribute else "off"
    found = f"on {on}" if on else status.lower()
    if attribute is None:
        message = f"{table}: TTL deletes items by {on}, but the models have no TTL attribute"
    else:
        message = (
            f"{table}: TTL is {found}, the model expires items by {attribute} "
            "(a step turns it on with ctx.enable_ttl)"
        )
    return [Difference(table, "ttl", want, found, message)]


def compare_pitr(table: str, live: Mapping[str, Any]) -> list[Difference]:
    """Point-in-time recovery (the models create tables with it on) against a
    DescribeContinuousBackups answer's ``ContinuousBackupsDescription``."""
    pitr = live.get("PointInTimeRecoveryDescription") or {}
    status = str(pitr.get("PointInTimeRecoveryStatus", "DISABLED"))
    if status in _ON:
        return []
    message = (
        f"{table}: point-in-time recovery is {status.lower()}, the models create tables "
        "with it on (enable_pitr turns it on)"
    )
    return [Difference(table, "pitr", "ENABLED", status, message)]

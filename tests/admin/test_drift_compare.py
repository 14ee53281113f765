"""The drift check's pure comparisons, on hand-written DescribeTable answers (no engine)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portchops_models.admin.drift import (
    Difference,
    compare_encryption,
    compare_pitr,
    compare_stream,
    compare_table,
    compare_ttl,
    history_drift,
    missing_table,
)
from portchops_models.admin.tables import table_spec
from portchops_models.models import User, UserProgress


def described(spec: dict[str, Any]) -> dict[str, Any]:
    """The DescribeTable answer DynamoDB gives for a table created from `spec`."""
    live = copy.deepcopy(spec)
    live.pop("BillingMode", None)
    live.pop("SSESpecification", None)
    live["TableStatus"] = "ACTIVE"
    live["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
    live["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS"}
    for index in live.get("GlobalSecondaryIndexes", []):
        index["IndexStatus"] = "ACTIVE"
    return live


def progress() -> tuple[dict[str, Any], dict[str, Any]]:
    spec = table_spec(UserProgress, table_name="t-progress")
    return spec, described(spec)


def test_a_matching_table_has_no_difference() -> None:
    for model in (User, UserProgress):
        spec = table_spec(model, table_name="t")
        assert compare_table(spec, described(spec)) == []
        assert compare_encryption(spec, described(spec)) == []


def test_a_missing_index_is_named() -> None:
    spec, live = progress()
    live["GlobalSecondaryIndexes"] = []

    [difference] = compare_table(spec, live)

    assert difference == Difference(
        "t-progress",
        "index completed-index",
        "present",
        "missing",
        difference.message,
    )
    assert "global index completed-index is missing" in difference.message
    assert "ctx.add_index" in difference.message


def test_projection_type_mismatch() -> None:
    spec, live = progress()
    live["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}

    [difference] = compare_table(spec, live)

    assert (difference.what, difference.expected, difference.found) == (
        "index completed-index projection",
        "ALL",
        "KEYS_ONLY",
    )
    assert "cannot change in place" in difference.message


def test_non_key_attribute_mismatch_and_order() -> None:
    spec, live = progress()
    include = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["score", "status"]}
    spec["GlobalSecondaryIndexes"][0]["Projection"] = include
    live["GlobalSecondaryIndexes"][0]["Projection"] = {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["status", "score"],  # the order does not matter
    }
    assert compare_table(spec, live) == []

    live["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"] = ["status"]
    [difference] = compare_table(spec, live)
    assert (difference.expected, difference.found) == (
        "INCLUDE (score, status)",
        "INCLUDE (status)",
    )


def test_key_type_mismatch() -> None:
    spec, live = progress()
    live["AttributeDefinitions"] = [
        {"AttributeName": "userId", "AttributeType": "N"} if d["AttributeName"] == "userId" else d
        for d in live["AttributeDefinitions"]
    ]

    found = {d.what: d for d in compare_table(spec, live)}

    assert found["hash key"].expected == "userId (S)"
    assert found["hash key"].found == "userId (N)"
    assert "a key cannot change in place" in found["hash key"].message
    # the index on userId is keyed by the live type too
    assert found["index completed-index keys"].found == "userId (N) HASH, completedAt (S) RANGE"


def test_missing_range_key_extra_index_status_and_billing() -> None:
    spec, live = progress()
    live["KeySchema"] = [k for k in live["KeySchema"] if k["KeyType"] == "HASH"]
    live["GlobalSecondaryIndexes"].append(
        {
            "IndexName": "by-score",
            "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "IndexStatus": "ACTIVE",
        }
    )
    live["GlobalSecondaryIndexes"][0]["IndexStatus"] = "CREATING"
    live["BillingModeSummary"] = {"BillingMode": "PROVISIONED"}

    found = {d.what: (d.expected, d.found) for d in compare_table(spec, live)}

    assert found == {
        "range key": ("lessonId (S)", "none"),
        "billing": ("PAY_PER_REQUEST", "PROVISIONED"),
        "index completed-index status": ("ACTIVE", "CREATING"),
        "index by-score": ("absent", "present"),
    }


def test_local_index_missing() -> None:
    spec, live = progress()
    lsi = {
        "IndexName": "by-status",
        "KeySchema": [
            {"AttributeName": "userId", "KeyType": "HASH"},
            {"AttributeName": "status", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    spec["LocalSecondaryIndexes"] = [lsi]

    [difference] = compare_table(spec, live)

    assert difference.what == "index by-status"
    assert "local index by-status is missing" in difference.message


def test_encryption_stream_ttl_pitr() -> None:
    spec, live = progress()
    del live["SSEDescription"]
    [sse] = compare_encryption(spec, live)
    assert sse.found == "no SSEDescription (an AWS owned key)"

    assert compare_stream("t", None, live) == []  # the model says nothing about streams
    [stream] = compare_stream("t", "NEW_IMAGE", live)
    assert (stream.expected, stream.found) == ("NEW_IMAGE", "off")
    live["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    assert compare_stream("t", "NEW_IMAGE", live)[0].found == "KEYS_ONLY"
    assert compare_stream("t", "KEYS_ONLY", live) == []

    assert compare_ttl("t", "ttl", {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}) == []
    [off] = compare_ttl("t", "ttl", {"TimeToLiveStatus": "DISABLED"})
    assert (off.what, off.expected, off.found) == ("ttl", "on ttl", "disabled")
    [other] = compare_ttl("t", "ttl", {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"})
    assert other.found == "on exp"
    [stray] = compare_ttl("t", None, {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"})
    assert "the models have no TTL attribute" in stray.message

    on = {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}}
    assert compare_pitr("t", on) == []
    [pitr] = compare_pitr("t", {"ContinuousBackupsStatus": "ENABLED"})
    assert (pitr.what, pitr.found) == ("pitr", "DISABLED")


@dataclass(frozen=True)
class Step:
    id: str
    state: str
    description: str = "A step."
    error: str | None = None
    problem: str | None = None


def test_history_names_every_step_not_cleanly_applied() -> None:
    steps = [
        Step("0001", "applied"),
        Step("0002", "applied", problem="0002_x.py was edited after it was applied"),
        Step("0003", "missing"),
        Step("0004", "failed", error="boom"),
        Step("0005", "running"),
        Step("0006", "pending"),
    ]

    found = history_drift(steps, table="t-schema-migrations", folder="migrations", up="up!")

    assert [(d.what, d.found) for d in found] == [
        ("step 0002", "applied"),
        ("step 0003", "missing"),
        ("step 0004", "failed"),
        ("step 0005", "running"),
        ("step 0006", "pending"),
    ]
    assert all(d.table == "t-schema-migrations" for d in found)
    assert "edited" in found[0].message
    assert "boom" in found[2].message
    assert found[4].message == 'step 0006 "A step" of migrations is pending: run `up!`'


def test_a_missing_table_says_what_to_do_given_the_history() -> None:
    applied = [Step("0001", "applied"), Step("0002", "applied")]
    dropped = missing_table("t-users", [User], applied, folder="migrations")
    assert (dropped.what, dropped.expected, dropped.found) == ("table", "exists", "missing")
    assert "history records 2 step(s) of migrations applied (last 0002)" in dropped.message
    assert "restore it from a backup" in dropped.message

    pending = missing_table("t-users", [User], [*applied, Step("0003", "pending")], folder="m")
    assert "not applied (0003): run `portchops migrate up`" in pending.message

    nothing = missing_table("t-users", [User], [], folder="m")
    assert "add a step that creates it" in nothing.message


names = st.sampled_from(["a", "b", "c", "d", "e", "f"])
types = st.sampled_from(["S", "N", "B"])
projections = st.one_of(
    st.sampled_from([{"ProjectionType": "ALL"}, {"ProjectionType": "KEYS_ONLY"}]),
    st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=3, unique=True).map(
        lambda a: {"ProjectionType": "INCLUDE", "NonKeyAttributes": a}
    ),
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """CreateTable parameters: keys of any type, up to three global indexes."""
    attributes = draw(st.dictionaries(names, types, min_size=2, max_size=6))
    order = list(attributes)
    hash_key = draw(st.sampled_from(order))
    key = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if draw(st.booleans()):
        key.append({"AttributeName": draw(st.sampled_from(order)), "KeyType": "RANGE"})
    indexes = []
    for number in range(draw(st.integers(0, 3))):
        index_key = [{"AttributeName": draw(st.sampled_from(order)), "KeyType": "HASH"}]
        indexes.append(
            {"IndexName": f"i{number}", "KeySchema": index_key, "Projection": draw(projections)}
        )
    spec: dict[str, Any] = {
        "TableName": "t",
        "KeySchema": key,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in attributes.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if indexes:
        spec["GlobalSecondaryIndexes"] = indexes
    return spec


@given(specs())
def test_any_table_as_created_matches(spec: dict[str, Any]) -> None:
    live = described(spec)
    for index in live.get("GlobalSecondaryIndexes", []):
        index["Projection"].get("NonKeyAttributes", []).reverse()
    assert compare_table(spec, live) == []


@given(specs(), st.data())
def test_any_dropped_index_is_the_one_difference(spec: dict[str, Any], data: st.DataObject) -> None:
    live = described(spec)
    indexes = live.get("GlobalSecondaryIndexes", [])
    if not indexes:
        return
    dropped = indexes.pop(data.draw(st.integers(0, len(indexes) - 1)))

    [difference] = compare_table(spec, live)

    assert (difference.what, difference.found) == (f"index {dropped['IndexName']}", "missing")


@given(specs(), st.data())
def test_any_key_type_change_is_named(spec: dict[str, Any], data: st.DataObject) -> None:
    live = described(spec)
    hash_key = spec["KeySchema"][0]["AttributeName"]
    definition = next(d for d in live["AttributeDefinitions"] if d["AttributeName"] == hash_key)
    other = data.draw(st.sampled_from(sorted({"S", "N", "B"} - {definition["AttributeType"]})))
    definition["AttributeType"] = other

    found = {d.what: d for d in compare_table(spec, live)}

    assert found["hash key"].found == f"{hash_key} ({other})"
    assert set(found) <= {"hash key", "range key"} | {
        f"index {i['IndexName']} keys" for i in spec.get("GlobalSecondaryIndexes", [])
    }

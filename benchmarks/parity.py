"""Check 0: the fast read paths return exactly what botocore and PynamoDB return.

The repositories parse successful read answers themselves (one ``json.loads``
instead of botocore's shape walk) and build models without ``from_raw_data``'s
overhead. Before any timing, this check reads the same items both ways and compares:

* raw answers of GetItem, BatchGetItem, Query and Scan, parsed by botocore and by the
  repository's parser, over an item that holds every DynamoDB type (B, BS, SS, NS, M
  and L nested, BOOL, NULL);
* ``UserRepository`` / ``UserProgressRepository`` objects against plain PynamoDB's
  (``get``, ``batch_get``, ``query``), attribute by attribute.

Target: no difference.
"""

from __future__ import annotations

import time
from typing import Any

from portchops_models import User, UserProgress, UserProgressRepository, UserRepository
from portchops_models.metrics import Metrics

from .common import (
    PROGRESS_TABLE,
    USERS_TABLE,
    Column,
    ScenarioResult,
    Target,
    plain_models,
    raw_client,
    use_layer,
)
from .context import Bench

EVERY_TYPE_ID = "parity-every-type"
PARTITION = "parity-user"


def _every_type_item() -> dict[str, Any]:
    item: dict[str, Any] = User(user_id=EVERY_TYPE_ID, email="p@example.com", name="P").serialize()
    item.update(
        {
            "version": {"N": "3"},
            "blob": {"B": b"\x00\x01binary\xff"},
            "blobs": {"BS": [b"a", b"\xfe\xff"]},
            "strings": {"SS": ["a", "b"]},
            "numbers": {"NS": ["1", "2.5", "-3e2"]},
            "map": {
                "M": {
                    "inner": {"B": b"zz"},
                    "list": {"L": [{"B": b"q"}, {"S": "s"}, {"M": {"deep": {"BS": [b"1"]}}}]},
                    "flag": {"BOOL": True},
                }
            },
            "flag": {"BOOL": False},
            "nothing": {"NULL": True},
        }
    )
    return item


def _normalized(response: dict[str, Any]) -> dict[str, Any]:
    """A response without its metadata, batch results in key order (engines do not keep it)."""
    out = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    for items in out.get("Responses", {}).values():
        items.sort(key=lambda item: repr(sorted(item.items())))
    return out


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    use_layer(bench.engine_url)
    client = raw_client(bench.engine_url)
    client.put_item(TableName=USERS_TABLE, Item=_every_type_item())
    users = UserRepository(cache=None, metrics=Metrics())
    progress = UserProgressRepository(cache=None, metrics=Metrics())
    progress.batch_save(
        UserProgress(user_id=PARTITION, lesson_id=f"l-{i:03d}", score=i * 1.5, attempts=i)
        for i in range(50)
    )
    conn = users._bind().conn  # the shared connection, with the repository's parser hooked in
    plain_user, plain_progress = plain_models(bench.engine_url)
    rows: list[dict[str, Any]] = []

    def check(name: str, compared: int, differences: list[str]) -> None:
        rows.append(
            {
                "contender": name,
                "compared": compared,
                "differences": len(differences),
                "first": differences[0] if differences else "",
            }
        )

    requests = {
        "GetItem": {"TableName": USERS_TABLE, "Key": {"userId": {"S": EVERY_TYPE_ID}}},
        "BatchGetItem": {
            "RequestItems": {
                USERS_TABLE: {
                    "Keys": [{"userId": {"S": k}} for k in (EVERY_TYPE_ID, *bench.user_ids[:99])]
                }
            },
            "ReturnConsumedCapacity": "TOTAL",
        },
        "Query": {
            "TableName": USERS_TABLE,
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": EVERY_TYPE_ID}},
        },
        "Scan": {
            "TableName": USERS_TABLE,
            "FilterExpression": "userId = :u OR begins_with(userId, :p)",
            "ExpressionAttributeValues": {":u": {"S": EVERY_TYPE_ID}, ":p": {"S": "u-0000"}},
            "ReturnConsumedCapacity": "TOTAL",
        },
        "Query (a page of 20)": {
            "TableName": PROGRESS_TABLE,
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": PARTITION}},
            "Limit": 20,
        },
    }
    for label, params in requests.items():
        operation = label.split(" ")[0]
        by_botocore = _normalized(conn.call(operation, dict(params)))
        by_layer = _normalized(conn.read(operation, dict(params)))
        differences = [] if by_botocore == by_layer else [f"{label} answers differ"]
        check(f"raw {label} answer", 1, differences)

    def compare(name: str, ours: list[Any], theirs: list[Any]) -> None:
        differences = [
            f"{a!r} != {b!r}"
            for a, b in zip(ours, theirs, strict=False)
            if a.attribute_values != b.attribute_values
        ]
        if len(ours) != len(theirs):
            differences.insert(0, f"{len(ours)} items against {len(theirs)}")
        check(name, len(theirs), differences)

    keys = [EVERY_TYPE_ID, *bench.user_ids[:199]]
    compare("User get", [users.get(k) for k in keys[:50]], [plain_user.get(k) for k in keys[:50]])
    by_id = {u.user_id: u for u in plain_user.batch_get(keys)}
    compare("User batch_get", users.batch_get(keys), [by_id[k] for k in keys])
    compare(
        "UserProgress query",
        list(progress.iter_query(PARTITION)),
        list(plain_progress.query(PARTITION)),
    )
    total = sum(r["differences"] for r in rows)
    return ScenarioResult(
        key="parity",
        title="0. Parity: the fast read paths return what botocore and PynamoDB return",
        setup={"checks": len(rows)},
        columns=[
            Column("contender", "check", "{}"),
            Column("compared", "compared", "{:,}"),
            Column("differences", "differences", "{:,}"),
            Column("first", "first difference", "{}"),
        ],
        rows=rows,
        targets=[
            Target("parity: differences", total, 0, "<=", unit="", floor="botocore and PynamoDB")
        ],
        notes=[
            "Raw answers parsed by botocore vs by the repository (ResponseMetadata aside); "
            "objects built by plain PynamoDB vs by the repositories, attribute by attribute."
        ],
        seconds=time.perf_counter() - started,
    )

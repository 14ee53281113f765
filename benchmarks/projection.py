"""Scenario 4: bytes on the wire for a projection versus full items.

100 users each carry a large attribute (``bio``, 8 KiB) that a list view does not
need. The proxy counts the response bytes it sends to the client for each way of
reading them:

* full items: ``UserRepository.get`` / ``batch_get``;
* ``UserSummary`` (``user_id``, ``email``, ``name``): ``get(..., projection=UserSummary)``
  / ``batch_get(..., projection=UserSummary)``;
* references: raw botocore with a hand-written ProjectionExpression, and plain
  PynamoDB ``batch_get(attributes_to_get=...)``.

Target: the projection costs no more bytes than the hand-written ProjectionExpression
(within 5%: the layer also asks for ConsumedCapacity, for its metrics).
"""

from __future__ import annotations

import time
from typing import Any

from portchops_models import Projection, User, UserRepository
from portchops_models.metrics import Metrics

from .common import (
    USERS_TABLE,
    Column,
    RemoteProxy,
    ScenarioResult,
    Target,
    plain_models,
    raw_client,
    use_layer,
)
from .context import Bench

BIO_BYTES = 8 * 1024


class UserSummary(Projection[User]):
    """What a list of users shows."""

    user_id: str
    email: str
    name: str


def _seed(bench: Bench, ids: list[str]) -> None:
    client = raw_client(bench.engine_url)
    bio = "x" * BIO_BYTES
    for user_id in ids:
        item = User(user_id=user_id, email=f"{user_id}@example.com", name=f"Name {user_id}")
        raw: dict[str, Any] = item.serialize()
        raw["version"] = {"N": "1"}
        raw["bio"] = {"S": bio}
        client.put_item(TableName=USERS_TABLE, Item=raw)


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    n = bench.scale.projection_items
    ids = [f"p-{i:05d}" for i in range(n)]
    _seed(bench, ids)
    with RemoteProxy(bench.engine_url, seed=4) as proxy:
        endpoint = proxy.endpoint_url
        use_layer(endpoint)
        users = UserRepository(cache=None, metrics=Metrics())
        client = raw_client(endpoint)
        plain_user, _ = plain_models(endpoint)

        def raw_projected() -> None:
            for i in range(0, n, 100):
                keys = [{"userId": {"S": k}} for k in ids[i : i + 100]]
                request = {
                    USERS_TABLE: {
                        "Keys": keys,
                        "ProjectionExpression": "userId, email, #n",
                        "ExpressionAttributeNames": {"#n": "name"},
                    }
                }
                while request:
                    response = client.batch_get_item(RequestItems=request)
                    request = response.get("UnprocessedKeys") or {}

        ways: dict[str, Any] = {
            "get, full items": lambda: [users.get(k) for k in ids],
            "get, UserSummary": lambda: [users.get(k, projection=UserSummary) for k in ids],
            "batch_get, full items": lambda: users.batch_get(ids),
            "batch_get, UserSummary": lambda: users.batch_get(ids, projection=UserSummary),
            "botocore, hand-written ProjectionExpression": raw_projected,
            "PynamoDB batch_get(attributes_to_get=...)": lambda: list(
                plain_user.batch_get(ids, attributes_to_get=["userId", "email", "name"])
            ),
        }
        measured: dict[str, tuple[int, int]] = {}
        for name, fn in ways.items():
            proxy.reset_stats()
            fn()
            stats = proxy.stats
            measured[name] = (stats.bytes_to_client, stats.requests)
        sample = users.get(ids[0], projection=UserSummary)

    full_batch = measured["batch_get, full items"][0]
    proj_batch = measured["batch_get, UserSummary"][0]
    full_get = measured["get, full items"][0]
    proj_get = measured["get, UserSummary"][0]
    hand = measured["botocore, hand-written ProjectionExpression"][0]
    rows = [
        {
            "contender": name,
            "requests": requests,
            "bytes": size,
            "bytes_per_item": size / n,
            "vs_full_batch": size / full_batch,
        }
        for name, (size, requests) in measured.items()
    ]
    targets = [
        Target(
            "projection: batch bytes vs hand-written ProjectionExpression",
            proj_batch / hand,
            1.05,
            "<=",
            floor="hand-written ProjectionExpression",
        ),
    ]
    notes = [
        f"{n} users with an {BIO_BYTES // 1024} KiB `bio` attribute; response body bytes counted "
        "at the proxy (the proxy sends bodies uncompressed, as dynalite does).",
        f"UserSummary cuts the bytes of a batch read {full_batch / proj_batch:.0f}x and of point "
        f"reads {full_get / proj_get:.0f}x; a sample: {sample!r}.",
    ]
    return ScenarioResult(
        key="projection",
        title="4. Projection: bytes on the wire",
        setup={"items": n, "large_attribute_bytes": BIO_BYTES},
        columns=[
            Column("contender", "read", "{}"),
            Column("requests", "requests", "{}"),
            Column("bytes", "bytes to client", "{:,}"),
            Column("bytes_per_item", "bytes/item", "{:,.0f}"),
            Column("vs_full_batch", "vs full batch", "{:.3f}x"),
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        seconds=time.perf_counter() - started,
        extra={"reduction_batch": full_batch / proj_batch, "reduction_get": full_get / proj_get},
    )

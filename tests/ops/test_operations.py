"""The shared operations on a fake runtime: no engine, no network, no event loop.

`portchops_models.ops` takes one call's `Bound` context; its runtime is the seam
through which every request leaves. `ScriptedRuntime` answers each request from
a script (a function of the operation and its parameters) and records what was
sent, so the logic of the operations (decoding, expiry, batching rounds, exactly
once, marker pruning, partial items) is tested in milliseconds, beside the
engine tests that show the same on moto and dynalite.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection

from portchops_models import BaseModel, ConditionFailed, ItemNotFound, Settings, configure
from portchops_models.dynamo.idempotency import StaleMarkers
from portchops_models.errors import InvalidRequest
from portchops_models.metrics import Metrics
from portchops_models.models.shape import shape_of
from portchops_models.ops import queries, reads, writes
from portchops_models.ops.context import Bound, Decoders
from portchops_models.retry import RetryPolicy
from portchops_models.transport.connection import Connection, current_connection
from portchops_models.transport.drive import run_sync

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


class ScriptedRuntime:
    """A `Runtime` whose requests are answered by `answer`; every request is recorded."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(
        self,
        conn: Connection,
        operation: str,
        params: dict[str, Any],
        *,
        table: str | None,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> dict[str, Any]:
        self.sent.append((operation, params))
        return self.answer(operation, params)

    async def fan_out(
        self,
        conn: Connection,
        send: Callable[[list[Any]], Coroutine[Any, Any, dict[str, Any]]],
        chunks: list[list[Any]],
    ) -> list[dict[str, Any] | BaseException]:
        outcomes: list[dict[str, Any] | BaseException] = []
        for chunk in chunks:
            try:
                outcomes.append(run_sync(send(chunk)))
            except Exception as err:
                outcomes.append(err)
        return outcomes

    async def get_or_load(
        self,
        cache: Any,
        key: Hashable,
        variant: Hashable,
        loader: Callable[[], Coroutine[Any, Any, Any]],
    ) -> Any:
        return await loader()

    def wait(self, policy: RetryPolicy) -> Callable[[float], Awaitable[None]]:
        return policy.blocking_wait

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.sent]


class ByTag(GlobalSecondaryIndex["Card"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by-tag"
        projection = KeysOnlyProjection()

    tag = UnicodeAttribute(hash_key=True)


class Card(BaseModel):
    base_table_name = "cards"

    card_id = UnicodeAttribute(hash_key=True, attr_name="cardId")
    tag = UnicodeAttribute()
    views = NumberAttribute(default=0)
    balance = NumberAttribute(default=0)
    version = VersionAttribute()
    by_tag = ByTag()


@pytest.fixture
def settings() -> Settings:
    """Settings that point nowhere: the scripted runtime answers every request."""
    return configure(endpoint_url="http://127.0.0.1:9", table_prefix="fake-")


def bind(runtime: ScriptedRuntime) -> Bound[Card]:
    shape = shape_of(Card)
    return Bound(
        current_connection(),
        "fake-cards",
        shape,
        runtime,
        RetryPolicy(sleep=lambda _: None),
        Metrics(),
        None,
        Decoders(shape),
        StaleMarkers(),
    )


def card(card_id: str, **values: dict[str, str]) -> dict[str, Any]:
    return {"cardId": {"S": card_id}, "tag": {"S": "t"}, "version": {"N": "1"}, **values}


def test_get_decodes_and_an_expired_or_missing_item_is_not_found(settings: Settings) -> None:
    runtime = ScriptedRuntime(lambda op, p: {"Item": card("c1", views={"N": "7"})})
    found = run_sync(reads.get(bind(runtime), "c1", True, None))
    assert (found.card_id, found.views) == ("c1", 7)
    assert runtime.sent[0][1]["ConsistentRead"] is True
    with pytest.raises(ItemNotFound, match="fake-cards"):
        run_sync(reads.get(bind(ScriptedRuntime(lambda op, p: {})), "c2", False, None))


def test_batch_get_chunks_resubmits_unprocessed_and_keeps_the_order(settings: Settings) -> None:
    held_back: set[str] = {"k7", "k150"}  # unprocessed the first time they are asked for

    def answer(op: str, params: dict[str, Any]) -> dict[str, Any]:
        keys = params["RequestItems"]["fake-cards"]["Keys"]
        served = [k for k in keys if k["cardId"]["S"] not in held_back]
        left = [k for k in keys if k["cardId"]["S"] in held_back]
        held_back.difference_update(k["cardId"]["S"] for k in left)
        out: dict[str, Any] = {
            "Responses": {"fake-cards": [card(k["cardId"]["S"]) for k in served]}
        }
        if left:
            out["UnprocessedKeys"] = {"fake-cards": {"Keys": left}}
        return out

    runtime = ScriptedRuntime(answer)
    keys = [f"k{i}" for i in range(250)] + ["k3"]  # a duplicate
    found = run_sync(reads.batch_get(bind(runtime), keys, None))
    assert [c.card_id for c in found] == [f"k{i}" for i in range(250)]
    assert runtime.operations() == ["BatchGetItem"] * 4  # 100 + 100 + 50, then the 2 left
    assert len(runtime.sent[-1][1]["RequestItems"]["fake-cards"]["Keys"]) == 2


def test_an_update_whose_earlier_attempt_landed_is_not_applied_again(settings: Settings) -> None:
    """The retry of a landed update fails its marker condition; the item read back holds
    this call's marker, so the update succeeds, once."""
    sent_marker: dict[str, Any] = {}

    def answer(op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op == "UpdateItem":
            values = params["ExpressionAttributeValues"]
            names = params["ExpressionAttributeNames"]
            marker = next(n for n in names.values() if n.startswith("_pcw_"))
            value = next(v for v in values.values() if ":" in str(v.get("S", "")))
            sent_marker[marker] = value
            raise ConditionFailed("the condition failed", table="fake-cards")
        return {"Item": {**card("c1", views={"N": "1"}), **sent_marker}}

    runtime = ScriptedRuntime(answer)
    stored = run_sync(writes.update(bind(runtime), "c1", [Card.views.add(1)], None))
    assert stored.views == 1
    assert runtime.operations() == ["UpdateItem", "GetItem"]


def test_a_genuine_condition_failure_is_reported(settings: Settings) -> None:
    def answer(op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op == "UpdateItem":
            raise ConditionFailed("the condition failed", table="fake-cards")
        return {"Item": card("c1")}  # no marker of this call: its condition really failed

    runtime = ScriptedRuntime(answer)
    with pytest.raises(ConditionFailed, match="c1"):
        run_sync(writes.update(bind(runtime), "c1", [Card.views.add(1)], Card.views > 5))
    assert runtime.operations() == ["UpdateItem", "GetItem"]


def test_stale_markers_in_an_answer_are_removed_by_the_next_update(settings: Settings) -> None:
    old = int(time.time()) - 3600

    def answer(op: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Attributes": {**card("c1"), "_pcw_gone_0": {"S": f"{old}:x"}}}

    runtime = ScriptedRuntime(answer)
    ctx = bind(runtime)
    run_sync(writes.update(ctx, "c1", [Card.views.add(1)], None))
    run_sync(writes.update(ctx, "c1", [Card.views.add(1)], None))
    first, second = (params["UpdateExpression"] for _, params in runtime.sent)
    removed = runtime.sent[1][1]["ExpressionAttributeNames"]
    assert "REMOVE" not in first
    assert "REMOVE" in second
    assert "_pcw_gone_0" in removed.values()


def test_a_keys_only_page_is_partial_and_saves_only_what_changed(settings: Settings) -> None:
    def answer(op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op == "Query":
            return {"Items": [{"cardId": {"S": "c1"}, "tag": {"S": "t"}}]}
        return {"Attributes": {**card("c1", balance={"N": "1000"}), "views": {"N": "3"}}}

    runtime = ScriptedRuntime(answer)
    ctx = bind(runtime)
    built = queries.build_query(
        ctx.shape, ctx.table, "t", None, None, "by-tag", None, False, False, None
    )
    (partial,) = run_sync(queries.fetch_page(ctx, built, "Query", None, None)).items
    assert (partial.views, partial.balance, partial.version) == (None, None, None)
    partial.views = 3
    run_sync(writes.save(ctx, partial, None))
    operation, params = runtime.sent[-1]
    assert operation == "UpdateItem"  # never a PutItem that would drop the balance
    names = set(params["ExpressionAttributeNames"].values())
    assert "views" in names
    assert "balance" not in names
    assert partial.balance is None  # still not read: not filled from the answer
    assert partial.views == 3


def test_bad_input_is_refused_before_the_runtime_sees_it(settings: Settings) -> None:
    runtime = ScriptedRuntime(lambda op, p: {})
    ctx = bind(runtime)
    with pytest.raises(InvalidRequest, match="views"):
        run_sync(writes.update(ctx, "c1", [Card.views.set("abc")], None))
    with pytest.raises(InvalidRequest, match="version"):
        run_sync(writes.update(ctx, "c1", [Card.version.remove()], None))
    with pytest.raises(InvalidRequest, match="collection"):
        run_sync(reads.batch_get(ctx, "c1", None))
    assert runtime.sent == []

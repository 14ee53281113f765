"""Every write path checks what it sends as strictly as `save` does, before the wire.

An app's own model (`tests.order_model.Order`: a required str, numbers, a string
set, a list, a version, a KEYS_ONLY and an INCLUDE index) on moto and on dynalite,
behind the fault proxy, whose count of requests received shows that a refused
write sent nothing; the stored item is read back raw to show it did not change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.expressions.operand import Path

from portchops_models import (
    ConditionFailed,
    InvalidRequest,
    Transaction,
    User,
    UserRepository,
    configure,
)
from portchops_models.dynamo.limits import ITEM_MAX_BYTES
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.engine import LocalEngine
from portchops_models.testing.faultproxy import FaultProxy
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry
from tests.order_model import Invoice, Order, OrderRepository

MODELS = (Order, Invoice, User)


def _tables_behind_a_proxy(engine_url: str) -> Iterator[FaultProxy]:
    prefix = f"s{uuid.uuid4().hex[:10]}-"
    settings = configure(endpoint_url=engine_url, table_prefix=prefix)
    for model in MODELS:
        create_table(model)
    with FaultProxy(upstream=engine_url) as proxy:
        configure(settings, endpoint_url=proxy.endpoint_url)
        yield proxy
    configure(settings)
    for model in MODELS:
        delete_table(settings.table_name(model.base_table_name), conn=current_connection())


@pytest.fixture
def orders(engine_url: str) -> Iterator[FaultProxy]:
    """Order, Invoice and User tables on each engine, the settings pointing at a proxy."""
    yield from _tables_behind_a_proxy(engine_url)


@pytest.fixture
def moto_orders(moto_engine: LocalEngine) -> Iterator[FaultProxy]:
    """`orders` on moto only (dynalite has no transactions)."""
    yield from _tables_behind_a_proxy(moto_engine.endpoint_url)


def _raw(order_id: str) -> dict[str, Any] | None:
    table = current_connection().settings.table_name(Order.base_table_name)
    params = {"TableName": table, "Key": {"orderId": {"S": order_id}}, "ConsistentRead": True}
    item: dict[str, Any] | None = current_connection().call("GetItem", params).get("Item")
    return item


def _stored(repo: OrderRepository) -> Order:
    return repo.save(
        Order(
            order_id="o1",
            customer="ada",
            status="paid",
            total=120,
            balance=1000,
            roles={"admin", "ops"},
            tags=["a", "b"],
        )
    )


def _refused(proxy: FaultProxy, call: Callable[[], object], attribute: str) -> None:
    """`call` raises InvalidRequest naming `attribute`, and nothing reached the proxy."""
    before = _raw("o1")
    proxy.reset_stats()
    with pytest.raises(InvalidRequest, match=attribute):
        call()
    assert proxy.stats.requests == 0
    assert _raw("o1") == before


BAD_UPDATES: dict[str, tuple[Callable[[], list[Any]], str]] = {
    "number from a str": (lambda: [Order.total.set("abc")], "total"),
    "infinity": (lambda: [Order.total.set(float("inf"))], "total"),
    "out of range": (lambda: [Order.total.set(1e200)], "total"),
    "NaN added": (lambda: [Order.total.add(float("nan"))], "total"),
    "required set to None": (lambda: [Order.customer.set(None)], "customer"),
    "required removed": (lambda: [Order.customer.remove()], "customer"),
    "version removed": (lambda: [Order.version.remove()], "version"),
    "key changed": (lambda: [Order.order_id.set("o2")], "order_id"),
    "another model's attribute": (lambda: [Invoice.total.add(1)], "total"),
    "an attribute it lacks": (lambda: [Path("nope").set(1)], "nope"),
    "str for a set": (lambda: [Order.roles.set("admin")], "roles"),
    "str for a list": (lambda: [Order.tags.set("abc")], "tags"),
    "list of numbers for a list of str": (lambda: [Order.tags.set([1, 2])], "tags"),
    "index key emptied": (lambda: [Order.customer.set("")], "customer"),
    "lone surrogate": (lambda: [Order.note.set("a\ud800b")], "note"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPDATES))
def test_a_bad_update_is_refused_before_the_wire(orders: FaultProxy, case: str) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    actions, attribute = BAD_UPDATES[case]
    _refused(orders, lambda: repo.update("o1", actions()), attribute)


def test_str_for_a_set_or_list_is_refused_on_every_write_path(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    as_str = Order(order_id="o1", customer="ada", roles="admin")  # type: ignore[arg-type]
    _refused(orders, lambda: repo.save(as_str), "roles")
    _refused(orders, lambda: as_str.save(), "roles")
    listed = Order(order_id="o1", customer="ada", tags="abc")  # type: ignore[arg-type]
    _refused(orders, lambda: repo.save(listed), "tags")
    batch = [Order(order_id=f"b{i}", customer="c") for i in range(60)]
    batch[41].roles = "admin"  # type: ignore[assignment]
    _refused(orders, lambda: repo.batch_save(batch), "roles")
    assert repo.find("b0") is None  # nothing of the batch stored

    def in_a_transaction() -> None:
        with Transaction() as tx:
            tx.save(listed)

    _refused(orders, in_a_transaction, "tags")

    def update_in_a_transaction() -> None:
        with Transaction() as tx:
            tx.update(Order, "o1", [Order.roles.set("admin")])

    _refused(orders, update_in_a_transaction, "roles")


def test_the_models_own_update_is_checked_too(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    order = _stored(repo)
    _refused(orders, lambda: order.update([Order.customer.remove()]), "customer")
    _refused(orders, lambda: order.update([Invoice.total.set(3)]), "total")


def test_decimal_values_are_written_exactly(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    repo.save(Order(order_id="o1", customer="ada", total=Decimal("0.10")))
    repo.update("o1", [Order.balance.set(Decimal("12345678901234567890.123456789"))])
    raw = _raw("o1")
    assert raw is not None
    assert Decimal(raw["total"]["N"]) == Decimal("0.1")
    assert Decimal(raw["balance"]["N"]) == Decimal("12345678901234567890.123456789")


def test_a_decimal_in_a_transaction_update(moto_orders: FaultProxy) -> None:
    with Transaction() as tx:
        tx.update(Order, "o1", [Order.total.add(Decimal("2.5"))])
    raw = _raw("o1")
    assert raw is not None
    assert raw["total"] == {"N": "2.5"}


def test_an_empty_index_key_stops_the_whole_batch(orders: FaultProxy) -> None:
    users = UserRepository(cache=None, retry=fast_retry())
    batch = [User(user_id=f"u{i}", email=f"{i}@x.io", name="N") for i in range(1000)]
    batch[975].email = ""
    orders.reset_stats()
    with pytest.raises(InvalidRequest, match="email"):
        users.batch_save(batch)
    assert orders.stats.requests == 0
    assert users.batch_get([f"u{i}" for i in range(0, 1000, 50)]) == []


def test_the_size_check_counts_the_version_and_the_marker(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    # 409,600 bytes of attributes: the version and the exactly-once marker push it over.
    fill = ITEM_MAX_BYTES - len("orderId") - 2 - len("customer") - 3 - len("note")
    big = Order(order_id="o9", customer="ada", note="x" * fill)
    orders.reset_stats()
    with pytest.raises(InvalidRequest, match="bytes"):
        repo.save(big)
    assert orders.stats.requests == 0
    assert _raw("o9") is None


def test_create_writes_only_where_the_key_is_free(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    created = repo.create(Order(order_id="o1", customer="ada"))
    assert created.version == 1
    with pytest.raises(ConditionFailed):
        repo.create(Order(order_id="o1", customer="eve"))
    assert repo.get("o1", consistent=True).customer == "ada"


# ---------------------------------------------------------------------- partial items


def test_an_item_from_a_keys_only_index_saves_back_without_wiping(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    before = _raw("o1")
    (partial,) = repo.query("ada", index=Order.by_customer).items
    assert (partial.order_id, partial.customer) == ("o1", "ada")
    assert (partial.balance, partial.roles, partial.tags, partial.total) == (None,) * 4
    partial.note = "called"
    repo.save(partial)
    after = _raw("o1")
    assert after is not None
    assert before is not None
    for name in ("balance", "roles", "tags", "total", "status"):
        assert after[name] == before[name], name
    assert after["note"] == {"S": "called"}
    assert after["version"] == {"N": "2"}


def test_an_item_from_an_include_index_saves_back_without_wiping(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    before = _raw("o1")
    (partial,) = repo.query("paid", index="by-status").items
    assert partial.total == 120
    assert (partial.balance, partial.roles) == (None, None)
    partial.total = 130
    repo.save(partial)
    partial.save()  # the model's own save is the repository's: no whole-item put either
    after = _raw("o1")
    assert after is not None
    assert before is not None
    assert after["total"] == {"N": "130"}
    for name in ("balance", "roles", "tags", "customer"):
        assert after[name] == before[name], name


def test_a_partial_item_cannot_go_into_a_batch_or_a_create(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    (partial,) = repo.query("ada", index=Order.by_customer).items
    _refused(orders, lambda: repo.batch_save([partial]), "index")
    _refused(orders, lambda: repo.create(partial), "partial")


def test_a_partial_save_of_a_deleted_item_does_not_recreate_it(orders: FaultProxy) -> None:
    repo = OrderRepository(cache=None, retry=fast_retry())
    _stored(repo)
    (partial,) = repo.query("ada", index=Order.by_customer).items
    repo.delete("o1")
    with pytest.raises(ConditionFailed):
        repo.save(partial)
    assert _raw("o1") is None


# ---------------------------------------------------------------------- property: bad input


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**130), max_value=10**130),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.text(max_size=3), max_size=3),
    st.sets(st.text(min_size=1, max_size=3), max_size=3),
)
ATTRIBUTES = ("customer", "total", "balance", "roles", "tags", "note", "status")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(ATTRIBUTES), value=VALUES)
def test_any_value_is_stored_or_refused_with_nothing_sent(
    orders: FaultProxy, name: str, value: object
) -> None:
    """A value through `update` either lands and reads back, or is InvalidRequest with no
    request sent and the item unchanged; never a raw error, never a stored surprise."""
    repo = OrderRepository(cache=None, retry=fast_retry())
    if _raw("o1") is None:
        _stored(repo)
    attr = getattr(Order, name)
    before = _raw("o1")
    orders.reset_stats()
    try:
        updated = repo.update("o1", [attr.set(value)])
    except InvalidRequest:
        assert orders.stats.requests == 0
        assert _raw("o1") == before
        return
    assert orders.stats.server_errors == 0
    stored = getattr(updated, name)
    raw = _raw("o1")
    assert raw is not None
    if isinstance(value, set | list) and not value:
        return  # an empty set is not stored (PynamoDB writes no empty sets)
    if value is None:
        assert stored is None
    elif isinstance(value, float | int | Decimal) and not isinstance(value, bool):
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        assert Decimal(raw[attr.attr_name]["N"]) == exact  # written exactly (read as float)
    elif name == "roles":
        assert stored == set(value)  # type: ignore[call-overload]
    else:
        assert stored == value

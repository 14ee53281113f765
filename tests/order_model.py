"""An app's model with every kind of value a write can get wrong, and partial indexes.

`Order` has a required str (``customer``), numbers with defaults (``total``,
``balance``), a string set (``roles``), a list (``tags``), a version, a KEYS_ONLY
index (``by-customer``) and an INCLUDE index (``by-status``, projecting ``total``).
`Invoice` is another model with an attribute of the same name (``total``).
"""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import (
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection

from portchops_models import BaseModel, Repository

__all__ = ["Invoice", "Order", "OrderRepository"]


class ByCustomer(GlobalSecondaryIndex["Order"]):  # type: ignore[no-untyped-call]
    """KEYS_ONLY: the keys of a customer's orders."""

    class Meta:
        index_name = "by-customer"
        projection = KeysOnlyProjection()

    customer = UnicodeAttribute(hash_key=True)


class ByStatus(GlobalSecondaryIndex["Order"]):  # type: ignore[no-untyped-call]
    """INCLUDE: orders by status, with their total."""

    class Meta:
        index_name = "by-status"
        projection = IncludeProjection(["total"])

    status = UnicodeAttribute(hash_key=True)


class Order(BaseModel):
    """One order."""

    base_table_name: ClassVar[str] = "orders"

    order_id = UnicodeAttribute(hash_key=True, attr_name="orderId")
    customer = UnicodeAttribute()
    status = UnicodeAttribute(default="open")
    total = NumberAttribute(default=0)
    balance = NumberAttribute(default=0)
    roles = UnicodeSetAttribute(null=True)
    tags = ListAttribute(of=UnicodeAttribute, null=True)  # type: ignore[var-annotated]
    note = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_customer = ByCustomer()
    by_status = ByStatus()


class OrderRepository(Repository[Order, str]):
    model = Order


class Invoice(BaseModel):
    """Another model with a ``total``: its actions must not reach an Order."""

    base_table_name: ClassVar[str] = "invoices"

    invoice_id = UnicodeAttribute(hash_key=True)
    total = NumberAttribute(default=0)

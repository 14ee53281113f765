"""`Person`: a model at schema version 2 (tests/models/test_versions.py, tests/migrate).

Version 1 stored ``full_name`` ("Ada Lovelace") and ``mail``; version 2 splits the name
into ``first_name`` + ``last_name`` and renames ``mail`` to ``email``. ``visits`` is a
counter concurrent writers update while the converging backfill runs.
"""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute

from portchops_models.models import BaseModel
from portchops_models.models.shape import RawItem
from portchops_models.models.versions import upcaster
from portchops_models.repository import Repository


class Person(BaseModel):
    """A person by team and id, at schema version 2."""

    base_table_name: ClassVar[str] = "people"
    schema_version: ClassVar[int | None] = 2

    team = UnicodeAttribute(hash_key=True)
    person_id = UnicodeAttribute(range_key=True, attr_name="personId")
    first_name = UnicodeAttribute(attr_name="firstName")
    last_name = UnicodeAttribute(attr_name="lastName", default="")
    email = UnicodeAttribute(null=True)
    visits = NumberAttribute(default=0)


@upcaster(Person, 1)
def split_name(item: RawItem) -> RawItem:
    """Version 1 -> 2: ``full_name`` split at its first space, ``mail`` renamed ``email``."""
    full = item.pop("full_name", None)
    if full is not None:
        first, _, last = full["S"].partition(" ")
        item["firstName"] = {"S": first}
        item["lastName"] = {"S": last}
    mail = item.pop("mail", None)
    if mail is not None:
        item["email"] = mail
    return item


class PersonRepository(Repository[Person, tuple[str, str]]):
    """People by (team, person id)."""

    model = Person


class Account(BaseModel):
    """An account with optimistic locking, at schema version 3 (two upcasters)."""

    base_table_name: ClassVar[str] = "accounts"
    schema_version: ClassVar[int | None] = 3

    account_id = UnicodeAttribute(hash_key=True, attr_name="accountId")
    owner = UnicodeAttribute()
    balance = NumberAttribute(default=0)
    version = VersionAttribute()


@upcaster(Account, 1)
def owner_from_holder(item: RawItem) -> RawItem:
    """Version 1 -> 2: ``holder`` renamed ``owner_name``."""
    if "holder" in item:
        item["owner_name"] = item.pop("holder")
    return item


@upcaster(Account, 2)
def owner_from_owner_name(item: RawItem) -> RawItem:
    """Version 2 -> 3: ``owner_name`` renamed ``owner``."""
    if "owner_name" in item:
        item["owner"] = item.pop("owner_name")
    return item


class AccountRepository(Repository[Account, str]):
    """Accounts by id."""

    model = Account

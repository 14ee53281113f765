"""Schema versions: items written as version 1 (raw requests) read as version 2 on every
read path; writes stamp the version; updates of older items converge them first and
never lose an increment under concurrent writers; bad declarations are typed errors.

`Person` (tests/person_model.py) is at version 2: ``full_name`` split into
``first_name`` + ``last_name``, ``mail`` renamed ``email``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute

from portchops_models import (
    ConditionFailed,
    ConfigurationError,
    InvalidRequest,
    Projection,
    TransactionCanceled,
)
from portchops_models.aio import AsyncRepository
from portchops_models.models import BaseModel
from portchops_models.models.decoding import model_decoder
from portchops_models.models.shape import RawItem, shape_of
from portchops_models.models.versions import STAMP, SchemaVersions, upcaster, versions_of
from portchops_models.settings import Settings
from portchops_models.streams import changes_from_event
from portchops_models.tables import create_table, delete_table
from portchops_models.transactions import Transaction, read_transaction
from portchops_models.transport.connection import current_connection
from tests.person_model import Account, AccountRepository, Person, PersonRepository

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def people(tables: Settings) -> Iterator[PersonRepository]:
    """A fresh `Person` table (and `Account`), on moto."""
    create_table(Person)
    create_table(Account)
    yield PersonRepository(cache=None)
    delete_table(Person.table_name())
    delete_table(Account.table_name())


def v1(person_id: str, full_name: str = "Ada Lovelace", **extra: Any) -> RawItem:
    """A version-1 item, as the old code stored it (no stamp)."""
    item: RawItem = {
        "team": {"S": "t"},
        "personId": {"S": person_id},
        "full_name": {"S": full_name},
        "mail": {"S": f"{person_id}@example.com"},
    }
    item.update(extra)
    return item


def put_raw(item: RawItem) -> None:
    current_connection().call("PutItem", {"TableName": Person.table_name(), "Item": item})


def stored(person_id: str) -> RawItem:
    answer = current_connection().call(
        "GetItem",
        {
            "TableName": Person.table_name(),
            "Key": {"team": {"S": "t"}, "personId": {"S": person_id}},
            "ConsistentRead": True,
        },
    )
    item: RawItem = answer["Item"]
    return item


def is_v2(person: Person, person_id: str) -> None:
    assert (person.person_id, person.first_name, person.last_name) == (
        person_id,
        "Ada",
        "Lovelace",
    )
    assert person.email == f"{person_id}@example.com"


class Names(Projection[Person]):
    first_name: str
    email: str


def test_mixed_items_read_as_version_2_on_every_read_path(people: PersonRepository) -> None:
    put_raw(v1("p1"))
    put_raw({**v1("p2"), STAMP: {"N": "1"}})  # stamped 1 explicitly: the same
    people.save(
        Person(
            team="t", person_id="p3", first_name="Ada", last_name="Lovelace", email="p3@example.com"
        )
    )
    ids = ["p1", "p2", "p3"]
    for pid in ids:
        is_v2(people.get(("t", pid)), pid)
    for person in people.batch_get([("t", pid) for pid in ids]):
        is_v2(person, person.person_id)
    page = people.query("t")
    assert [p.person_id for p in page.items] == ids
    for person in page.items:
        is_v2(person, person.person_id)
    for person in people.scan():
        is_v2(person, person.person_id)
    for pair in read_transaction(*((Person, ("t", pid)) for pid in ids)):
        assert pair is not None
        is_v2(pair, pair.person_id)
    # projections read older items whole (the upcaster needs full_name and mail)
    assert people.get(("t", "p1"), projection=Names) == Names(
        first_name="Ada", email="p1@example.com"
    )
    assert [n.first_name for n in people.batch_get([("t", "p1")], projection=Names)] == ["Ada"]
    assert next(n.email for n in people.query("t", projection=Names).items) == "p1@example.com"
    # the models' own reads
    is_v2(Person.get("t", "p1"), "p1")
    assert "_pcv" not in Person.get("t", "p1").attribute_values


class AsyncPeople(AsyncRepository[Person, tuple[str, str]]):
    model = Person


def test_the_async_repository_reads_and_updates_older_items(people: PersonRepository) -> None:
    put_raw(v1("p1"))
    put_raw(v1("p2"))

    async def run() -> tuple[Person, list[Person], Person]:
        repo = AsyncPeople(cache=None)
        one = await repo.get(("t", "p1"))
        page = await repo.query("t")
        updated = await repo.update(("t", "p2"), [Person.visits.add(1)])
        return one, page.items, updated

    one, items, updated = asyncio.run(run())
    is_v2(one, "p1")
    for person in items:
        is_v2(person, person.person_id)
    is_v2(updated, "p2")
    assert updated.visits == 1
    assert stored("p2")[STAMP] == {"N": "2"}


def test_a_stream_change_of_an_older_item_reads_as_version_2() -> None:
    old = v1("p1")
    new = {**v1("p1", "Ada King"), "visits": {"N": "1"}}
    event = {
        "Records": [
            {
                "eventName": "MODIFY",
                "dynamodb": {
                    "Keys": {"team": {"S": "t"}, "personId": {"S": "p1"}},
                    "OldImage": old,
                    "NewImage": new,
                    "SequenceNumber": "1",
                },
            }
        ]
    }
    (change,) = changes_from_event(event, Person)
    assert change.old is not None
    assert change.new is not None
    is_v2(change.old, "p1")
    assert (change.new.first_name, change.new.last_name, change.new.visits) == ("Ada", "King", 1)


def test_every_write_stamps_the_current_version(people: PersonRepository) -> None:
    ada = Person(team="t", person_id="p1", first_name="Ada", email="a@example.com")
    people.save(ada)
    assert stored("p1")[STAMP] == {"N": "2"}
    people.batch_save([Person(team="t", person_id=f"b{n}", first_name="B") for n in range(3)])
    assert all(stored(f"b{n}")[STAMP] == {"N": "2"} for n in range(3))
    with Transaction() as tx:
        tx.save(Person(team="t", person_id="x1", first_name="X"))
    assert stored("x1")[STAMP] == {"N": "2"}
    people.update(("t", "u1"), [Person.visits.add(1)])  # an update that creates the item
    assert stored("u1")[STAMP] == {"N": "2"}


def test_an_update_of_an_older_item_converges_it_first(people: PersonRepository) -> None:
    put_raw(v1("p1", visits={"N": "4"}))
    updated = people.update(("t", "p1"), [Person.visits.add(1)])
    is_v2(updated, "p1")
    assert updated.visits == 5
    raw = stored("p1")
    assert raw[STAMP] == {"N": "2"}
    assert "full_name" not in raw
    assert "mail" not in raw
    assert raw["firstName"] == {"S": "Ada"}
    assert raw["visits"] == {"N": "5"}
    # a caller's condition on a current attribute holds on an older item
    put_raw(v1("p2"))
    people.update(("t", "p2"), [Person.visits.add(1)], condition=Person.first_name == "Ada")
    assert stored("p2")["visits"] == {"N": "1"}
    put_raw(v1("p3"))
    with pytest.raises(ConditionFailed):
        people.update(("t", "p3"), [Person.visits.add(1)], condition=Person.first_name == "Bob")


def test_the_models_own_update_of_an_older_item(people: PersonRepository) -> None:
    put_raw(v1("p1"))
    ada = Person.get("t", "p1")
    ada.update([Person.visits.add(2)])
    assert ada.visits == 2
    assert ada.first_name == "Ada"
    assert stored("p1")[STAMP] == {"N": "2"}


def test_an_item_stamped_newer_is_never_replaced_by_an_older_shape(
    people: PersonRepository,
) -> None:
    put_raw({**v1("p1"), "firstName": {"S": "N"}, STAMP: {"N": "3"}})
    with pytest.raises(ConditionFailed):
        people.save(Person(team="t", person_id="p1", first_name="Old"))
    with pytest.raises(ConditionFailed):
        people.update(("t", "p1"), [Person.visits.add(1)])
    assert stored("p1")[STAMP] == {"N": "3"}
    assert people.get(("t", "p1")).first_name == "N"  # read as stored


def test_concurrent_updates_of_older_items_lose_no_increment(people: PersonRepository) -> None:
    rows, threads, each = 10, 6, 10
    for n in range(rows):
        put_raw(v1(f"p{n}"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def bump() -> None:
        repo = PersonRepository(cache=None)
        barrier.wait()
        try:
            for _ in range(each):
                for n in range(rows):
                    repo.update(("t", f"p{n}"), [Person.visits.add(1)])
        except BaseException as err:  # reported below
            errors.append(err)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    for n in range(rows):
        raw = stored(f"p{n}")
        assert raw["visits"] == {"N": str(threads * each)}
        assert raw[STAMP] == {"N": "2"}
        assert "full_name" not in raw


def test_an_optimistically_locked_model_upcasts_through_two_versions(
    people: PersonRepository,
) -> None:
    accounts = AccountRepository(cache=None)
    table = Account.table_name()
    conn = current_connection()
    conn.call(
        "PutItem",
        {
            "TableName": table,
            "Item": {"accountId": {"S": "a1"}, "holder": {"S": "ada"}, "version": {"N": "1"}},
        },
    )
    conn.call(
        "PutItem",
        {
            "TableName": table,
            "Item": {"accountId": {"S": "a2"}, "owner_name": {"S": "bob"}, STAMP: {"N": "2"}},
        },
    )
    assert accounts.get("a1").owner == "ada"
    assert accounts.get("a2").owner == "bob"
    updated = accounts.update("a1", [Account.balance.add(5)])
    assert (updated.owner, updated.balance, updated.version) == ("ada", 5, 2)
    # a save holding the version it read wins over the representation change
    bob = accounts.get("a2")
    bob.balance = 7
    accounts.save(bob)
    assert accounts.get("a2").balance == 7


# ---------------------------------------------------------------------- declarations


def test_bad_declarations_are_typed_errors() -> None:
    class Plain(BaseModel):
        base_table_name: ClassVar[str] = "plain"
        key = UnicodeAttribute(hash_key=True)

    with pytest.raises(ConfigurationError, match="declares no schema_version"):
        upcaster(Plain, 1)

    class Gap(BaseModel):
        base_table_name: ClassVar[str] = "gap"
        schema_version: ClassVar[int | None] = 3
        key = UnicodeAttribute(hash_key=True)

    for wrong in (0, 3, 4, True, "1"):
        with pytest.raises(ConfigurationError, match="an upcaster goes from"):
            upcaster(Gap, wrong)  # type: ignore[arg-type]

    @upcaster(Gap, 2)
    def two(item: RawItem) -> RawItem:
        return item

    with pytest.raises(ConfigurationError, match="already"):
        upcaster(Gap, 2)(two)
    with pytest.raises(ConfigurationError, match="no upcaster from version 1"):
        shape_of(Gap)
    with pytest.raises(ConfigurationError, match="no upcaster from version 1"):
        model_decoder(Gap)

    class Late(BaseModel):
        base_table_name: ClassVar[str] = "late"
        schema_version: ClassVar[int | None] = 1
        key = UnicodeAttribute(hash_key=True)

    assert shape_of(Late).versions == SchemaVersions("Late", 1, ())

    class Bad(BaseModel):
        base_table_name: ClassVar[str] = "bad"
        schema_version: ClassVar[int | None] = -1
        key = UnicodeAttribute(hash_key=True)

    with pytest.raises(ConfigurationError, match="int >= 1"):
        shape_of(Bad)

    class Sealed(BaseModel):
        base_table_name: ClassVar[str] = "sealed"
        schema_version: ClassVar[int | None] = 2
        encrypted: ClassVar[tuple[str, ...]] = ("secret",)
        key = UnicodeAttribute(hash_key=True)
        secret = UnicodeAttribute()

    upcaster(Sealed, 1)(two)
    with pytest.raises(ConfigurationError, match="encrypted"):
        shape_of(Sealed)


def test_registering_after_first_use_is_refused() -> None:
    class Used(BaseModel):
        base_table_name: ClassVar[str] = "used"
        schema_version: ClassVar[int | None] = 2
        key = UnicodeAttribute(hash_key=True)

    @upcaster(Used, 1)
    def one(item: RawItem) -> RawItem:
        return item

    shape_of(Used)
    with pytest.raises(ConfigurationError, match="after the model was first used"):
        upcaster(Used, 1)(one)


def test_a_failing_upcaster_is_invalid_request_naming_it() -> None:
    versions = versions_of(Person)
    assert versions is not None
    with pytest.raises(InvalidRequest, match="upcaster 1 -> 2"):
        versions.upcast({"team": {"S": "t"}, "full_name": {"N": "1"}})
    with pytest.raises(InvalidRequest, match="_pcv must be a positive int"):
        versions.version_of({STAMP: {"S": "two"}})


# ---------------------------------------------------------------------- the chain


@given(
    current=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_the_chain_runs_each_step_from_the_items_version_once(
    current: int, data: st.DataObject
) -> None:
    def step(n: int) -> Any:
        def run(item: RawItem) -> RawItem:
            item["trail"] = {"L": [*item.get("trail", {"L": []})["L"], {"N": str(n)}]}
            return item

        return run

    versions = SchemaVersions("M", current, tuple(step(n) for n in range(1, current)))
    start = data.draw(st.integers(min_value=1, max_value=current + 2))
    stamp = data.draw(st.booleans()) or start != 1
    item: RawItem = {"k": {"S": "x"}}
    if stamp:
        item[STAMP] = {"N": str(start)}
    original = dict(item)
    out = versions.upcast(item)
    assert item == original  # the caller's item is left alone
    expected = [str(n) for n in range(start, current)]
    assert [v["N"] for v in out.get("trail", {"L": []})["L"]] == expected
    assert versions.version_of(out) == max(start, current)
    assert versions.older(out) is False


@given(st.one_of(st.text(max_size=5), st.integers(max_value=0).map(str)))
def test_a_stamp_that_is_not_a_positive_int_is_refused(text: str) -> None:
    versions = SchemaVersions("M", 2, (lambda item: item,))
    if text.isascii() and text.isdigit() and int(text) >= 1:
        assert versions.version_of({STAMP: {"N": text}}) == int(text)
    else:
        with pytest.raises(InvalidRequest):
            versions.version_of({STAMP: {"N": text}})


def test_a_transaction_update_of_an_older_item_converges_it_and_commits(
    people: PersonRepository,
) -> None:
    put_raw(v1("p1", visits={"N": "1"}))
    put_raw(v1("p2"))
    tx = Transaction()
    with tx:
        tx.update(Person, ("t", "p1"), [Person.visits.add(1)])
        tx.update(Person, ("t", "p2"), [Person.visits.add(2)], condition=Person.last_name.exists())
        tx.save(Person(team="t", person_id="p3", first_name="C"))
    for pid, visits in (("p1", "2"), ("p2", "2")):
        raw = stored(pid)
        assert raw["visits"] == {"N": visits}
        assert raw[STAMP] == {"N": "2"}
        assert "full_name" not in raw
    put_raw(v1("p4"))
    with pytest.raises(TransactionCanceled) as canceled, Transaction() as tx:
        tx.update(Person, ("t", "p4"), [Person.visits.add(1)], condition=Person.first_name == "B")
    assert canceled.value.reasons[0] is not None
    assert stored("p4")["firstName"] == {"S": "Ada"}  # converged; the update still refused
    assert stored("p4")["visits"] == {"N": "0"}  # the default, written by the rewrite

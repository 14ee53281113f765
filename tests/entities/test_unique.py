"""Unique attributes: a guard item per value, moved and dropped with its item in one
transaction (moto: dynalite has no transactions), also under lost answers."""

from __future__ import annotations

import pytest

from portchops_models import ConditionFailed, InvalidRequest, Transaction
from portchops_models.errors import UniqueViolation
from portchops_models.settings import Settings, configure
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection
from tests.school_model import Student, Students


def stored(settings: Settings) -> dict[str, list[str]]:
    """Every item of the table, as pk -> [sk], read raw."""
    client = current_connection().client
    found: dict[str, list[str]] = {}
    for item in client.scan(TableName=settings.table_name("school"))["Items"]:
        found.setdefault(item["pk"]["S"], []).append(item["sk"]["S"])
    return found


def guards(settings: Settings) -> list[str]:
    return sorted(pk for pk in stored(settings) if pk.startswith("UNIQUE#"))


def test_a_second_student_with_the_same_email_is_refused(moto_school: Settings) -> None:
    students = Students()
    students.save(Student(student_id="s1", email="ada@example.com"))
    with pytest.raises(UniqueViolation) as refused:
        students.save(Student(student_id="s2", email="ada@example.com"))
    assert (refused.value.attribute, refused.value.value) == ("email", "ada@example.com")
    assert not students.exists("s2")
    assert guards(moto_school) == ["UNIQUE#student#email#ada@example.com"]
    with pytest.raises(UniqueViolation):  # create() too
        students.create(Student(student_id="s3", email="ada@example.com"))


def test_changing_the_email_moves_its_guard_and_frees_the_old_one(moto_school: Settings) -> None:
    students = Students()
    ada = students.save(Student(student_id="s1", email="ada@example.com"))
    ada.email = "ada@lovelace.org"
    students.save(ada)
    assert guards(moto_school) == ["UNIQUE#student#email#ada@lovelace.org"]
    students.save(Student(student_id="s2", email="ada@example.com"))  # free again
    assert len(guards(moto_school)) == 2


def test_deleting_frees_the_email(moto_school: Settings) -> None:
    students = Students()
    students.save(Student(student_id="s1", email="ada@example.com"))
    students.delete(students.get("s1"))
    assert stored(moto_school) == {}
    students.save(Student(student_id="s2", email="ada@example.com"))
    assert guards(moto_school) == ["UNIQUE#student#email#ada@example.com"]


def test_a_stale_version_writes_neither_item_nor_guard(moto_school: Settings) -> None:
    students = Students()
    students.save(Student(student_id="s1", email="a@example.com"))
    stale = students.get("s1")
    fresh = students.get("s1")
    fresh.name = "Ada"
    students.save(fresh)
    stale.email = "b@example.com"
    with pytest.raises(ConditionFailed):
        students.save(stale)
    assert guards(moto_school) == ["UNIQUE#student#email#a@example.com"]
    assert students.get("s1", consistent=True).email == "a@example.com"


def test_writes_that_cannot_move_guards_are_refused(moto_school: Settings) -> None:
    students = Students()
    with pytest.raises(InvalidRequest, match="unique attributes"):
        students.batch_save([Student(student_id="s1", email="a@example.com")])
    with pytest.raises(InvalidRequest, match="unique attributes"):
        students.batch_delete(["s1"])
    with pytest.raises(InvalidRequest, match="unique in Student"):
        students.update("s1", [Student.email.set("x@example.com")])
    with pytest.raises(InvalidRequest, match="unique attributes"), Transaction() as tx:
        tx.save(Student(student_id="s1", email="a@example.com"))
    assert stored(moto_school) == {}


def test_lost_answers_leave_no_stray_guard_and_no_double_write(
    moto_school: Settings, portchops_engine: str
) -> None:
    with FaultProxy(upstream=portchops_engine, seed=7) as proxy:
        configure(moto_school, endpoint_url=proxy.endpoint_url)
        proxy.faults = Faults(lost_answer=0.4, operations=frozenset({"TransactWriteItems"}))
        students = Students()
        for n in range(6):
            students.save(Student(student_id=f"s{n}", email=f"{n}@example.com"))
        moved = students.get("s0", consistent=True)
        moved.email = "zero@example.com"
        students.save(moved)
        with pytest.raises(UniqueViolation):
            students.save(Student(student_id="s9", email="1@example.com"))
        students.delete(students.get("s5", consistent=True))
        lost = proxy.stats.lost_answers
        configure(moto_school)
    assert lost > 0
    assert guards(moto_school) == sorted(
        f"UNIQUE#student#email#{e}@example.com" for e in ("zero", "1", "2", "3", "4")
    )
    versions = {s.student_id: s.version for s in Students().scan()}
    assert versions == {"s0": 2, "s1": 1, "s2": 1, "s3": 1, "s4": 1}


def test_the_policy_covers_one_entity_table_and_what_its_writes_send(
    moto_school: Settings, portchops_engine: str
) -> None:
    from portchops_models.admin.iam import (
        INDEX_ACTIONS,
        TABLE_ACTIONS,
        actions_for,
        policy_document,
    )
    from tests.school_model import Mark, Marks, Profile

    with FaultProxy(upstream=portchops_engine, seed=3) as proxy:
        configure(moto_school, endpoint_url=proxy.endpoint_url)
        students = Students(cache=None)
        ada = students.save(Student(student_id="s1", email="a@example.com"))
        ada.email = "b@example.com"
        students.save(ada)
        Marks().save(Mark(student_id="s1", lesson="l", try_no=1))
        Profile().query("s1")
        students.query("b@example.com", index="gsi1")
        students.delete(ada)
        sent = list(proxy.seen)
        configure(moto_school)
    on_table = {
        a for r in sent if "IndexName" not in (r.payload or {}) for a in actions_for(r.operation)
    }
    on_index = {r.operation for r in sent if "IndexName" in (r.payload or {})}
    assert on_table <= set(TABLE_ACTIONS)
    assert {"GetItem", "PutItem", "DeleteItem"} <= on_table  # a unique save: read, then its writes
    assert on_index <= set(INDEX_ACTIONS)
    doc = policy_document(settings=Settings(table_prefix="prod-"), models=[Student, Mark])
    tables = doc["Statement"][0]["Resource"]
    assert tables.count("arn:aws:dynamodb:*:*:table/prod-school") == 1
    assert "arn:aws:dynamodb:*:*:table/prod-school/index/gsi1" in doc["Statement"][1]["Resource"]

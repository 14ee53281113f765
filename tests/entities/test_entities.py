"""Entities on one table, on both engines over HTTP: keys composed and parsed,
collections typed per entity, an overloaded and a sparse index."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from pynamodb.attributes import UnicodeAttribute

from portchops_models import InvalidRequest, ItemNotFound
from portchops_models.entities import Entity
from portchops_models.models.shape import shape_of
from portchops_models.settings import Settings, configure
from portchops_models.tables import delete_table
from portchops_models.transport.connection import current_connection
from tests.school_model import (
    AsyncProfile,
    AsyncStudents,
    Badge,
    Badges,
    Mark,
    Marks,
    Profile,
    School,
    Student,
    Students,
)


def raw_item(settings: Settings, pk: str, sk: str) -> dict[str, dict[str, str]] | None:
    found = current_connection().client.get_item(
        TableName=settings.table_name("school"), Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )
    item: dict[str, dict[str, str]] | None = found.get("Item")
    return item


def test_keys_are_composed_on_write_and_parsed_on_read(school: Settings) -> None:
    Marks().save(Mark(student_id="s#1", lesson="intro", try_no=2, score=90))
    stored = raw_item(school, "STUDENT#s%231", "MARK#intro#002")
    assert stored is not None
    assert stored["_type"] == {"S": "mark"}
    assert stored["gsi1pk"] == {"S": "LESSON#intro"}
    mark = Marks().get(("s#1", "intro", 2))
    assert (mark.student_id, mark.lesson, mark.try_no, mark.score) == ("s#1", "intro", 2, 90)
    assert shape_of(Mark).key_of(stored) == ("s#1", "intro", 2)


def test_every_repository_method_works_on_an_entity(school: Settings) -> None:
    marks = Marks()
    marks.batch_save([Mark(student_id="s1", lesson="intro", try_no=n, score=n) for n in range(5)])
    got = marks.batch_get([("s1", "intro", n) for n in (0, 3, 7)])
    assert sorted(m.try_no for m in got) == [0, 3]
    page = marks.query("s1")
    assert [m.try_no for m in page] == [0, 1, 2, 3, 4]
    assert marks.count("s1") == 5
    updated = marks.update(("s1", "intro", 1), [Mark.score.set(50)])
    assert updated.score == 50
    marks.delete(marks.get(("s1", "intro", 4)))
    assert not marks.exists(("s1", "intro", 4))
    assert [m.try_no for m in marks.scan()] == [0, 1, 2, 3]


def test_a_query_of_one_entity_leaves_the_others_of_its_partition_out(
    moto_school: Settings,
) -> None:
    Students().save(Student(student_id="s1", email="a@example.com"))
    Marks().save(Mark(student_id="s1", lesson="intro", try_no=1))
    Badges().save(Badge(student_id="s1", badge="early-bird"))
    assert [b.badge for b in Badges().query("s1")] == ["early-bird"]
    assert [s.student_id for s in Students().query("s1")] == ["s1"]
    assert [b.badge for b in Badges().scan()] == ["early-bird"]


def test_a_collection_returns_each_entity_typed(moto_school: Settings) -> None:
    Students().save(Student(student_id="s1", email="a@example.com"))
    Marks().batch_save([Mark(student_id="s1", lesson="l", try_no=n) for n in range(3)])
    Badges().save(Badge(student_id="s1", badge="b1"))
    Marks().save(Mark(student_id="s2", lesson="l", try_no=1))  # another partition
    page = Profile().query("s1")
    assert [type(i).__name__ for i in page] == ["Badge", "Mark", "Mark", "Mark", "Student"]
    students: list[Student] = page.of(Student)
    assert [s.email for s in students] == ["a@example.com"]
    assert [m.try_no for m in page.of(Mark)] == [0, 1, 2]
    assert page.skipped == 0
    assert page.cursor is None
    with pytest.raises(InvalidRequest, match="not in this collection"):
        page.of(School)


def test_a_collection_pages_with_cursors_and_skips_unknown_types(school: Settings) -> None:
    Marks().batch_save([Mark(student_id="s1", lesson="l", try_no=n) for n in range(5)])
    current_connection().client.put_item(
        TableName=school.table_name("school"),
        Item={"pk": {"S": "STUDENT#s1"}, "sk": {"S": "NOTE#1"}, "_type": {"S": "note"}},
    )
    first = Profile().query("s1", limit=4)
    assert first.cursor is not None
    assert len(first) == 4
    rest = Profile().query("s1", cursor=first.cursor)
    assert len(first) + len(rest) == 5
    assert first.skipped + rest.skipped == 1
    whole = Profile().query_all("s1")
    assert (len(whole), whole.skipped) == (5, 1)


def test_async_faces(moto_school: Settings) -> None:
    async def main() -> tuple[str, int]:
        students = AsyncStudents()
        await students.save(Student(student_id="s9", email="z@example.com"))
        page = await AsyncProfile().query("s9")
        return (await students.get("s9")).email, len(page.of(Student))

    assert asyncio.run(main()) == ("z@example.com", 1)


def test_an_overloaded_index_serves_two_entities(school: Settings) -> None:
    Badges().save(Badge(student_id="s1", badge="intro", featured_on="intro"))
    Marks().batch_save(
        [Mark(student_id=s, lesson="intro", try_no=1) for s in ("s1", "s2", "s3")]
        + [Mark(student_id="s1", lesson="other", try_no=1)]
    )
    by_lesson = Marks().query("intro", index=School.gsi1)
    assert [m.student_id for m in by_lesson] == ["s1", "s2", "s3"]
    assert [b.badge for b in Badges().query("intro", index="gsi1")] == ["intro"]


def test_the_index_finds_a_student_by_email(moto_school: Settings) -> None:
    Students().save(Student(student_id="s1", email="a@example.com"))
    Marks().save(Mark(student_id="s1", lesson="a@example.com", try_no=1))
    by_email = Students().query("a@example.com", index="gsi1")
    assert [s.student_id for s in by_email] == ["s1"]


def test_a_sparse_index_holds_only_items_with_its_values(school: Settings) -> None:
    badges = Badges()
    badges.batch_save(
        [
            Badge(student_id="s1", badge="a", featured_on="2026-12-04"),
            Badge(student_id="s1", badge="b"),
        ]
    )
    assert [b.badge for b in badges.query("2026-12-04", index="gsi1")] == ["a"]
    stored = raw_item(school, "STUDENT#s1", "BADGE#b")
    assert stored is not None
    assert "gsi1pk" not in stored
    badge = badges.get(("s1", "a"))
    badge.featured_on = None
    badges.save(badge)  # no longer featured: out of the index
    assert list(badges.query("2026-12-04", index="gsi1")) == []


def test_bad_keys_are_typed_errors_before_the_wire(school: Settings) -> None:
    marks = Marks()
    with pytest.raises(InvalidRequest, match="must be a"):
        marks.get("s1")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="try_no: a number key part must be an int"):
        marks.get(("s1", "intro", "2"))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="does not fit 3 digits"):
        marks.save(Mark(student_id="s1", lesson="intro", try_no=1000))
    with pytest.raises(InvalidRequest, match="must not be empty"):
        marks.get(("", "intro", 1))
    with pytest.raises(InvalidRequest, match="part of Mark's key"):
        marks.update(("s1", "intro", 1), [Mark.lesson.set("x")])
    with pytest.raises(InvalidRequest, match="composed by the layer"):
        marks.update(("s1", "intro", 1), [Mark.gsi1pk.set("x")])
    with pytest.raises(InvalidRequest, match="narrow the query with filter_condition"):
        marks.query("s1", Mark.sk.startswith("MARK#"))
    with pytest.raises(InvalidRequest, match="has no index 'nope'"):
        Students().query("x", index="nope")
    with pytest.raises(ItemNotFound):
        marks.get(("s1", "intro", 1))


class Wrong(School):
    __entity__ = Entity("wrong", pk="W#{missing}", sk="X")
    thing = UnicodeAttribute()


class Glued(School):
    __entity__ = Entity("glued", pk="G#{a}{b}", sk="X")
    a = UnicodeAttribute()
    b = UnicodeAttribute()


def test_bad_declarations_are_refused_at_first_use() -> None:
    with pytest.raises(InvalidRequest, match="no attribute 'missing'"):
        shape_of(Wrong)
    with pytest.raises(InvalidRequest, match="separated by text"):
        shape_of(Glued)


def test_caches_and_exactly_once_updates_work_for_entities(
    school: Settings, engine_url: str
) -> None:
    from portchops_models.testing.faultproxy import FaultProxy, Faults

    marks = Marks()  # cached by default
    marks.save(Mark(student_id="s1", lesson="l", try_no=1, score=0))
    assert marks.get(("s1", "l", 1)).score == 0
    assert marks.cache is not None
    hits = marks.cache.hits
    assert marks.get(("s1", "l", 1)).score == 0
    assert marks.cache.hits == hits + 1  # served by the cache, keyed by the natural key
    with FaultProxy(upstream=engine_url, seed=11) as proxy:
        configure(school, endpoint_url=proxy.endpoint_url)
        proxy.faults = Faults(lost_answer=0.5, operations=frozenset({"UpdateItem"}))
        for _ in range(6):
            marks.update(("s1", "l", 1), [Mark.score.add(1)])
        lost = proxy.stats.lost_answers
        configure(school)
    assert lost > 0
    assert marks.get(("s1", "l", 1)).score == 6  # each add applied once, the cache evicted


def test_migrations_and_the_test_kit_create_one_table_for_all_entities(
    portchops_engine: str, tmp_path: Path
) -> None:
    from portchops_models.migrate import downgrade, upgrade
    from portchops_models.tables import describe_table
    from portchops_models.testing.plugin import configured_tables
    from tests.migrate.test_migrate import quiet

    with configured_tables(portchops_engine, (Student, Mark, Badge)) as settings:
        table = describe_table(settings.table_name("school"))
        assert table is not None
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1"]
        Marks().save(Mark(student_id="s1", lesson="l", try_no=1))
    (tmp_path / "0001_school.py").write_text(
        '"""The school table, for every entity on it."""\n\n'
        "from tests.school_model import Mark, Student\n\n\n"
        "def up(ctx):\n    ctx.create_table(Student)\n    ctx.create_table(Mark)\n\n\n"
        "def down(ctx):\n    ctx.drop_table(Student)\n"
    )
    prefix = f"m{uuid.uuid4().hex[:10]}-"
    configured = configure(endpoint_url=portchops_engine, table_prefix=prefix)
    try:
        upgrade(path=tmp_path, console=quiet())
        assert describe_table(configured.table_name("school")) is not None
        Marks().save(Mark(student_id="s1", lesson="l", try_no=1))
        downgrade("0000", path=tmp_path, console=quiet())
        assert describe_table(configured.table_name("school")) is None
    finally:
        delete_table(configured.table_name("schema-migrations"), conn=current_connection())

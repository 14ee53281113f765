"""Change streams on an entity table (moto's Streams API): a worker and a Lambda event
of one entity see its changes only, typed and keyed by its natural key."""

from __future__ import annotations

from collections.abc import Hashable, Iterator

import pytest

from portchops_models.settings import Settings
from portchops_models.streams import Change, StreamWorker, changes_from_event, enable_stream
from tests.entities.conftest import school_on
from tests.school_model import Badge, Badges, Mark, Marks, School, Student, Students

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def school(portchops_engine: str) -> Iterator[Settings]:
    """The school table on moto with its stream on (and the workers' lease table after)."""
    for configured in school_on(portchops_engine, "stream-leases"):
        enable_stream(Mark)
        yield configured


def test_a_worker_of_one_entity_sees_only_its_changes(school: Settings) -> None:
    Students().save(Student(student_id="s1", email="a@example.com"))
    Marks().save(Mark(student_id="s1", lesson="l", try_no=1, score=10))
    Badges().save(Badge(student_id="s1", badge="b"))
    Marks().update(("s1", "l", 1), [Mark.score.set(20)])
    Badges().delete(("s1", "b"))  # the last records are another entity's
    seen: list[tuple[str, Hashable, int | None]] = []

    def handle(changes: list[Change[Mark]]) -> None:
        for change in changes:
            seen.append((change.kind, change.key, None if change.new is None else change.new.score))

    result = StreamWorker(Mark, handle, name="marks").run(until_idle=True)
    assert seen == [("insert", ("s1", "l", 1), 10), ("modify", ("s1", "l", 1), 20)]
    assert result.records == 2
    again: list[tuple[str, Hashable, int | None]] = []
    StreamWorker(Mark, lambda cs: again.extend((c.kind, c.key, 0) for c in cs), name="marks").run(
        until_idle=True
    )
    assert again == []  # checkpointed past the other entities' records too


def test_a_lambda_event_decodes_one_entity_and_leaves_the_rest() -> None:
    def record(kind: str, image: dict[str, dict[str, str]], n: int) -> dict[str, object]:
        keys = {"pk": image["pk"], "sk": image["sk"]}
        return {
            "eventName": kind,
            "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": str(n)},
        }

    mark = Mark(student_id="s#1", lesson="l", try_no=3, score=5).serialize()
    badge = Badge(student_id="s#1", badge="b").serialize()
    keys_only = {
        "eventName": "REMOVE",
        "dynamodb": {"Keys": {"pk": badge["pk"], "sk": badge["sk"]}, "SequenceNumber": "9"},
    }
    event = {"Records": [record("INSERT", badge, 1), record("INSERT", mark, 2), keys_only]}
    changes = changes_from_event(event, Mark)
    assert [(c.kind, c.key) for c in changes] == [("insert", ("s#1", "l", 3))]
    assert changes[0].new is not None
    assert changes[0].new.score == 5
    assert [c.key for c in changes_from_event(event, Badge)] == [("s#1", "b"), ("s#1", "b")]
    assert School.base_table_name == "school"

"""Tables from models: local secondary indexes are created with the table and queryable."""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex

from portchops_models import BaseModel, Repository
from portchops_models.settings import Settings
from portchops_models.tables import create_table, delete_table, describe_table, table_spec


class ByScore(LocalSecondaryIndex["Attempt"]):
    class Meta:
        index_name = "by-score"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    score = NumberAttribute(range_key=True)


class Attempt(BaseModel):
    base_table_name: ClassVar[str] = "attempts"

    user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    attempt_id = UnicodeAttribute(range_key=True, attr_name="attemptId")
    score = NumberAttribute()

    by_score = ByScore()


class Attempts(Repository[Attempt, tuple[str, str]]):
    model = Attempt


def test_spec_includes_local_indexes_even_without_global_ones() -> None:
    spec = table_spec(Attempt, table_name="t-attempts", indexes=False)
    assert [i["IndexName"] for i in spec["LocalSecondaryIndexes"]] == ["by-score"]
    assert {"AttributeName": "score", "AttributeType": "N"} in spec["AttributeDefinitions"]


def test_local_index_is_created_and_queried_consistently(tables: Settings) -> None:
    create_table(Attempt)
    try:
        desc = describe_table(Attempt.table_name())
        assert desc is not None
        assert [i["IndexName"] for i in desc["LocalSecondaryIndexes"]] == ["by-score"]
        repo = Attempts(cache=None)
        repo.batch_save(
            Attempt(user_id="u1", attempt_id=f"a{n}", score=n * 7 % 10) for n in range(8)
        )
        page = repo.query("u1", Attempt.score >= 5, index=Attempt.by_score, consistent=True)
        assert [a.score for a in page] == sorted(n * 7 % 10 for n in range(8) if n * 7 % 10 >= 5)
    finally:
        delete_table(Attempt.table_name())

"""Projection classes: bound at definition, validated, typed values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError, create_model

from portchops_models import InvalidRequest, Projection, User, UserProgress


class UserSummary(Projection[User]):
    user_id: str
    name: str


def test_a_projection_knows_its_model_and_attribute_names() -> None:
    assert UserSummary.model_class() is User
    assert UserSummary.attribute_names() == ("userId", "name")


def test_an_unknown_field_fails_when_the_class_is_defined() -> None:
    with pytest.raises(InvalidRequest, match="no attribute"):

        class Broken(Projection[User]):
            user_id: str
            nickname: str


def test_an_empty_projection_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="at least one field"):

        class Empty(Projection[UserProgress]):
            pass


def test_from_raw_deserialises_with_the_model_attributes() -> None:
    class Row(Projection[UserProgress]):
        lesson_id: str
        score: float
        completed_at: datetime | None = None
        ttl: datetime

    row = Row.from_raw(
        {
            "lessonId": {"S": "l1"},
            "score": {"N": "91.5"},
            "ttl": {"N": "1900000000"},
            "userId": {"S": "ignored"},
        }
    )
    assert row == Row(lesson_id="l1", score=91.5, ttl=datetime.fromtimestamp(1_900_000_000, tz=UTC))


def test_projections_are_validated_and_frozen() -> None:
    with pytest.raises(InvalidRequest, match="name"):
        UserSummary.from_raw({"userId": {"S": "u1"}})  # name missing
    summary = UserSummary(user_id="u1", name="Ada")
    with pytest.raises(ValidationError):
        summary.name = "x"  # type: ignore[misc]


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20).filter(
        lambda n: n not in User.get_attributes() and not n.startswith("_") and n != "model_config"
    )
)
def test_any_unknown_field_fails_at_definition(field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        create_model(f"Bad_{field}", __base__=Projection[User], **{field: (str, ...)})


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
def test_naive_datetimes_never_become_a_ttl(moment: datetime) -> None:
    with pytest.raises(InvalidRequest, match="naive"):
        UserProgress(user_id="u", lesson_id="l", ttl=moment)

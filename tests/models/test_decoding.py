"""`model_decoder` builds the same objects as PynamoDB's `from_raw_data`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portchops_models import User, UserProgress
from portchops_models.models.decoding import model_decoder

texts = st.text(min_size=1, max_size=20)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False, width=32)
)


def _same(model: type[Any], raw: dict[str, dict[str, Any]]) -> None:
    ours = model_decoder(model)(raw)
    theirs = model.from_raw_data(raw)
    assert type(ours) is type(theirs)
    for name in model.get_attributes():
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(a, datetime) and name in ("created_at", "updated_at", "ttl"):
            if model.get_attributes()[name].attr_name in raw:
                assert a == b, name
            else:  # a default "now": both computed a moment apart
                assert abs(a - b) < timedelta(seconds=5), name
        else:
            assert a == b, name
            assert type(a) is type(b), name


@given(
    user_id=texts,
    email=st.one_of(st.none(), texts),
    created=st.one_of(st.none(), moments),
    version=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_users(
    user_id: str, email: str | None, created: datetime | None, version: int | None
) -> None:
    raw: dict[str, dict[str, Any]] = {"userId": {"S": user_id}, "name": {"S": "N"}}
    if email is not None:
        raw["email"] = {"S": email}
    if created is not None:
        raw["createdAt"] = {"S": User.created_at.serialize(created)}
    if version is not None:
        raw["version"] = {"N": str(version)}
    _same(User, raw)


@given(
    score=st.one_of(st.none(), numbers),
    attempts=st.one_of(st.none(), st.integers(0, 10**6)),
    completed=st.one_of(st.none(), moments),
    ttl=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
    null_completed=st.booleans(),
)
def test_progress_rows(
    score: float | None,
    attempts: int | None,
    completed: datetime | None,
    ttl: int | None,
    null_completed: bool,
) -> None:
    raw: dict[str, dict[str, Any]] = {"userId": {"S": "u"}, "lessonId": {"S": "l"}}
    if score is not None:
        raw["score"] = {"N": UserProgress.score.serialize(score)}
    if attempts is not None:
        raw["attempts"] = {"N": str(attempts)}
    if completed is not None:
        raw["completedAt"] = {"S": UserProgress.completed_at.serialize(completed)}
    elif null_completed:
        raw["completedAt"] = {"NULL": True}
    if ttl is not None:
        raw["ttl"] = {"N": str(ttl)}
    _same(UserProgress, raw)


def test_odd_but_valid_stored_formats_fall_back_to_pynamodb() -> None:
    raw = {
        "userId": {"S": "u"},
        "lessonId": {"S": "l"},
        "score": {"N": "007.50"},
        "attempts": {"N": "1e2"},
        "completedAt": {"S": "2024-02-29T23:59:59.000001+0000"},
    }
    try:
        UserProgress.from_raw_data(raw)
    except ValueError:
        return  # PynamoDB refuses it too: nothing to compare
    _same(UserProgress, raw)


def test_remembered_conversions_stay_bounded_and_right() -> None:
    from portchops_models.models.decoding import _MEMO_MAX, _ttl_converter

    convert = _ttl_converter()
    for n in range(_MEMO_MAX + 10):
        assert convert(str(n)) == datetime.fromtimestamp(n, tz=UTC)
        assert len(convert) <= _MEMO_MAX

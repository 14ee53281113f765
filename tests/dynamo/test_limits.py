"""Bad input never reaches the engine: keys, values, sizes (hypothesis)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portchops_models import InvalidRequest, UserProgress, UserProgressRepository, UserRepository
from portchops_models.dynamo.limits import ITEM_MAX_BYTES, check_key_part, item_size
from portchops_models.metrics import Metrics
from portchops_models.settings import Settings

bad_keys = st.one_of(
    st.just(""),
    st.text(min_size=2049, max_size=2100),
    st.text(alphabet="é", min_size=1025, max_size=1100),  # 2 bytes a char: over 2048 bytes
    st.integers(),
    st.none(),
    st.binary(max_size=5),
    st.floats(),
    st.lists(st.text(), max_size=2),
)


@given(bad_keys)
def test_bad_partition_keys(value: object) -> None:
    with pytest.raises(InvalidRequest):
        check_key_part(value, name="userId", max_bytes=2048)


@given(st.text(min_size=1, max_size=512))
def test_good_keys_pass(value: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) <= 2048 and not any(
        0xD800 <= ord(c) <= 0xDFFF for c in value
    ):
        assert check_key_part(value, name="k", max_bytes=2048) == value


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"ab": {"S": "xyz"}}) == 5
    assert item_size({"n": {"BOOL": True}}) == 2
    assert item_size({"é": {"S": "é"}}) == 4


@pytest.fixture
def counted(tables: Settings) -> Metrics:
    return Metrics()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user_id=bad_keys,
    score=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_bad_input_sends_nothing_and_changes_nothing(
    counted: Metrics, user_id: object, score: float
) -> None:
    users = UserRepository(metrics=counted)
    progress = UserProgressRepository(metrics=counted)
    before = counted.snapshot()["requests"]
    with pytest.raises(InvalidRequest):
        users.get(user_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        users.batch_get(["ok", user_id])  # type: ignore[list-item]
    with pytest.raises(InvalidRequest):
        progress.record_attempt("u1", "l1", score)
    with pytest.raises(InvalidRequest):
        progress.save(UserProgress(user_id="u1", lesson_id="l1", score=score))
    with pytest.raises(InvalidRequest):
        progress.query(user_id)  # type: ignore[arg-type]
    assert counted.snapshot()["requests"] == before


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(ITEM_MAX_BYTES - 50, ITEM_MAX_BYTES + 5000))
def test_item_size_limit_is_enforced_before_the_wire(counted: Metrics, size: int) -> None:
    repo = UserProgressRepository(metrics=counted, cache=None)
    row = UserProgress(user_id="u1", lesson_id="big", status="x" * size)
    raw_size = item_size(row.serialize())
    before = counted.snapshot()["requests"]
    if raw_size > ITEM_MAX_BYTES:
        with pytest.raises(InvalidRequest):
            repo.save(row)
        assert counted.snapshot()["requests"] == before
    else:
        repo.save(row)
        assert repo.get("u1", "big").status == "x" * size


def test_naive_datetime_is_rejected_before_the_wire(tables: Settings) -> None:
    with pytest.raises(InvalidRequest, match="naive"):
        UserProgress(user_id="u", lesson_id="l", ttl=datetime(2030, 1, 1))

"""TableShape's TTL filtering: the page-wide `unexpired` agrees with `expired` item by item."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portchops_models.models import User, UserProgress
from portchops_models.models.shape import shape_of

_ttl_values = st.one_of(
    st.none(),
    st.integers(0, 4_000_000_000).map(lambda n: {"N": str(n)}),
    st.floats(0, 4e9, allow_nan=False).map(lambda f: {"N": repr(f)}),
    st.just({"N": "not-a-number"}),
    st.just({"S": "1"}),
    st.just({"NULL": True}),
)


@given(st.lists(_ttl_values, max_size=30), st.floats(0, 4e9, allow_nan=False))
def test_unexpired_keeps_exactly_the_items_expired_rejects(
    ttls: list[dict[str, Any] | None], now: float
) -> None:
    shape = shape_of(UserProgress)
    items = [
        {"userId": {"S": "u"}, "lessonId": {"S": f"l{i}"}, **({"ttl": t} if t else {})}
        for i, t in enumerate(ttls)
    ]
    assert shape.unexpired(items, now) == [i for i in items if not shape.expired(i, now)]


def test_a_model_without_ttl_keeps_everything() -> None:
    items = [{"userId": {"S": "u1"}}, {"userId": {"S": "u2"}}]
    assert shape_of(User).unexpired(items, 0.0) is items

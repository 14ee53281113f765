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


_key_parts = st.one_of(
    st.text(max_size=5),
    st.text(alphabet="ab", min_size=1020, max_size=1030),
    st.text(alphabet="ab", min_size=2040, max_size=2050),
    st.integers(),
    st.none(),
)


def _general_canonical(shape: Any, key: object) -> object:
    """`canonical` through the key codec, without the string shortcut."""
    if shape.range_key is None:
        return shape.hash_key.decode(shape.hash_key.encode(shape.key_parts(key)[0]))
    first, second = shape.key_parts(key)
    return (
        shape.hash_key.decode(shape.hash_key.encode(first)),
        shape.range_key.decode(shape.range_key.encode(second)),
    )


def _outcome(fn: Any, *args: object) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except Exception as err:
        return ("error", type(err), str(err))


@given(st.one_of(_key_parts, st.tuples(_key_parts, _key_parts)))
def test_string_key_shortcuts_agree_with_the_key_codec(key: object) -> None:
    for model in (User, UserProgress):
        shape = shape_of(model)
        general = _outcome(_general_canonical, shape, key)
        assert _outcome(shape.canonical, key) == general
        assert _outcome(shape.canonical_keys, [key]) == (
            general if general[0] == "error" else ("ok", [general[1]])
        )
        if general[0] == "ok":
            canonical = general[1]
            raw = shape.raw_keys([canonical])
            assert raw == [shape.raw_key(canonical)]
            assert shape.key_of(raw[0]) == canonical

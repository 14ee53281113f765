"""Key templates: what is rendered parses back to the same values, whatever they hold,
and bad templates or values are typed errors."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portchops_models import InvalidRequest
from portchops_models.models.shape import shape_of
from portchops_models.models.templates import KeyTemplate
from tests.school_model import Badge, Mark

KINDS = {"course": "S", "lesson": "S", "position": "N", "try_no": "N"}
MARK = KeyTemplate.compile("MARK#{course}#{lesson}#{try_no:3}", KINDS)  # type: ignore[arg-type]
OPEN = KeyTemplate.compile("P#{position}#{course}", KINDS)  # type: ignore[arg-type]

text = st.text(min_size=1, max_size=40)


@given(course=text, lesson=text, try_no=st.integers(0, 999))
@example(course="a#b", lesson="%23", try_no=0)
@example(course="%", lesson="#", try_no=999)
def test_rendered_keys_parse_back_to_their_values(course: str, lesson: str, try_no: int) -> None:
    values = {"course": course, "lesson": lesson, "try_no": try_no}
    rendered = MARK.render(values)
    assert rendered.startswith(MARK.prefix)
    assert rendered.count("#") == 3  # separators inside values are escaped
    assert MARK.parse(rendered) == values


@given(position=st.integers(-(10**30), 10**30), course=text)
def test_unpadded_numbers_round_trip_signed(position: int, course: str) -> None:
    values = {"position": position, "course": course}
    assert OPEN.parse(OPEN.render(values)) == values


@given(a=st.integers(0, 999), b=st.integers(0, 999))
def test_padded_numbers_sort_as_their_values(a: int, b: int) -> None:
    ka = MARK.render({"course": "c", "lesson": "l", "try_no": a})
    kb = MARK.render({"course": "c", "lesson": "l", "try_no": b})
    assert (ka < kb) == (a < b)


@given(value=st.one_of(st.none(), st.booleans(), st.floats(), st.binary(), st.just("")))
def test_bad_values_are_typed_errors(value: object) -> None:
    with pytest.raises(InvalidRequest):
        MARK.render({"course": value, "lesson": "l", "try_no": 1})
    if not isinstance(value, str):
        with pytest.raises(InvalidRequest):
            MARK.render({"course": "c", "lesson": "l", "try_no": value})


@given(junk=st.text(max_size=30))
def test_strings_of_another_shape_do_not_parse(junk: str) -> None:
    parsed = MARK.parse(junk)
    if parsed is not None:  # then it really is a key of this template
        assert MARK.render(parsed) == junk


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "non-empty"),
        ("A#{nope}", "no attribute 'nope'"),
        ("A#{course}{lesson}", "separated by text"),
        ("A#{course}-{lesson}", "separated by text"),
        ("A#{course}#{course}", "appears twice"),
        ("A#{course:3}", "only number fields are padded"),
        ("A#{course", "brace outside"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        KeyTemplate.compile(template, KINDS)  # type: ignore[arg-type]


@given(
    student=text,
    lesson=text,
    try_no=st.integers(0, 999),
)
def test_an_entity_shape_round_trips_natural_keys(student: str, lesson: str, try_no: int) -> None:
    shape = shape_of(Mark)
    key = (student, lesson, try_no)
    assert shape.key_of(shape.raw_key(key)) == key
    assert shape_of(Badge).canonical((student, lesson)) == (student, lesson)


@given(key=st.one_of(st.text(), st.tuples(st.text()), st.tuples(st.integers(), st.text())))
def test_a_natural_key_of_the_wrong_shape_is_a_typed_error(key: object) -> None:
    with pytest.raises(InvalidRequest):
        shape_of(Mark).raw_key(key)


def test_a_composed_key_over_dynamodbs_size_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="2048"):
        shape_of(Mark).raw_key(("x" * 2100, "l", 1))

"""Key templates: composite DynamoDB key strings built from, and parsed back into, values.

A template is literal text with fields in braces, ``"USER#{user_id}"`` or
``"PROGRESS#{course}#{position:4}"``. `KeyTemplate.render` fills the fields from
a model's attribute values; `KeyTemplate.parse` reads them back from a stored key.
``#`` is the separator: between two fields the literal text must hold one, so a
key parses one way only.

Values are escaped, never refused for what they hold: ``%`` is stored as ``%25``
and ``#`` as ``%23``, so a user id ``"a#b"`` is a key part like any other and comes
back as it was. Number fields take ``int`` (not ``bool``); ``{position:4}``
pads to four digits, so sort keys order by value (0 to 9999 there; a negative or
wider number is refused rather than mis-ordered).

Example:
    >>> t = KeyTemplate.compile("PROGRESS#{course}#{position:4}", {"course": "S", "position": "N"})
    >>> t.render({"course": "py#2", "position": 7})
    'PROGRESS#py%232#0007'
    >>> t.parse('PROGRESS#py%232#0007')
    {'course': 'py#2', 'position': 7}
    >>> t.prefix
    'PROGRESS#'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidRequest

__all__ = ["FieldKind", "KeyTemplate", "SEPARATOR"]

SEPARATOR = "#"
FieldKind = Literal["S", "N"]

_UNESCAPE = re.compile("%(25|23)")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([1-9][0-9]?))?\}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: FieldKind
    width: int | None


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    """A compiled key template (build it with `compile`).

    Attributes:
        text: the template as declared.
        fields: the attribute names it reads, in order.
        prefix: the literal text before the first field (the whole key when it has none).
    """

    text: str
    fields: tuple[str, ...]
    prefix: str
    _literals: tuple[str, ...]
    _kinds: tuple[_Field, ...]
    _pattern: re.Pattern[str]

    @classmethod
    def compile(cls, text: str, kinds: Mapping[str, FieldKind]) -> KeyTemplate:
        """Compile `text` against the kinds of the attributes it may name.

        Raises:
            InvalidRequest: an unknown field, a field twice, two fields without a ``#``
                between them, or a padded string field.
        """
        if not isinstance(text, str) or not text:
            raise InvalidRequest(f"a key template must be a non-empty str, got {text!r}")
        literals: list[str] = []
        fields: list[_Field] = []
        at = 0
        for match in _FIELD.finditer(text):
            literals.append(text[at : match.start()])
            name, width = match.group(1), match.group(2)
            if name not in kinds:
                known = ", ".join(sorted(kinds)) or "none"
                raise InvalidRequest(f"key template {text!r}: no attribute {name!r} ({known})")
            if any(f.name == name for f in fields):
                raise InvalidRequest(f"key template {text!r}: {name} appears twice")
            kind = kinds[name]
            if width is not None and kind != "N":
                raise InvalidRequest(f"key template {text!r}: only number fields are padded")
            fields.append(_Field(name, kind, None if width is None else int(width)))
            at = match.end()
        literals.append(text[at:])
        if "{" in "".join(literals) or "}" in "".join(literals):
            raise InvalidRequest(f"key template {text!r}: a brace outside a {{field}}")
        for between in literals[1:-1]:
            if SEPARATOR not in between:
                raise InvalidRequest(
                    f"key template {text!r}: fields must be separated by text with a "
                    f"{SEPARATOR!r} (else a key would parse more than one way)"
                )
        pattern = "".join(
            re.escape(literal) + ("" if i == len(fields) else f"([^{SEPARATOR}]*)")
            for i, literal in enumerate(literals)
        )
        return cls(
            text=text,
            fields=tuple(f.name for f in fields),
            prefix=literals[0],
            _literals=tuple(literals),
            _kinds=tuple(fields),
            _pattern=re.compile(pattern),
        )

    def render(self, values: Mapping[str, object]) -> str:
        """The key string for these values.

        Raises:
            InvalidRequest: a missing, empty or ill-typed value, naming its field.
        """
        out = [self._literals[0]]
        for field, literal in zip(self._kinds, self._literals[1:], strict=True):
            out.append(_part(field, values.get(field.name)))
            out.append(literal)
        return "".join(out)

    def parse(self, text: str) -> dict[str, object] | None:
        """The field values of a stored key, or ``None`` if it is not of this template."""
        match = self._pattern.fullmatch(text)
        if match is None:
            return None
        values: dict[str, object] = {}
        for field, raw in zip(self._kinds, match.groups(), strict=True):
            if field.kind == "N":
                if not re.fullmatch(r"-?[0-9]+", raw):
                    return None
                values[field.name] = int(raw)
            else:
                if not raw:
                    return None
                values[field.name] = _UNESCAPE.sub(_unescaped, raw)
        return values


def _part(field: _Field, value: object) -> str:
    if value is None:
        raise InvalidRequest(f"{field.name} is required (a part of a key)")
    if field.kind == "N":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(
                f"{field.name}: a number key part must be an int, got {type(value).__name__}"
            )
        if field.width is None:
            return str(value)
        if value < 0 or value >= 10**field.width:
            raise InvalidRequest(
                f"{field.name}: {value} does not fit {field.width} digits (0 to "
                f"{10**field.width - 1}); a padded key part orders by value only in range"
            )
        return str(value).zfill(field.width)
    if not isinstance(value, str):
        raise InvalidRequest(f"{field.name}: a key part must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidRequest(f"{field.name}: a key part must not be empty")
    return value.replace("%", "%25").replace(SEPARATOR, "%23")


def _unescaped(match: re.Match[str]) -> str:
    return "%" if match.group(1) == "25" else SEPARATOR

"""Expression building: every attribute name goes through ExpressionAttributeNames.

DynamoDB has 573 reserved words (``name``, ``status``, ``ttl``...), so names are
never written into an expression directly. `Expression` collects placeholders
for names and values, and delegates conditions and update actions to
PynamoDB's own serialisers, which share the same placeholder dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action, Update

from ..errors import InvalidRequest

__all__ = ["MAX_EXPRESSION_BYTES", "Expression"]

MAX_EXPRESSION_BYTES = 4096


class Expression:
    """Placeholders for one request; `placeholders` gives the request's fields for them."""

    __slots__ = ("names", "values")

    def __init__(self) -> None:
        # attribute name -> placeholder (PynamoDB's orientation), and placeholder -> value
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        """The ``#n`` placeholder for an attribute name."""
        placeholder = self.names.get(attr)
        if placeholder is None:
            placeholder = self.names[attr] = f"#{len(self.names)}"
        return placeholder

    def value(self, value: dict[str, Any]) -> str:
        """The ``:v`` placeholder for a serialised attribute value."""
        placeholder = f":{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def projection(self, attrs: Iterable[str]) -> str:
        """A ProjectionExpression naming each attribute once."""
        return ", ".join(dict.fromkeys(self.name(a) for a in attrs))

    def condition(self, condition: Condition) -> str:
        """Serialise a PynamoDB condition (e.g. ``User.email == "x"``)."""
        return check_size(condition.serialize(self.names, self.values))

    def update(self, actions: Sequence[Action]) -> str:
        """Serialise PynamoDB update actions (e.g. ``UserProgress.attempts.add(1)``)."""
        if not actions:
            raise InvalidRequest("an update needs at least one action")
        serialized = Update(*actions).serialize(self.names, self.values)
        if serialized is None:
            raise InvalidRequest("an update needs at least one action")
        return check_size(serialized)

    def placeholders(self) -> dict[str, Any]:
        """The ``ExpressionAttributeNames`` / ``ExpressionAttributeValues`` of the request
        (each only when used), for the caller to add to its parameters."""
        fields: dict[str, Any] = {}
        if self.names:
            fields["ExpressionAttributeNames"] = {v: k for k, v in self.names.items()}
        if self.values:
            fields["ExpressionAttributeValues"] = self.values
        return fields


def check_size(expression: str) -> str:
    """Reject an expression over DynamoDB's 4 KB limit before it is sent."""
    if len(expression.encode()) > MAX_EXPRESSION_BYTES:
        raise InvalidRequest(f"expression is over {MAX_EXPRESSION_BYTES} bytes")
    return expression

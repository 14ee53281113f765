"""Collections: one Query over a partition several entities share, typed per entity.

Written once for both APIs (`portchops_models.entities`' `Collection` and
`AsyncCollection` run it). The request is built by `collection_query` (pure); a
page is decoded by `fetch_collection`: each item by the decoder of its stored
entity type, items of types the collection does not know skipped and counted
(never decoded as something else), expired ones left out as on every read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..dynamo.cursor import decode_cursor, encode_cursor
from ..dynamo.expressions import Expression
from ..errors import InvalidRequest
from ..models.base import BaseModel
from ..models.entity import TYPE_ATTRIBUTE
from ..models.shape import RawItem, TableShape
from . import requests
from .context import Bound

__all__ = ["CollectionPage", "Members", "collection_query", "fetch_collection"]

E = TypeVar("E", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CollectionPage:
    """One page of a collection: items of several entities, in the partition's order.

    Attributes:
        items: every decoded item, in sort key order.
        cursor: pass it back as ``cursor=`` for the next page; ``None`` on the last.
        skipped: items of entity types the collection does not know (left out).
    """

    items: list[BaseModel]
    cursor: str | None
    skipped: int = 0
    _known: tuple[type[BaseModel], ...] = field(default=(), repr=False)

    def of(self, entity: type[E]) -> list[E]:
        """The page's items of one entity, typed::

            page.of(Student)  # -> list[Student]

        Raises:
            InvalidRequest: `entity` is not one of the collection's.
        """
        if entity not in self._known:
            names = ", ".join(e.__name__ for e in self._known)
            raise InvalidRequest(f"{entity!r} is not in this collection ({names})")
        return [item for item in self.items if type(item) is entity]

    def __iter__(self) -> Iterator[BaseModel]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Members:
    """The entities of a collection, checked once: one table, one partition template."""

    shapes: Mapping[str, TableShape]
    decoders: Mapping[str, Callable[[RawItem], BaseModel]]
    entities: tuple[type[BaseModel], ...]

    @classmethod
    def of(
        cls,
        entities: Sequence[type[BaseModel]],
        shape_of: Callable[[type[BaseModel]], TableShape],
        decoder: Callable[[type[BaseModel]], Callable[[RawItem], BaseModel]],
    ) -> Members:
        """Check `entities` and make their decoders.

        Raises:
            InvalidRequest: not entities, of different tables or partition templates,
                or two with the same type name.
        """
        if not entities:
            raise InvalidRequest("a collection needs at least one entity")
        shapes: dict[str, TableShape] = {}
        for entity in entities:
            shape = shape_of(entity)
            keys = shape.entity
            if keys is None:
                raise InvalidRequest(f"{entity.__name__} is not an entity")
            first = next(iter(shapes.values()), shape)
            assert first.entity is not None
            if entity.base_table_name != first.model.base_table_name:
                raise InvalidRequest(
                    f"{entity.__name__} is on table {entity.base_table_name!r}, "
                    f"{first.model.__name__} on {first.model.base_table_name!r}"
                )
            if keys.pk.text != first.entity.pk.text:
                raise InvalidRequest(
                    f"{entity.__name__}'s partition is {keys.pk.text!r}, "
                    f"{first.model.__name__}'s {first.entity.pk.text!r}: a collection "
                    "shares one partition template"
                )
            if keys.name in shapes:
                raise InvalidRequest(f"two entities of the collection are named {keys.name!r}")
            shapes[keys.name] = shape
        return cls(
            shapes=shapes,
            decoders={name: decoder(shape.model) for name, shape in shapes.items()},
            entities=tuple(entities),
        )

    @property
    def anchor(self) -> TableShape:
        return next(iter(self.shapes.values()))


def collection_query(
    members: Members,
    table: str,
    partition: object,
    *,
    limit: int | None,
    newest_first: bool,
    consistent: bool,
) -> requests.QueryRequest:
    """The Query of one shared partition (no type filter: every entity's items)."""
    anchor = members.anchor
    keys = anchor.entity
    assert keys is not None
    _template, value = keys.partition(partition, None)
    expr = Expression()
    hash_attr = anchor.hash_key
    params: dict[str, Any] = {
        "KeyConditionExpression": f"{expr.name(hash_attr.name)} = "
        f"{expr.value(hash_attr.encode(value))}",
    }
    if limit is not None:
        params["Limit"] = requests.check_limit(limit)
    if newest_first:
        params["ScanIndexForward"] = False
    if consistent:
        params["ConsistentRead"] = True
    params.update(expr.placeholders())
    params["TableName"] = table
    params["ReturnConsumedCapacity"] = "TOTAL"
    scope = (table, "collection", ",".join(sorted(members.shapes)), value, str(newest_first))
    return requests.QueryRequest(params, scope)


async def fetch_collection(
    ctx: Bound[Any], members: Members, built: requests.QueryRequest, cursor: str | None
) -> CollectionPage:
    """Send one page of a collection query from `cursor` and decode it per entity."""
    params = dict(built.params)
    secret = ctx.conn.settings.cursor_secret
    signing = secret.get_secret_value() if secret is not None else None
    if cursor is not None:
        params["ExclusiveStartKey"] = decode_cursor(cursor, scope=built.scope, secret=signing)
    response = await ctx.send("Query", params)
    now = time.time()
    items: list[BaseModel] = []
    skipped = 0
    for raw in response.get("Items", []):
        kind = raw.get(TYPE_ATTRIBUTE, {}).get("S")
        shape = members.shapes.get(kind) if isinstance(kind, str) else None
        if shape is None:
            skipped += 1
            continue
        if not shape.expired(raw, now):
            items.append(members.decoders[kind](raw))
    last = response.get("LastEvaluatedKey")
    next_cursor = encode_cursor(last, scope=built.scope, secret=signing) if last else None
    return CollectionPage(items, next_cursor, skipped, members.entities)

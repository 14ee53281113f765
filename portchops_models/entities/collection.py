"""`Collection`: the items several entities keep in one partition, in one Query.

Subclass it and list the entities (they share a table and a partition template)::

    class Profile(Collection):
        entities = (Student, Mark, Badge)

    page = Profile().query("s1")   # one Query of partition STUDENT#s1
    page.of(Student)               # -> list[Student]
    page.of(Mark)                  # -> list[Mark]
    page.skipped                   # items of other entity types, left out

Pages come with cursors as a repository's queries do (``cursor=``); `query_all`
follows them. Each call runs under ``call_timeout``, with the connection's
retries, metrics and trace span, like any repository call.
"""

# Generated from portchops_models/entities/aio.py by tools/unasync.py: do not edit.
# Change the async source, then run `make generate`.

from __future__ import annotations

from typing import Any, ClassVar

from ..models.base import BaseModel
from ..models.decoding import model_decoder
from ..models.shape import shape_of
from ..ops import collections
from ..ops.base import RepositoryBase
from ..ops.collections import CollectionPage, Members
from ..ops.runtime import Runtime
from ..ops.sync_runtime import RUNTIME, drive

__all__ = ["Collection", "CollectionPage"]


class Collection(RepositoryBase[BaseModel, Any]):
    """The entities that share a partition, read together. Subclass it and set ``entities``.

    Constructor arguments (``retry=``, ``metrics=``) as for a repository; a collection
    query is never served from a cache.
    """

    runtime: ClassVar[Runtime] = RUNTIME
    entities: ClassVar[tuple[type[BaseModel], ...]] = ()
    _members: ClassVar[Members]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._members = Members.of(cls.entities, shape_of, model_decoder)
        cls.model = cls.entities[0]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cache=None, **kwargs)

    def query(
        self,
        partition: object,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        consistent: bool = False,
    ) -> CollectionPage:
        """One page of the partition's items, typed per entity.

        Args:
            partition: the values of the shared partition template (one value, or a
                tuple of them in the template's order).
            limit: the ``Limit`` of the Query (items evaluated, all entities alike).
            cursor: a previous page's cursor.
        """
        with self._calling("query") as ctx:
            built = collections.collection_query(
                self._members,
                ctx.table,
                partition,
                limit=limit,
                newest_first=newest_first,
                consistent=consistent,
            )
            return drive(collections.fetch_collection(ctx, self._members, built, cursor))

    def query_all(
        self, partition: object, *, newest_first: bool = False, consistent: bool = False
    ) -> CollectionPage:
        """Every item of the partition, page after page, as one `CollectionPage`."""
        items: list[BaseModel] = []
        skipped = 0
        cursor: str | None = None
        while True:
            page = self.query(
                partition, cursor=cursor, newest_first=newest_first, consistent=consistent
            )
            items.extend(page.items)
            skipped += page.skipped
            cursor = page.cursor
            if cursor is None:
                return CollectionPage(items, None, skipped, self._members.entities)

"""`AsyncRepository[ModelT, KeyT]`: the whole typed API for any model, for async code.

Subclass it and set ``model``; the subclass gets every method, typed for its
model and key, and adds only domain helpers::

    class LessonRepository(AsyncRepository[Lesson, tuple[str, int]]):
        model = Lesson

    lessons = LessonRepository()
    await lessons.save(Lesson(course_id="py", position=1, title="Intro"))
    await lessons.get(("py", 1))                                   # -> Lesson
    await lessons.query("py", Lesson.position.between(1, 8))       # -> Page[Lesson]
    await lessons.query("advanced", index=Lesson.by_level)         # any index

``KeyT`` is the hash key's type for hash-only tables and a ``(hash, range)``
tuple otherwise. The repository only orchestrates: the table shape comes from
`portchops_models.models.shape`, request payloads from `portchops_models.ops.requests`, the
operations from `portchops_models.ops`, written once as coroutines and run by
the API's runtime (`portchops_models.ops.aio_runtime`), each public call under
its ``call_timeout`` deadline. Items whose TTL has passed are left out of every
read (DynamoDB deletes them lazily and still returns them until then).

This file is the source of the sync `portchops_models.repository`, generated
from it by ``tools/unasync.py``: change the API here, then run ``make generate``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar, overload

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ..models.base import BaseModel
from ..models.projections import ProjectionType
from ..ops import queries, reads, requests, writes
from ..ops.aio_paging import iter_pages
from ..ops.aio_runtime import RUNTIME, Fetch, drive, merge_segments
from ..ops.base import MISS, UNSET, RepositoryBase, default_metrics
from ..ops.page import Page, Pending
from ..ops.page import paging as page_plan
from ..ops.queries import IndexRef
from ..ops.runtime import Runtime

__all__ = ["UNSET", "AsyncRepository", "IndexRef", "Page", "default_metrics"]

ModelT = TypeVar("ModelT", bound=BaseModel)
KeyT = TypeVar("KeyT", bound=Hashable)
T = TypeVar("T")
P = TypeVar("P")


class AsyncRepository(RepositoryBase[ModelT, KeyT]):
    """Typed access to one model's table. Subclass it and set ``model``.

    ``iter_query`` and ``scan`` return iterators (``async for`` them)::

        async for row in LessonRepository().iter_query("py"):
            ...

    Constructor arguments (``cache=``, ``retry=``, ``metrics=``, ``coalesce=``): see
    `RepositoryBase`.
    """

    runtime: ClassVar[Runtime] = RUNTIME

    # ------------------------------------------------------------------ point reads

    @overload
    async def find(
        self, key: KeyT, *, consistent: bool = False, projection: None = None
    ) -> ModelT | None: ...
    @overload
    async def find(
        self, key: KeyT, *, consistent: bool = False, projection: ProjectionType[ModelT, P]
    ) -> P | None: ...
    async def find(
        self,
        key: KeyT,
        *,
        consistent: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> ModelT | P | None:
        """The item with this key, or ``None`` (expired items count as absent).

        Served from the cache unless ``consistent=True``.
        """
        found: ModelT | P | None = self._hit(key, consistent, projection)
        if found is not MISS:  # a cache hit: a copy of it, at once
            return found
        with self._calling("find") as ctx:
            found = await drive(reads.find(ctx, key, consistent, projection))
        return found

    @overload
    async def get(
        self, key: KeyT, *, consistent: bool = False, projection: None = None
    ) -> ModelT: ...
    @overload
    async def get(
        self, key: KeyT, *, consistent: bool = False, projection: ProjectionType[ModelT, P]
    ) -> P: ...
    async def get(
        self,
        key: KeyT,
        *,
        consistent: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> ModelT | P:
        """The item with this key.

        Raises:
            ItemNotFound: no such item (or it has expired).
            InvalidRequest: a key of the wrong type or shape, naming the attribute.
        """
        found: ModelT | P = self._hit(key, consistent, projection)
        if found is not MISS:  # a cache hit: a copy of it, at once
            return found
        with self._calling("get") as ctx:
            found = await drive(reads.get(ctx, key, consistent, projection))
        return found

    async def exists(self, key: KeyT, *, consistent: bool = False) -> bool:
        """Whether an (unexpired) item with this key exists."""
        if self._hit(key, consistent, None, exists=True) is not MISS:
            return True
        with self._calling("exists") as ctx:
            return await drive(reads.find(ctx, key, consistent, None)) is not None

    # ------------------------------------------------------------------ batch reads

    @overload
    async def batch_get(
        self, keys: Iterable[KeyT], *, consistent: bool = False, projection: None = None
    ) -> list[ModelT]: ...
    @overload
    async def batch_get(
        self,
        keys: Iterable[KeyT],
        *,
        consistent: bool = False,
        projection: ProjectionType[ModelT, P],
    ) -> list[P]: ...
    async def batch_get(
        self,
        keys: Iterable[KeyT],
        *,
        consistent: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> list[ModelT] | list[P]:
        """Read any number of items by key.

        Duplicates are collapsed; the result keeps the order of `keys` with
        missing (and expired) keys left out. Cached keys are served from the
        cache; the rest go out 100 a request, chunks in parallel over the
        shared pool, and ``UnprocessedKeys`` are resubmitted with backoff.

        ``consistent=True`` makes every request a strongly consistent read
        (``ConsistentRead`` in ``RequestItems``, twice the read capacity) and, as
        ``get(consistent=True)``, bypasses the cache: every key is read from the
        table and nothing is cached from the answer.

        Raises:
            ThrottledError: rounds stopped making progress; ``outstanding`` says how many
                keys were left.
        """
        with self._calling("batch_get") as ctx:
            items: list[ModelT] | list[P] = await drive(
                reads.batch_get(ctx, keys, projection, consistent)
            )
        return items

    # ------------------------------------------------------------------ query, count, scan

    @overload
    async def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: None = None,
        consistent: bool = False,
    ) -> Page[ModelT]: ...
    @overload
    async def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[ModelT, P],
        consistent: bool = False,
    ) -> Page[P]: ...
    async def query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
        consistent: bool = False,
    ) -> Page[ModelT] | Page[P]:
        """One page of a partition of the table or of an index.

        Args:
            hash_key: the partition key value (of the index, with ``index=``).
            range_key_condition: a PynamoDB condition on the sort key, e.g.
                ``Lesson.position.between(2, 8)`` or ``Lesson.slug.startswith("py-")``.
            filter_condition: a PynamoDB condition applied after the key condition
                (it does not reduce the capacity read).
            index: the model's index attribute (``Lesson.by_level``) or its name.
            limit: at most this many items evaluated for the page.
            cursor: the previous page's ``cursor``; valid only for the same query
                (table, index, partition, conditions and direction).
            newest_first: descending sort key order.
            projection: return these projections instead of models.
            consistent: a strongly consistent read (table and local indexes only).

        Raises:
            InvalidRequest: an unknown index (named), a bad key, or a foreign or edited cursor.
        """
        fetch = self._query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            newest_first,
            projection,
            consistent,
        )
        page: Page[ModelT] | Page[P] = (await fetch(cursor, None)).decoded()
        return page

    def _query(
        self,
        hash_key: object,
        range_key_condition: Condition | None,
        filter_condition: Condition | None,
        index: IndexRef | None,
        limit: int | None,
        newest_first: bool,
        projection: object,
        consistent: bool,
        method: str = "query",
    ) -> Fetch:
        """The page fetcher of `query` and `iter_query` (the request built once, checked now):
        it takes the cursor and that page's ``Limit`` (``None``: `limit`, as built)."""
        proj = requests.check_projection(self.shape, projection)
        built = queries.build_query(
            self.shape,
            self._current_table(),
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            newest_first,
            consistent,
            proj,
        )

        async def page(after: str | None, page_limit: int | None) -> Pending:
            with self._calling(method) as ctx:
                fetch = queries.fetch_pending(ctx, built, "Query", after, proj, page_limit)
                return await drive(fetch)

        return page

    def _iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None,
        filter_condition: Condition | None,
        index: IndexRef | None,
        limit: int | None,
        page_size: int | None,
        cursor: str | None,
        newest_first: bool,
        projection: object,
        consistent: bool,
    ) -> AsyncIterator[Any]:
        """`iter_query`: at most `limit` items in all, `page_size` a page (checked now)."""
        paging = page_plan(limit, page_size, filter_condition)
        fetch = self._query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            paging.page_size,
            newest_first,
            projection,
            consistent,
            "iter_query",
        )
        return iter_pages(fetch, cursor, paging)

    @overload
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: None = None,
        consistent: bool = False,
    ) -> AsyncIterator[ModelT]: ...
    @overload
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[ModelT, P],
        consistent: bool = False,
    ) -> AsyncIterator[P]: ...
    def iter_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
        consistent: bool = False,
    ) -> AsyncIterator[ModelT] | AsyncIterator[P]:
        """The items of `query` (same arguments), fetched lazily page by page (``async for``).

        Args:
            limit: yield at most this many items in all (``None``: every match).
                Expired items left out do not count. No page is requested once
                `limit` items were yielded; without a `filter_condition` a page asks
                for no more than are still wanted (``Limit`` = ``min(page_size,
                remaining)``). With one, ``Limit`` counts items *evaluated* before the
                filter, so every page asks for `page_size` and the surplus of the
                last is read and dropped: keep `page_size` near `limit`.
            page_size: the ``Limit`` of each Query request (``None``: DynamoDB's
                pages of up to 1 MB).
            cursor: where to start (a `query` page's cursor).

        Memory stays at one page. Raises `InvalidRequest` (at the call) for a `limit`
        or `page_size` that is not a positive int, as `query` does.
        """
        items: AsyncIterator[ModelT] | AsyncIterator[P] = self._iter_query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            page_size,
            cursor,
            newest_first,
            projection,
            consistent,
        )
        return items

    async def count(
        self,
        hash_key: object,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        *,
        index: IndexRef | None = None,
        consistent: bool = False,
    ) -> int:
        """How many (unexpired) items a query matches, counted page by page.

        Expired items still stored are left out, as on every read: the count then
        reads the TTL attribute of each match instead of DynamoDB's ``Select=COUNT``.
        """
        with self._calling("count") as ctx:
            return await drive(
                queries.count(
                    ctx, hash_key, range_key_condition, filter_condition, index, consistent
                )
            )

    @overload
    async def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: None = None,
        index: IndexRef | None = None,
    ) -> Page[ModelT]: ...
    @overload
    async def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P],
        index: IndexRef | None = None,
    ) -> Page[P]: ...
    async def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P] | None = None,
        index: IndexRef | None = None,
    ) -> Page[ModelT] | Page[P]:
        """One page of one segment of a scan (resumable through its cursor).

        Scans read the whole table: use them for migrations and exports, never
        to look items up (that is what keys, queries and indexes are for).
        ``index=`` (the model's index attribute or its name) scans a secondary
        index instead; its cursors are valid only for scans of that index.

        Raises:
            InvalidRequest: an unknown index (named), or a foreign or edited cursor.
        """
        proj = requests.check_projection(self.shape, projection)
        built = queries.build_scan(
            self.shape,
            self._current_table(),
            segment=segment,
            total_segments=total_segments,
            limit=limit,
            filter_condition=filter_condition,
            projection=proj,
            index=index,
        )
        with self._calling("scan_page") as ctx:
            page: Page[ModelT] | Page[P] = await drive(
                queries.fetch_page(ctx, built, "Scan", cursor, proj)
            )
        return page

    @overload
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: None = None,
        index: IndexRef | None = None,
    ) -> AsyncIterator[ModelT]: ...
    @overload
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P],
        index: IndexRef | None = None,
    ) -> AsyncIterator[P]: ...
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P] | None = None,
        index: IndexRef | None = None,
    ) -> AsyncIterator[ModelT] | AsyncIterator[P]:
        """Every item of the table, read by `segments` parallel scan workers.

        Items arrive in no particular order; memory stays bounded (a few pages
        per worker). Only by explicit call: a scan reads the whole table.
        ``index=`` (the model's index attribute or its name) scans a secondary
        index instead: only the items it holds (a sparse index holds few), as
        it projects them.

        Raises:
            InvalidRequest: an unknown index (named, with the model's indexes), at the call.
        """
        proj = requests.check_projection(self.shape, projection)
        self.shape.index(index)  # an unknown index fails here, not in a worker

        async def pending(segment: int, cursor: str | None) -> Pending:
            built = queries.build_scan(
                self.shape,
                self._current_table(),
                segment=segment,
                total_segments=segments,
                filter_condition=filter_condition,
                projection=proj,
                index=index,
            )
            with self._calling("scan") as ctx:
                return await drive(queries.fetch_pending(ctx, built, "Scan", cursor, proj))

        async def page(segment: int, cursor: str | None) -> Page[Any]:
            return (await pending(segment, cursor)).decoded()

        async def first_segment(cursor: str | None, _limit: int | None) -> Pending:
            return await pending(0, cursor)

        if segments == 1:
            return iter_pages(first_segment)
        return merge_segments(segments, page)

    # ------------------------------------------------------------------ writes

    async def save(self, item: ModelT, *, condition: Condition | None = None) -> ModelT:
        """Write the whole item (PutItem), optionally only if `condition` holds.

        Optimistic locking: when the model has a version attribute, the write
        succeeds only if the stored version is still the one this item was read
        with, and the version goes up by one. Timestamps (`UpdatedAtAttribute`)
        and a sliding TTL are refreshed; a TTL set by the caller is kept.

        Exactly once: a save retried after its answer was lost does not report
        `ConditionFailed` for its own write, and an expired item still stored
        does not count as present (see `portchops_models.dynamo.idempotency`).

        A partial item (read through a KEYS_ONLY or INCLUDE index) is written as an
        UpdateItem of the attributes it holds that changed, on the stored item only:
        it never overwrites what it was not read with.

        Raises:
            ConditionFailed: the condition or the version check failed (or, for a
                partial item, the item is gone).
            InvalidRequest: bad key, item over 400 KB, or a value DynamoDB rejects,
                naming the attribute; nothing is sent.
        """
        with self._calling("save") as ctx:
            saved: ModelT = await drive(writes.save(ctx, item, condition))
        return saved

    async def create(self, item: ModelT) -> ModelT:
        """Write a new item (PutItem only if no item has its key); returns it.

        See `Repository.create`.

        Raises:
            ConditionFailed: an item with this key exists.
            InvalidRequest: a bad value, naming the attribute; nothing is sent.
        """
        with self._calling("create") as ctx:
            created: ModelT = await drive(writes.create(ctx, item))
        return created

    async def update(
        self, key: KeyT, actions: Sequence[Action], *, condition: Condition | None = None
    ) -> ModelT:
        """Change an item in one atomic UpdateItem; returns it as stored afterwards.

        `actions` are PynamoDB update actions (``Lesson.views.add(1)``,
        ``Lesson.title.set("New")``, ``Lesson.tags.remove()``). The version goes
        up by one when the model has a version attribute; timestamps and a sliding
        TTL are refreshed. Creates the item if absent, unless `condition` says
        otherwise (e.g. ``Lesson.course_id.exists()``).

        Exactly once: an update retried after its answer was lost is not applied
        twice (counters count once), and an expired item still stored is replaced
        by a fresh row rather than revived.
        """
        with self._calling("update") as ctx:
            updated: ModelT = await drive(writes.update(ctx, key, actions, condition))
        return updated

    async def delete(
        self, key_or_item: KeyT | ModelT, *, condition: Condition | None = None
    ) -> None:
        """Delete by key or by instance (no error if absent, unless `condition` fails)."""
        with self._calling("delete") as ctx:
            await drive(writes.delete(ctx, key_or_item, condition))

    async def batch_save(self, items: Iterable[ModelT]) -> int:
        """Write any number of items, 25 a request, resubmitting unprocessed ones.

        Every item is serialised and checked before the first request is sent,
        so one bad item means nothing is written. Puts are idempotent, so a
        resubmitted item is stored once. Two items with the same key raise
        `InvalidRequest`. Batch writes carry no conditions, so optimistic locking
        does not apply: each item's version is set to one more than it holds.

        Returns:
            The number of items written.
        """
        with self._calling("batch_save") as ctx:
            return await drive(writes.batch_save(ctx, items))

    async def batch_delete(self, keys: Iterable[KeyT]) -> int:
        """Delete any number of items by key, 25 a request; duplicate keys are collapsed.

        Returns:
            The number of distinct keys deleted (absent keys count too).
        """
        with self._calling("batch_delete") as ctx:
            return await drive(writes.batch_delete(ctx, keys))

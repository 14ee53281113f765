"""`Repository[ModelT, KeyT]`: the whole typed API for any model, declared once.

Subclass it and set ``model``; the subclass gets every method, typed for its
model and key, and adds only domain helpers::

    class LessonRepository(Repository[Lesson, tuple[str, int]]):
        model = Lesson

    lessons = LessonRepository()
    lessons.save(Lesson(course_id="py", position=1, title="Intro"))
    lessons.get(("py", 1))                                   # -> Lesson
    lessons.query("py", Lesson.position.between(1, 8))       # -> Page[Lesson]
    lessons.query("advanced", index=Lesson.by_level)         # any index, by attribute or name

``KeyT`` is the hash key's type for hash-only tables and a ``(hash, range)``
tuple otherwise. The repository only orchestrates: the table shape comes from
`portchops_models.shape`, request payloads from `portchops_models.requests`,
every request goes through `Connection.send` (retry policy, metrics, error
translation), batch rounds through `RetryPolicy.resubmit`; around them it
connects, consults and invalidates the cache, and decodes. Items whose TTL has
passed are left out of every read (DynamoDB deletes them lazily and still
returns them until then).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from cachetools import LRUCache
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import Index

from . import bus, coherence, deadline, idempotency, requests
from .batching import fan_out, merge_segments
from .cache import CachePolicy, ItemCache
from .connection import Connection, current_connection
from .cursor import decode_cursor, encode_cursor
from .decoding import model_decoder
from .errors import ConditionFailed, InvalidRequest, ItemNotFound, ThrottledError
from .limits import BATCH_GET_MAX, BATCH_WRITE_MAX
from .metrics import Metrics
from .models.base import BaseModel
from .projections import Projection, ProjectionType
from .retry import RetryPolicy
from .settings import current_settings
from .shape import RawItem, TableShape, shape_of

__all__ = ["UNSET", "Page", "Repository", "default_metrics"]

ModelT = TypeVar("ModelT", bound=BaseModel)
KeyT = TypeVar("KeyT", bound=Hashable)
T = TypeVar("T")
P = TypeVar("P")
F = TypeVar("F", bound=Callable[..., Any])

#: An index given as the model's index attribute or by name.
IndexRef = Index[Any] | str


class _Unset:
    """Marks an argument that was not given (where ``None`` is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

_DEFAULT_METRICS = Metrics()
bus.use_metrics(_DEFAULT_METRICS)  # the invalidation bus counts there too
_NOT_DECODED = object()


def default_metrics() -> Metrics:
    """The `Metrics` shared by every repository built without ``metrics=``."""
    return _DEFAULT_METRICS


def _bounded(method: F) -> F:
    """Run a public call under its ``call_timeout`` deadline (nested calls share the outer)."""

    @functools.wraps(method)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        with deadline.bounded(current_settings().call_timeout):
            return method(*args, **kwargs)

    return cast(F, bounded)


#: Attempts at a write that found an expired item in its way (deleted, then written again).
_FRESH_ROW_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query or scan.

    Attributes:
        items: the page's items (models or projections).
        cursor: pass it back as ``cursor=`` for the next page; ``None`` on the last page.
    """

    items: list[T]
    cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Repository(Generic[ModelT, KeyT]):
    """Typed access to one model's table. Subclass it and set ``model``.

    Args:
        cache: a `CachePolicy`, or ``None`` to turn caching off; by default
            ``cache_maxsize`` entries for ``cache_ttl_seconds`` from the settings.
        retry: the `RetryPolicy`; by default the connection's (``retry_*`` settings).
        metrics: where requests, capacity, retries and cache hits are counted;
            by default the process-wide `default_metrics()`.
    """

    model: type[ModelT]

    def __init__(
        self,
        *,
        cache: CachePolicy | None = UNSET,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        model = getattr(type(self), "model", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidRequest(f"{type(self).__name__} must set model = <a BaseModel subclass>")
        settings = current_settings()
        if cache is UNSET:
            cache = (
                CachePolicy(maxsize=settings.cache_maxsize, ttl=settings.cache_ttl_seconds)
                if settings.cache_maxsize > 0
                else None  # PORTCHOPS_CACHE_MAXSIZE=0 turns caching off
            )
        self.metrics = metrics if metrics is not None else _DEFAULT_METRICS
        self._cache: ItemCache[KeyT, RawItem] | None = (
            ItemCache(cache, on_event=self._count_cache, gate=coherence.may_serve)
            if cache is not None
            else None
        )
        self._retry_given = retry
        self._generation = -1
        self.shape: TableShape = shape_of(model)
        # key -> stale markers seen in the item's last ALL_NEW, removed by the next update
        self._stale: LRUCache[Hashable, list[str]] = LRUCache(maxsize=10_000)
        self._stale_lock = threading.Lock()
        self._decode_model: Callable[[RawItem], ModelT] = model_decoder(cast(type[ModelT], model))

    # ------------------------------------------------------------------ plumbing

    @property
    def cache(self) -> ItemCache[KeyT, RawItem] | None:
        """The repository's cache (``None`` when turned off)."""
        return self._cache

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force: the one given, else the connection's default."""
        return self._retry_given or current_connection().retry

    def cache_clear(self) -> None:
        """Drop everything this repository has cached."""
        if self._cache is not None:
            self._cache.clear()

    def _count_cache(self, hit: bool, count: int) -> None:
        if count:
            self.metrics.record_cache(hit=hit, count=count)

    def _connect(self) -> tuple[Connection, str]:
        conn = current_connection()
        if conn.generation != self._generation:
            # New settings may mean other tables: nothing cached before still applies.
            if self._cache is not None and self._generation != -1:
                self._cache.clear()
            if self._cache is not None:  # every write to the table, from anywhere, evicts here
                coherence.register(self._cache, self._table(conn))
            self._generation = conn.generation
        return conn, self._table(conn)

    def _table(self, conn: Connection) -> str:
        return conn.settings.table_name(self.shape.model.base_table_name)

    def _send(self, conn: Connection, operation: str, params: dict[str, Any], table: str) -> Any:
        return conn.send(operation, params, table=table, retry=self.retry, metrics=self.metrics)

    def _decode(self, item: RawItem, projection: type[Projection[Any]] | None) -> Any:
        if projection is None:
            return self._decode_model(item)
        return projection.from_raw(item)

    def _keys(self, keys: Iterable[KeyT], what: str) -> list[KeyT]:
        """Distinct keys in order, each checked; a lone str or bytes is not a collection."""
        if isinstance(keys, str | bytes | bytearray) or not isinstance(keys, Iterable):
            raise InvalidRequest(f"{what} takes a collection of keys, got {keys!r}")
        canonical = self.shape.canonical
        return list(dict.fromkeys(canonical(key) for key in keys))  # type: ignore[misc]

    # ------------------------------------------------------------------ point reads

    def _load(
        self, key: KeyT, consistent: bool, projection: type[Projection[Any]] | None
    ) -> RawItem | None:
        conn, table = self._connect()
        params = requests.get_item(
            self.shape, table, key, consistent=consistent, projection=projection
        )
        item: RawItem | None = self._send(conn, "GetItem", params, table).get("Item")
        return None if item is None or self.shape.expired(item) else item

    @overload
    def find(
        self, key: KeyT, *, consistent: bool = False, projection: None = None
    ) -> ModelT | None: ...
    @overload
    def find(
        self, key: KeyT, *, consistent: bool = False, projection: ProjectionType[ModelT, P]
    ) -> P | None: ...
    @_bounded
    def find(
        self,
        key: KeyT,
        *,
        consistent: bool = False,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> ModelT | P | None:
        """The item with this key, or ``None`` (expired items count as absent).

        Served from the cache unless ``consistent=True``.
        """
        proj = requests.check_projection(self.shape, projection)
        cache = self._cache
        if cache is None or consistent:
            item = self._load(key, consistent, proj)
        else:
            canonical = cast(KeyT, self.shape.canonical(key))
            self._connect()
            item = cache.get_or_load(canonical, proj, lambda: self._load(key, False, proj))
            if item is not None and self.shape.expired(item):
                item = None
        return None if item is None else cast("ModelT | P", self._decode(item, proj))

    @overload
    def get(self, key: KeyT, *, consistent: bool = False, projection: None = None) -> ModelT: ...
    @overload
    def get(
        self, key: KeyT, *, consistent: bool = False, projection: ProjectionType[ModelT, P]
    ) -> P: ...
    @_bounded
    def get(
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
        found = self.find(key, consistent=consistent, projection=projection)
        if found is None:
            _conn, table = self._connect()
            raise ItemNotFound(f"{table}: no item with key {key!r}", table=table, key=key)
        return found

    @_bounded
    def exists(self, key: KeyT, *, consistent: bool = False) -> bool:
        """Whether an (unexpired) item with this key exists."""
        return self.find(key, consistent=consistent) is not None

    # ------------------------------------------------------------------ batch reads

    @overload
    def batch_get(self, keys: Iterable[KeyT], *, projection: None = None) -> list[ModelT]: ...
    @overload
    def batch_get(
        self, keys: Iterable[KeyT], *, projection: ProjectionType[ModelT, P]
    ) -> list[P]: ...
    @_bounded
    def batch_get(
        self, keys: Iterable[KeyT], *, projection: ProjectionType[ModelT, P] | None = None
    ) -> list[ModelT] | list[P]:
        """Read any number of items by key.

        Duplicates are collapsed; the result keeps the order of `keys` with
        missing (and expired) keys left out. Cached keys are served from the
        cache; the rest go out 100 a request, chunks in parallel over the
        shared pool, and ``UnprocessedKeys`` are resubmitted with backoff.

        Raises:
            ThrottledError: rounds stopped making progress; ``outstanding`` says how many
                keys were left.
        """
        ordered = self._keys(keys, "batch_get")
        proj = requests.check_projection(self.shape, projection)
        conn, table = self._connect()
        found: dict[KeyT, RawItem | None] = {}
        decoded: dict[Hashable, Any] = {}  # filled by the batch threads as chunks arrive
        wanted = ordered
        cache = self._cache
        if cache is not None and ordered:
            found, wanted = cache.get_many(ordered, proj)
        if wanted:
            token = cache.begin(wanted) if cache is not None else None
            try:
                fetched = self._batch_read(conn, table, wanted, proj, decoded)
            except BaseException:
                if token is not None:
                    token.close()
                raise
            if cache is not None and token is not None:
                missing = [k for k in wanted if k not in fetched]
                cache.put_many(fetched, proj, missing=missing, token=token)
            found.update(fetched)
        now = time.time()
        out: list[Any] = []
        for key in ordered:
            item = found.get(key)
            if item is not None and not self.shape.expired(item, now):
                obj = decoded.get(key, _NOT_DECODED)
                out.append(self._decode(item, proj) if obj is _NOT_DECODED else obj)
        return out

    def _batch_read(
        self,
        conn: Connection,
        table: str,
        keys: Sequence[KeyT],
        projection: type[Projection[Any]] | None,
        decoded: dict[Hashable, Any],
    ) -> dict[KeyT, RawItem]:
        """Fetch `keys`; the raw items by key, decoded into `decoded` chunk by chunk
        in the batch threads while the other chunks are still on the wire."""
        shape = self.shape
        results: dict[KeyT, RawItem] = {}
        proj = requests.projection_params(shape, projection)

        def send(chunk: list[RawItem]) -> dict[str, Any]:
            request = requests.batch_get_chunk(table, chunk, proj)
            response = cast(dict[str, Any], self._send(conn, "BatchGetItem", request, table))
            now = time.time()
            for item in response.get("Responses", {}).get(table, ()):
                if not shape.expired(item, now):
                    decoded[shape.key_of(item)] = self._decode(item, projection)
            return response

        def collect(response: dict[str, Any]) -> list[RawItem]:
            for item in response.get("Responses", {}).get(table, []):
                results[cast(KeyT, shape.key_of(item))] = item
            return list(response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))

        pending = [shape.raw_key(k) for k in keys]
        self._rounds(conn, table, "BatchGetItem", pending, BATCH_GET_MAX, send, collect)
        return results

    def _rounds(
        self,
        conn: Connection,
        table: str,
        operation: str,
        pending: list[Any],
        chunk_size: int,
        send: Callable[[list[Any]], dict[str, Any]],
        collect: Callable[[dict[str, Any]], list[Any]],
    ) -> None:
        """Send `pending` in parallel chunks, round after round (`RetryPolicy.resubmit`)."""

        def send_round(batch: list[Any]) -> list[Any]:
            chunks = [batch[i : i + chunk_size] for i in range(0, len(batch), chunk_size)]
            leftover: list[Any] = []
            failed: list[tuple[list[Any], BaseException]] = []
            for chunk, outcome in zip(chunks, fan_out(conn.executor, send, chunks), strict=True):
                if isinstance(outcome, BaseException):
                    failed.append((chunk, outcome))
                else:
                    leftover.extend(collect(outcome))
            if failed:
                chunk, error = failed[0]
                if isinstance(error, ThrottledError):
                    error.outstanding = len(leftover) + sum(len(c) for c, _ in failed)
                raise error
            return leftover

        def on_retry(round_no: int, delay: float) -> None:
            self.metrics.record_retry(operation, table=table)

        self.retry.resubmit(
            pending, send_round, table=table, operation=operation, on_retry=on_retry
        )

    # ------------------------------------------------------------------ query, count, scan

    def _page(
        self, built: requests.QueryRequest, operation: str, cursor: str | None, projection: Any
    ) -> Page[Any]:
        with deadline.bounded(current_settings().call_timeout):
            return self._fetch_page(built, operation, cursor, projection)

    def _fetch_page(
        self, built: requests.QueryRequest, operation: str, cursor: str | None, projection: Any
    ) -> Page[Any]:
        conn, table = self._connect()
        params = built.params
        secret = conn.settings.cursor_secret
        signing = secret.get_secret_value() if secret is not None else None
        if cursor is not None:
            params["ExclusiveStartKey"] = decode_cursor(cursor, scope=built.scope, secret=signing)
        response = self._send(conn, operation, params, table)
        now = time.time()
        shape = self.shape
        items = [
            self._decode(item, projection)
            for item in response.get("Items", [])
            if not shape.expired(item, now)
        ]
        last = response.get("LastEvaluatedKey")
        next_cursor = encode_cursor(last, scope=built.scope, secret=signing) if last else None
        return Page(items, next_cursor)

    def _build_query(
        self,
        hash_key: object,
        range_key_condition: Condition | None,
        filter_condition: Condition | None,
        index: IndexRef | None,
        limit: int | None,
        newest_first: bool,
        consistent: bool,
        projection: type[Projection[Any]] | None,
        count: bool = False,
    ) -> requests.QueryRequest:
        _conn, table = self._connect()
        return requests.query(
            self.shape,
            table,
            hash_key,
            range_key_condition,
            filter_condition,
            index=self.shape.index(index),
            limit=limit,
            newest_first=newest_first,
            consistent=consistent,
            projection=projection,
            count=count,
        )

    @overload
    def query(
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
    def query(
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
    @_bounded
    def query(
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
        page: Page[ModelT] | Page[P] = self._query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            cursor,
            newest_first,
            projection,
            consistent,
        )
        return page

    def _query(
        self,
        hash_key: object,
        range_key_condition: Condition | None,
        filter_condition: Condition | None,
        index: IndexRef | None,
        limit: int | None,
        cursor: str | None,
        newest_first: bool,
        projection: object,
        consistent: bool,
        *,
        lazily: bool = False,
    ) -> Any:
        """`query` (a `Page`) or, with ``lazily=True``, `iter_query` (an iterator)."""
        proj = requests.check_projection(self.shape, projection)
        built = self._build_query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            newest_first,
            consistent,
            proj,
        )
        if lazily:
            return self._iter_pages(lambda after: self._page(built, "Query", after, proj), cursor)
        return self._page(built, "Query", cursor, proj)

    @overload
    def iter_query(
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
    ) -> Iterator[ModelT]: ...
    @overload
    def iter_query(
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
    ) -> Iterator[P]: ...
    def iter_query(
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
    ) -> Iterator[ModelT] | Iterator[P]:
        """Every item of `query` (same arguments), fetched lazily page by page.

        ``limit`` is the page size; ``cursor`` where to start. Memory stays at one page.
        """
        items: Iterator[ModelT] | Iterator[P] = self._query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            limit,
            cursor,
            newest_first,
            projection,
            consistent,
            lazily=True,
        )
        return items

    @_bounded
    def count(
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
        reads the TTL attribute of each match (``Select=SPECIFIC_ATTRIBUTES`` of the
        keys and TTL) instead of DynamoDB's ``Select=COUNT``.
        """
        ttl = self.shape.ttl_name is not None
        built = self._build_query(
            hash_key,
            range_key_condition,
            filter_condition,
            index,
            None,
            False,
            consistent,
            None,
            count=not ttl,
        )
        conn, table = self._connect()
        params = built.params
        if ttl:
            names = params.setdefault("ExpressionAttributeNames", {})
            wanted = (*self.shape.key_names, cast(str, self.shape.ttl_name))
            placeholders = []
            for i, name in enumerate(wanted):
                names[f"#k{i}"] = name
                placeholders.append(f"#k{i}")
            params["ProjectionExpression"] = ", ".join(placeholders)
        total = 0
        now = time.time()
        while True:
            response = self._send(conn, "Query", params, table)
            if ttl:
                total += sum(1 for i in response.get("Items", []) if not self.shape.expired(i, now))
            else:
                total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            params["ExclusiveStartKey"] = last

    def _iter_pages(
        self, page: Callable[[str | None], Page[T]], cursor: str | None = None
    ) -> Iterator[T]:
        while True:
            current = page(cursor)
            yield from current.items
            if current.cursor is None:
                return
            cursor = current.cursor

    @overload
    def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: None = None,
    ) -> Page[ModelT]: ...
    @overload
    def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P],
    ) -> Page[P]: ...
    @_bounded
    def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> Page[ModelT] | Page[P]:
        """One page of one segment of a scan (resumable through its cursor).

        Scans read the whole table: use them for migrations and exports, never
        to look items up (that is what keys, queries and indexes are for).
        """
        proj = requests.check_projection(self.shape, projection)
        _conn, table = self._connect()
        built = requests.scan(
            self.shape,
            table,
            segment=segment,
            total_segments=total_segments,
            limit=limit,
            filter_condition=filter_condition,
            projection=proj,
        )
        page: Page[ModelT] | Page[P] = self._page(built, "Scan", cursor, proj)
        return page

    @overload
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: None = None,
    ) -> Iterator[ModelT]: ...
    @overload
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P],
    ) -> Iterator[P]: ...
    def scan(
        self,
        *,
        segments: int = 1,
        filter_condition: Condition | None = None,
        projection: ProjectionType[ModelT, P] | None = None,
    ) -> Iterator[ModelT] | Iterator[P]:
        """Every item of the table, read by `segments` parallel scan workers.

        Items arrive in no particular order; memory stays bounded (a few pages
        per worker). Only by explicit call: a scan reads the whole table.
        """
        proj = requests.check_projection(self.shape, projection)

        def page(segment: int, cursor: str | None) -> Page[Any]:
            _conn, table = self._connect()
            built = requests.scan(
                self.shape,
                table,
                segment=segment,
                total_segments=segments,
                filter_condition=filter_condition,
                projection=proj,
            )
            return self._page(built, "Scan", cursor, proj)

        if segments == 1:
            return self._iter_pages(lambda cursor: page(0, cursor))
        return merge_segments(segments, page)

    # ------------------------------------------------------------------ writes

    @_bounded
    def save(self, item: ModelT, *, condition: Condition | None = None) -> ModelT:
        """Write the whole item (PutItem), optionally only if `condition` holds.

        Optimistic locking: when the model has a version attribute, the write
        succeeds only if the stored version is still the one this item was read
        with, and the version goes up by one. Timestamps (`UpdatedAtAttribute`)
        and a sliding TTL are refreshed; a TTL set by the caller is kept.

        Exactly once: a save retried after its answer was lost does not report
        `ConditionFailed` for its own write, and an expired item still stored
        does not count as present (see `portchops_models.idempotency`).

        Raises:
            ConditionFailed: the condition or the version check failed.
            InvalidRequest: bad key, item over 400 KB, or a value DynamoDB rejects.
        """
        conn, table = self._connect()
        if isinstance(item, self.shape.model):
            self.shape.stamp(item)
        marker = idempotency.new_marker()
        params, version = requests.put_item(
            self.shape, table, item, condition=condition, marker=marker
        )
        key = cast(KeyT, self.shape.key_of(params["Item"]))
        what = "version conflict (stale item) or condition" if version else "condition"
        self._write_once(conn, "PutItem", lambda: params, table, key, marker, what)
        if version is not None and self.shape.version_name is not None:
            setattr(item, self.shape.version_name, version)
        return item

    @_bounded
    def update(
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
        key = cast(KeyT, self.shape.canonical(key))
        conn, table = self._connect()
        marker = idempotency.new_marker()
        with self._stale_lock:
            prune = self._stale.pop(key, [])

        def build() -> dict[str, Any]:
            return requests.update_item(
                self.shape, table, key, actions, condition=condition, marker=marker, prune=prune
            )

        stored = self._write_once(conn, "UpdateItem", build, table, key, marker)
        horizon = conn.settings.call_timeout + idempotency.CLOCK_SKEW_SECONDS
        stale = idempotency.stale_markers(stored, horizon=horizon)
        if stale:
            with self._stale_lock:
                self._stale[key] = stale
        return cast(ModelT, self.shape.model.from_raw_data(stored))

    def _write_once(
        self,
        conn: Connection,
        operation: str,
        build: Callable[[], dict[str, Any]],
        table: str,
        key: KeyT,
        marker: str,
        what: str = "condition",
    ) -> RawItem:
        """Send a marked write; on a failed condition, reconcile with the stored item.

        Returns the item as stored (``Attributes`` of an update, or the item read
        back when an earlier attempt of this call had landed).
        """
        for _ in range(_FRESH_ROW_ATTEMPTS):
            params = build()
            try:
                response = self._write(conn, operation, params, table, key, what)
                return cast(RawItem, response.get("Attributes") or params.get("Item") or {})
            except ConditionFailed:
                stored = self._load_raw(conn, table, key)
                expired = stored is not None and self.shape.expired(stored)
                outcome = idempotency.reconcile(stored, marker, expired=expired)
                if outcome is idempotency.Outcome.APPLIED:
                    return cast(RawItem, stored)
                if outcome is idempotency.Outcome.FAILED:
                    raise
                self._delete_expired(conn, table, key, cast(RawItem, stored))
        raise ConditionFailed(
            f"{table}: {what} failed for key {key!r}: the item kept expiring in the way",
            table=table,
            key=key,
        )

    def _load_raw(self, conn: Connection, table: str, key: KeyT) -> RawItem | None:
        params = requests.get_item(self.shape, table, key, consistent=True)
        item: RawItem | None = self._send(conn, "GetItem", params, table).get("Item")
        return item

    def _delete_expired(self, conn: Connection, table: str, key: KeyT, stored: RawItem) -> None:
        """Delete an expired item (only while it is still the one read), for a fresh row."""
        ttl_name = cast(str, self.shape.ttl_name)
        params = requests.delete_item(self.shape, table, key)
        params["ConditionExpression"] = "#ttl = :ttl"
        params["ExpressionAttributeNames"] = {"#ttl": ttl_name}
        params["ExpressionAttributeValues"] = {":ttl": stored[ttl_name]}
        with contextlib.suppress(ConditionFailed):  # written meanwhile: next attempt sees it
            self._write(conn, "DeleteItem", params, table, key)

    @_bounded
    def delete(self, key_or_item: KeyT | ModelT, *, condition: Condition | None = None) -> None:
        """Delete by key or by instance (no error if absent, unless `condition` fails)."""
        key = cast(
            KeyT,
            self.shape.canonical(
                self.shape.key_of_model(key_or_item)
                if isinstance(key_or_item, BaseModel)
                else key_or_item
            ),
        )
        conn, table = self._connect()
        params = requests.delete_item(self.shape, table, key, condition=condition)
        self._write(conn, "DeleteItem", params, table, key)

    def _write(
        self,
        conn: Connection,
        operation: str,
        params: dict[str, Any],
        table: str,
        key: KeyT,
        what: str = "condition",
    ) -> Any:
        """Send a single-item write; invalidate the key whatever happens; name it on failure.

        Invalidation runs on failure too: a timed-out write may still have landed.
        """
        try:
            return self._send(conn, operation, params, table)
        except ConditionFailed as err:
            raise ConditionFailed(
                f"{table}: {what} failed for key {key!r}", table=table, code=err.code, key=key
            ) from err
        finally:
            self._invalidate([key])

    @_bounded
    def batch_save(self, items: Iterable[ModelT]) -> int:
        """Write any number of items, 25 a request, resubmitting unprocessed ones.

        Every item is serialised and checked before the first request is sent,
        so one bad item means nothing is written. Puts are idempotent, so a
        resubmitted item is stored once. Two items with the same key raise
        `InvalidRequest`. Batch writes carry no conditions, so optimistic locking
        does not apply: each item's version is set to one more than it holds.

        Returns:
            The number of items written.
        """
        if isinstance(items, BaseModel) or not isinstance(items, Iterable):
            raise InvalidRequest(f"batch_save takes a collection of items, got {items!r}")
        listed = list(items)
        for item in listed:
            if isinstance(item, self.shape.model):
                self.shape.stamp(item)
        conn, table = self._connect()
        puts, keys = requests.put_requests(self.shape, table, listed)
        self._batch_write(conn, table, puts, keys)
        return len(puts)

    @_bounded
    def batch_delete(self, keys: Iterable[KeyT]) -> int:
        """Delete any number of items by key, 25 a request; duplicate keys are collapsed.

        Returns:
            The number of distinct keys deleted (absent keys count too).
        """
        unique = self._keys(keys, "batch_delete")
        conn, table = self._connect()
        deletes = [{"DeleteRequest": {"Key": self.shape.raw_key(k)}} for k in unique]
        self._batch_write(conn, table, deletes, unique)
        return len(deletes)

    def _batch_write(
        self, conn: Connection, table: str, writes: list[dict[str, Any]], keys: Sequence[Any]
    ) -> None:
        def send(chunk: list[dict[str, Any]]) -> dict[str, Any]:
            request = requests.batch_write_chunk(table, chunk)
            return cast(dict[str, Any], self._send(conn, "BatchWriteItem", request, table))

        def collect(response: dict[str, Any]) -> list[dict[str, Any]]:
            return list(response.get("UnprocessedItems", {}).get(table, []))

        try:
            self._rounds(conn, table, "BatchWriteItem", writes, BATCH_WRITE_MAX, send, collect)
        finally:
            self._invalidate(keys)

    def _invalidate(self, keys: Iterable[Any]) -> None:
        """Evict ``keys`` from every cache of the table, in this process and (bus) beyond."""
        coherence.invalidate(self._table(current_connection()), keys)

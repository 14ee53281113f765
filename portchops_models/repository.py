"""`Repository[ModelT, KeyT]`: typed reads and writes with the good practice built in.

Every request goes through one path (`Repository._send`): the shared pooled
client, ``ReturnConsumedCapacity``, the retry policy, metrics, and the
translation of botocore errors into `portchops_models.errors`. On top of it:

* reads: `batch_get` (100 keys a request, chunks fanned out over the pool,
  ``UnprocessedKeys`` resubmitted), query pages with signed cursors, explicit
  (parallel) scans, projections, and the cache for point and batch reads;
* writes: `save` with conditions and optimistic locking, `batch_save` /
  `batch_delete` (25 a request, ``UnprocessedItems`` resubmitted), each one
  invalidating the cache for what it touches;
* items whose TTL has passed are left out: DynamoDB deletes them lazily and
  still returns them until then.

Subclasses (`UserRepository`, `UserProgressRepository`) give the key-shaped
public methods (``get(user_id)``, ``get(user_id, lesson_id)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast, overload

from pynamodb.attributes import (
    Attribute,
)
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .batching import fan_out, merge_segments
from .cache import CachePolicy, ItemCache
from .connection import Connection, current_connection
from .cursor import decode_cursor, encode_cursor
from .decoding import model_decoder
from .errors import (
    ConditionFailed,
    InvalidRequest,
    ItemNotFound,
    PortChopsError,
    ThrottledError,
)
from .expressions import Expression
from .limits import (
    BATCH_GET_MAX,
    BATCH_WRITE_MAX,
    HASH_KEY_MAX_BYTES,
    RANGE_KEY_MAX_BYTES,
    check_item,
    check_key_part,
)
from .metrics import Metrics
from .models.attributes import ExpiryAttribute
from .models.base import BaseModel
from .models.user_progress import default_expiry
from .projections import Projection
from .retry import RetryPolicy
from .settings import current_settings

__all__ = ["UNSET", "Page", "Repository", "default_metrics"]

ModelT = TypeVar("ModelT", bound=BaseModel)
KeyT = TypeVar("KeyT", bound=Hashable)
T = TypeVar("T")
P = TypeVar("P", bound=Projection[Any])

RawItem = dict[str, dict[str, Any]]


class _Unset:
    """Marks an argument that was not given (where ``None`` is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

_DEFAULT_METRICS = Metrics()
_NOT_DECODED = object()


def default_metrics() -> Metrics:
    """The `Metrics` shared by every repository built without ``metrics=``."""
    return _DEFAULT_METRICS


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
        retry: the `RetryPolicy`; by default built from the ``retry_*`` settings.
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
        settings = current_settings()
        if cache is UNSET:
            cache = (
                CachePolicy(maxsize=settings.cache_maxsize, ttl=settings.cache_ttl_seconds)
                if settings.cache_maxsize > 0
                else None  # PORTCHOPS_CACHE_MAXSIZE=0 turns caching off
            )
        self.metrics = metrics if metrics is not None else _DEFAULT_METRICS
        self._cache: ItemCache[KeyT, RawItem] | None = (
            ItemCache(cache, on_event=self._count_cache) if cache is not None else None
        )
        self._retry_given = retry
        self._generation = -1
        model = self.model
        untyped: Any = model  # PynamoDB's key-attribute helpers are untyped
        self._hash_attr: Attribute[Any] = untyped._hash_key_attribute()
        self._range_attr: Attribute[Any] | None = untyped._range_key_attribute()
        self._key_names = (self._hash_attr.attr_name,) + (
            (self._range_attr.attr_name,) if self._range_attr is not None else ()
        )
        self._ttl_name = next(
            (
                a.attr_name
                for a in model.get_attributes().values()
                if isinstance(a, ExpiryAttribute)
            ),
            None,
        )
        attrs = model.get_attributes()
        self._version_name = model._version_attribute_name
        self._has_updated_at = "updated_at" in attrs
        self._decode_model: Callable[[RawItem], ModelT] = model_decoder(model)

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
            self._generation = conn.generation
        return conn, conn.settings.table_name(self.model.base_table_name)

    def _send(self, conn: Connection, operation: str, params: dict[str, Any], table: str) -> Any:
        """One API call with this repository's retry policy and metrics."""
        return conn.send(operation, params, table=table, retry=self.retry, metrics=self.metrics)

    # ------------------------------------------------------------------ keys

    def _key_parts(self, key: KeyT) -> tuple[str, ...]:
        # Fast path: a non-empty ASCII str of at most the limit's length is a valid key
        # part (its length is its size in UTF-8); anything else takes the full check.
        if self._range_attr is None:
            if isinstance(key, str) and key.isascii() and 0 < len(key) <= HASH_KEY_MAX_BYTES:
                return (key,)
            parts: tuple[object, ...] = (key,)
        elif isinstance(key, tuple) and len(key) == 2:
            hash_part, range_part = key
            if (
                isinstance(hash_part, str)
                and isinstance(range_part, str)
                and hash_part.isascii()
                and range_part.isascii()
                and 0 < len(hash_part) <= HASH_KEY_MAX_BYTES
                and 0 < len(range_part) <= RANGE_KEY_MAX_BYTES
            ):
                return (hash_part, range_part)
            parts = key
        else:
            raise InvalidRequest(
                f"{self.model.__name__} key must be a ({', '.join(self._key_names)}) tuple, "
                f"got {key!r}"
            )
        return tuple(
            check_key_part(part, name=name, max_bytes=limit)
            for part, name, limit in zip(
                parts, self._key_names, (HASH_KEY_MAX_BYTES, RANGE_KEY_MAX_BYTES), strict=False
            )
        )

    def _check_key(self, key: KeyT) -> KeyT:
        self._key_parts(key)
        return key

    def _raw_key(self, key: KeyT) -> RawItem:
        parts = zip(self._key_names, self._key_parts(key), strict=True)
        return {name: {"S": part} for name, part in parts}

    def _key_of(self, item: RawItem) -> KeyT:
        if self._range_attr is None:
            return cast(KeyT, item[self._key_names[0]]["S"])
        return cast(KeyT, (item[self._key_names[0]]["S"], item[self._key_names[1]]["S"]))

    # ------------------------------------------------------------------ decoding

    def _expired(self, item: RawItem, now: float) -> bool:
        name = self._ttl_name
        if name is None:
            return False
        value = item.get(name)
        if value is None or "N" not in value:
            return False
        try:
            return float(value["N"]) <= now
        except ValueError:
            return False

    def _decode(self, item: RawItem, projection: type[P] | None) -> Any:
        if projection is None:
            return self._decode_model(item)
        return projection.from_raw(item)

    def _projection_expression(
        self, projection: type[Projection[Any]] | None, expr: Expression
    ) -> str | None:
        """The ProjectionExpression for `projection` (keys and TTL included), names in `expr`."""
        if projection is None:
            return None
        if projection.__model__ is not self.model:
            raise InvalidRequest(
                f"{projection.__name__} projects {getattr(projection.__model__, '__name__', '?')},"
                f" not {self.model.__name__}"
            )
        extra = (self._ttl_name,) if self._ttl_name else ()
        return expr.projection((*self._key_names, *projection.attribute_names(), *extra))

    def _projection_params(self, projection: type[Projection[Any]] | None) -> dict[str, Any]:
        expr = Expression()
        expression = self._projection_expression(projection, expr)
        return {} if expression is None else expr.apply({"ProjectionExpression": expression})

    # ------------------------------------------------------------------ point reads

    def _load(
        self, key: KeyT, *, consistent: bool, projection: type[Projection[Any]] | None
    ) -> RawItem | None:
        conn, table = self._connect()
        params: dict[str, Any] = {
            "TableName": table,
            "Key": self._raw_key(key),
            "ReturnConsumedCapacity": "TOTAL",
        }
        if consistent:
            params["ConsistentRead"] = True
        params.update(self._projection_params(projection))
        item: RawItem | None = self._send(conn, "GetItem", params, table).get("Item")
        if item is None or self._expired(item, time.time()):
            return None
        return item

    def _find(
        self, key: KeyT, *, consistent: bool = False, projection: type[P] | None = None
    ) -> Any:
        cache = self._cache
        if cache is None or consistent:
            item = self._load(key, consistent=consistent, projection=projection)
        else:
            self._key_parts(key)
            self._connect()
            item = cache.get_or_load(
                key, projection, lambda: self._load(key, consistent=False, projection=projection)
            )
            if item is not None and self._expired(item, time.time()):
                item = None
        return None if item is None else self._decode(item, projection)

    def _get(
        self, key: KeyT, *, consistent: bool = False, projection: type[P] | None = None
    ) -> Any:
        found = self._find(key, consistent=consistent, projection=projection)
        if found is None:
            _conn, table = self._connect()
            raise ItemNotFound(f"{table}: no item with key {key!r}", table=table, key=key)
        return found

    # ------------------------------------------------------------------ batch reads

    @overload
    def batch_get(self, keys: Iterable[KeyT], *, projection: None = None) -> list[ModelT]: ...
    @overload
    def batch_get(self, keys: Iterable[KeyT], *, projection: type[P]) -> list[P]: ...
    def batch_get(
        self, keys: Iterable[KeyT], *, projection: type[P] | None = None
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
        ordered = list(dict.fromkeys(self._check_key(k) for k in keys))
        conn, table = self._connect()
        proj_params = self._projection_params(projection)
        found: dict[KeyT, RawItem | None] = {}
        decoded: dict[KeyT, Any] = {}  # filled by the batch threads as chunks arrive
        wanted = ordered
        cache = self._cache
        if cache is not None and ordered:
            found, wanted = cache.get_many(ordered, projection)
        if wanted:
            token = cache.begin(wanted) if cache is not None else None
            try:
                fetched = self._batch_read(conn, table, wanted, proj_params, projection, decoded)
            except BaseException:
                if token is not None:
                    token.close()
                raise
            if cache is not None and token is not None:
                missing = [k for k in wanted if k not in fetched]
                cache.put_many(fetched, projection, missing=missing, token=token)
            found.update(fetched)
        now = time.time()
        out: list[Any] = []
        for key in ordered:
            item = found.get(key)
            if item is not None and not self._expired(item, now):
                obj = decoded.get(key, _NOT_DECODED)
                out.append(self._decode(item, projection) if obj is _NOT_DECODED else obj)
        return out

    def _batch_read(
        self,
        conn: Connection,
        table: str,
        keys: Sequence[KeyT],
        proj: dict[str, Any],
        projection: type[P] | None = None,
        decoded: dict[KeyT, Any] | None = None,
    ) -> dict[KeyT, RawItem]:
        """Fetch `keys`; the raw items by key. With `decoded`, also decode them into it.

        Decoding happens in the batch threads, chunk by chunk, while the other chunks
        are still on the wire, instead of all at once after the last one arrives.
        """
        results: dict[KeyT, RawItem] = {}
        pending = [self._raw_key(k) for k in keys]

        def send(chunk: list[RawItem]) -> dict[str, Any]:
            request: dict[str, Any] = {
                "RequestItems": {table: {"Keys": chunk, **proj}},
                "ReturnConsumedCapacity": "TOTAL",
            }
            response = cast(dict[str, Any], self._send(conn, "BatchGetItem", request, table))
            if decoded is not None:
                now = time.time()
                for item in response.get("Responses", {}).get(table, ()):
                    if not self._expired(item, now):
                        decoded[self._key_of(item)] = self._decode(item, projection)
            return response

        def collect(response: dict[str, Any]) -> list[RawItem]:
            for item in response.get("Responses", {}).get(table, []):
                results[self._key_of(item)] = item
            unprocessed = response.get("UnprocessedKeys", {}).get(table, {})
            return list(unprocessed.get("Keys", []))

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
        """Send `pending` in chunks, in parallel; resubmit what comes back unprocessed.

        Keeps going while rounds make progress; gives up with `ThrottledError`
        after ``max_attempts`` rounds in a row that processed nothing.
        """
        policy = self.retry
        stalled = 0
        while pending:
            chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
            responses = fan_out(conn.executor, send, chunks)
            leftover: list[Any] = []
            for response in responses:
                leftover.extend(collect(response))
            if not leftover:
                return
            stalled = stalled + 1 if len(leftover) >= len(pending) else 0
            if stalled >= policy.max_attempts:
                raise ThrottledError(
                    f"{table}: {operation} left {len(leftover)} unprocessed after "
                    f"{stalled} rounds without progress",
                    table=table,
                    attempts=stalled,
                    outstanding=len(leftover),
                )
            self.metrics.record_retry(operation, table=table)
            policy.sleep(policy.backoff(stalled))
            pending = leftover

    # ------------------------------------------------------------------ query and scan

    def _page(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        scope: Sequence[str],
        cursor: str | None,
        projection: type[P] | None,
    ) -> Page[Any]:
        conn, table = self._connect()
        params["TableName"] = table
        params["ReturnConsumedCapacity"] = "TOTAL"
        secret = conn.settings.cursor_secret
        signing = secret.get_secret_value() if secret is not None else None
        if cursor is not None:
            params["ExclusiveStartKey"] = decode_cursor(
                cursor, scope=(table, *scope), secret=signing
            )
        response = self._send(conn, operation, params, table)
        now = time.time()
        items = [
            self._decode(item, projection)
            for item in response.get("Items", [])
            if not self._expired(item, now)
        ]
        last = response.get("LastEvaluatedKey")
        next_cursor = encode_cursor(last, scope=(table, *scope), secret=signing) if last else None
        return Page(items, next_cursor)

    def _query_page(
        self,
        *,
        partition: tuple[str, str],
        sort: Callable[[Expression], str] | None = None,
        index: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        projection: type[P] | None = None,
        consistent: bool = False,
    ) -> Page[Any]:
        name, value = partition
        check_key_part(value, name=name, max_bytes=HASH_KEY_MAX_BYTES)
        expr = Expression()
        condition = f"{expr.name(name)} = {expr.value({'S': value})}"
        if sort is not None:
            condition += f" AND {sort(expr)}"
        params: dict[str, Any] = {"KeyConditionExpression": condition}
        if index is not None:
            params["IndexName"] = index
        if limit is not None:
            params["Limit"] = _check_limit(limit)
        if newest_first:
            params["ScanIndexForward"] = False
        if consistent:
            params["ConsistentRead"] = True
        projected = self._projection_expression(projection, expr)
        if projected is not None:
            params["ProjectionExpression"] = projected
        expr.apply(params)
        scope = ("query", index or "", value)
        return self._page("Query", params, scope=scope, cursor=cursor, projection=projection)

    def _iter_pages(self, first: Callable[[str | None], Page[T]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = first(cursor)
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor

    @overload
    def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
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
        projection: type[P],
    ) -> Page[P]: ...
    def scan_page(
        self,
        *,
        segment: int = 0,
        total_segments: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
        projection: type[P] | None = None,
    ) -> Page[ModelT] | Page[P]:
        """One page of one segment of a scan (resumable through its cursor).

        Scans read the whole table: use them for migrations and exports, never
        to look items up (that is what keys, queries and indexes are for).
        """
        if not (isinstance(total_segments, int) and 1 <= total_segments <= 1_000_000):
            raise InvalidRequest("total_segments must be an int from 1 to 1,000,000")
        if not (isinstance(segment, int) and 0 <= segment < total_segments):
            raise InvalidRequest(f"segment must be an int from 0 to {total_segments - 1}")
        params: dict[str, Any] = {}
        if total_segments > 1:
            params.update(Segment=segment, TotalSegments=total_segments)
        if limit is not None:
            params["Limit"] = _check_limit(limit)
        params.update(self._projection_params(projection))
        scope = ("scan", str(segment), str(total_segments))
        return self._page("Scan", params, scope=scope, cursor=cursor, projection=projection)

    @overload
    def scan(self, *, segments: int = 1, projection: None = None) -> Iterator[ModelT]: ...
    @overload
    def scan(self, *, segments: int = 1, projection: type[P]) -> Iterator[P]: ...
    def scan(
        self, *, segments: int = 1, projection: type[P] | None = None
    ) -> Iterator[ModelT] | Iterator[P]:
        """Every item of the table, read by `segments` parallel scan workers.

        Items arrive in no particular order; memory stays bounded (a few pages
        per worker). Only by explicit call: a scan reads the whole table.
        """

        def page(segment: int, cursor: str | None) -> Page[Any]:
            return self.scan_page(
                segment=segment, total_segments=segments, cursor=cursor, projection=projection
            )

        if segments == 1:
            return self._iter_pages(lambda cursor: page(0, cursor))
        return merge_segments(segments, page)

    # ------------------------------------------------------------------ writes

    def _stamp(self, item: ModelT) -> None:
        """Set ``updated_at`` and refresh the TTL before every write."""
        if self._has_updated_at:
            item.updated_at = datetime.now(UTC)  # type: ignore[attr-defined]
        if self._ttl_name is not None:
            item.ttl = default_expiry()  # type: ignore[attr-defined]

    def _write_actions(self) -> list[Action]:
        model: Any = self.model
        actions: list[Action] = []
        if self._has_updated_at:
            actions.append(model.updated_at.set(datetime.now(UTC)))
        if self._ttl_name is not None:
            actions.append(model.ttl.set(default_expiry()))
        return actions

    def _serialize(self, item: ModelT, table: str) -> RawItem:
        if not isinstance(item, self.model):
            raise InvalidRequest(f"expected a {self.model.__name__}, got {type(item).__name__}")
        try:
            raw = item.serialize()
        except PortChopsError:
            raise
        except Exception as err:
            raise InvalidRequest(f"{table}: {err}", table=table) from err
        self._key_parts(self._key_of(raw))
        check_item(raw, table=table)
        return raw

    def _bump_version(self, item: ModelT, raw: RawItem) -> tuple[Any, int | None, int] | None:
        """Write one more than the item's version into `raw`: (attribute, current, new)."""
        if self._version_name is None:
            return None
        attr: Any = getattr(self.model, self._version_name)
        current = getattr(item, self._version_name)
        new = 1 if current is None else int(current) + 1
        raw[attr.attr_name] = {"N": str(new)}
        return attr, current, new

    def save(self, item: ModelT, *, condition: Condition | None = None) -> ModelT:
        """Write the whole item (PutItem), optionally only if `condition` holds.

        Optimistic locking: when the model has a ``version`` attribute, the write
        succeeds only if the stored version is still the one this item was read
        with, and the version goes up by one.

        Raises:
            ConditionFailed: the condition or the version check failed.
            InvalidRequest: bad key, item over 400 KB, or a value DynamoDB rejects.
        """
        conn, table = self._connect()
        self._stamp(item)
        raw = self._serialize(item, table)
        expr = Expression()
        checks: list[Condition] = []
        bumped = self._bump_version(item, raw)
        new_version = bumped[2] if bumped is not None else None
        if bumped is not None:
            version_attr, current, _ = bumped
            checks.append(
                version_attr.does_not_exist() if current is None else version_attr == current
            )
        if condition is not None:
            checks.append(condition)
        params: dict[str, Any] = {
            "TableName": table,
            "Item": raw,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if checks:
            combined = checks[0]
            for extra in checks[1:]:
                combined = combined & extra
            params["ConditionExpression"] = expr.condition(combined)
        expr.apply(params)
        key = self._key_of(raw)
        what = "version conflict (stale item) or condition" if new_version else "condition"
        self._write(conn, "PutItem", params, table, key, what)
        if new_version is not None:
            setattr(item, self._version_name or "version", new_version)
        return item

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

    def _delete(self, key: KeyT, *, condition: Condition | None = None) -> None:
        conn, table = self._connect()
        params: dict[str, Any] = {
            "TableName": table,
            "Key": self._raw_key(key),
            "ReturnConsumedCapacity": "TOTAL",
        }
        if condition is not None:
            expr = Expression()
            params["ConditionExpression"] = expr.condition(condition)
            expr.apply(params)
        self._write(conn, "DeleteItem", params, table, key)

    def _update(
        self, key: KeyT, actions: Sequence[Action], *, condition: Condition | None = None
    ) -> ModelT:
        """One atomic UpdateItem; returns the item as stored afterwards."""
        conn, table = self._connect()
        expr = Expression()
        params: dict[str, Any] = {
            "TableName": table,
            "Key": self._raw_key(key),
            "UpdateExpression": expr.update([*actions, *self._write_actions()]),
            "ReturnValues": "ALL_NEW",
            "ReturnConsumedCapacity": "TOTAL",
        }
        if condition is not None:
            params["ConditionExpression"] = expr.condition(condition)
        expr.apply(params)
        response = self._write(conn, "UpdateItem", params, table, key)
        item: ModelT = self.model.from_raw_data(response["Attributes"])
        return item

    def batch_save(self, items: Iterable[ModelT]) -> int:
        """Write any number of items, 25 a request, resubmitting unprocessed ones.

        Puts are idempotent, so a resubmitted item is stored once. Two items with
        the same key in one call raise `InvalidRequest` (DynamoDB rejects them
        too; which one should win is the caller's decision). Batch writes cannot
        carry conditions, so optimistic locking does not apply: each item's
        version is set to one more than it holds.

        Returns:
            The number of items written.
        """
        conn, table = self._connect()
        requests: list[dict[str, Any]] = []
        seen: set[KeyT] = set()
        for item in items:
            self._stamp(item)
            raw = self._serialize(item, table)
            self._bump_version(item, raw)
            key = self._key_of(raw)
            if key in seen:
                raise InvalidRequest(f"{table}: key {key!r} appears twice in one batch_save")
            seen.add(key)
            requests.append({"PutRequest": {"Item": raw}})
        self._batch_write(conn, table, requests, list(seen))
        return len(requests)

    def batch_delete(self, keys: Iterable[KeyT]) -> int:
        """Delete any number of items by key, 25 a request; duplicate keys are collapsed.

        Returns:
            The number of distinct keys deleted (absent keys count too).
        """
        conn, table = self._connect()
        unique = list(dict.fromkeys(self._check_key(k) for k in keys))
        requests = [{"DeleteRequest": {"Key": self._raw_key(k)}} for k in unique]
        self._batch_write(conn, table, requests, unique)
        return len(requests)

    def _batch_write(
        self, conn: Connection, table: str, requests: list[dict[str, Any]], keys: list[KeyT]
    ) -> None:
        def send(chunk: list[dict[str, Any]]) -> dict[str, Any]:
            request = {"RequestItems": {table: chunk}, "ReturnConsumedCapacity": "TOTAL"}
            return cast(dict[str, Any], self._send(conn, "BatchWriteItem", request, table))

        def collect(response: dict[str, Any]) -> list[dict[str, Any]]:
            return list(response.get("UnprocessedItems", {}).get(table, []))

        try:
            self._rounds(conn, table, "BatchWriteItem", requests, BATCH_WRITE_MAX, send, collect)
        finally:
            self._invalidate(keys)

    def _invalidate(self, keys: Iterable[KeyT]) -> None:
        if self._cache is not None:
            self._cache.invalidate(keys)


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest(f"limit must be a positive int, got {limit!r}")
    return limit

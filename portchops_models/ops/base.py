"""`RepositoryBase`: what a repository of either API holds, and its plumbing.

The sync `Repository` and the async `AsyncRepository` both derive from it and
differ only in their `Runtime` and in how their public methods run the shared
operations (`run_sync` or ``await``).
"""

from __future__ import annotations

from collections.abc import Coroutine, Hashable
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

from ..cache import CachePolicy, ItemCache, bus, coherence
from ..dynamo.idempotency import StaleMarkers
from ..errors import InvalidRequest
from ..models.base import BaseModel
from ..models.shape import RawItem, TableShape, shape_of
from ..observe import tracing
from ..observe.metrics import Metrics
from ..settings import current_settings, settings_generation
from ..transport import deadline
from ..transport.connection import current_connection
from ..transport.retry import RetryPolicy
from .coalesce import Batches
from .context import Bound, Decoders
from .hits import MISS, Hits
from .runtime import Runtime

__all__ = ["MISS", "UNSET", "RepositoryBase", "default_metrics"]

ModelT = TypeVar("ModelT", bound=BaseModel)
KeyT = TypeVar("KeyT", bound=Hashable)
T = TypeVar("T")


class _Unset:
    """Marks an argument that was not given (where ``None`` is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

_DEFAULT_METRICS = Metrics()
bus.use_metrics(_DEFAULT_METRICS)  # the invalidation bus counts there too


def default_metrics() -> Metrics:
    """The `Metrics` shared by every repository built without ``metrics=``."""
    return _DEFAULT_METRICS


class RepositoryBase(Generic[ModelT, KeyT]):
    """The state and plumbing shared by the sync and async repositories.

    Args:
        cache: a `CachePolicy`, or ``None`` to turn caching off; by default
            ``cache_maxsize`` entries for ``cache_ttl_seconds`` from the settings.
        retry: the `RetryPolicy`; by default the connection's (``retry_*`` settings).
        metrics: where requests, capacity, retries and cache hits are counted;
            by default the process-wide `default_metrics()`.
        coalesce: send the point reads (`get`, `find`, `exists`) of distinct keys that
            are issued together (async: in one event-loop tick; sync: by several threads
            within 1 ms) as BatchGetItem requests of up to 100 keys, with the results,
            errors, cache and consistency of separate reads
            (`portchops_models.ops.coalesce`). Off by default.
    """

    model: type[ModelT]
    #: how the shared operations wait and send: set by each face (`ops.sync_runtime`'s or
    #: `ops.aio_runtime`'s `RUNTIME`).
    runtime: ClassVar[Runtime]

    def __init__(
        self,
        *,
        cache: CachePolicy | None = UNSET,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
        coalesce: bool = False,
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
        self._metrics = metrics if metrics is not None else _DEFAULT_METRICS
        self._cache: ItemCache[KeyT, RawItem] | None = (
            ItemCache(
                cache,
                on_event=self._count_cache,
                on_hit=self._metrics.record_cache_hit,
                gate=coherence.may_serve,
            )
            if cache is not None
            else None
        )
        self._retry_given = retry
        self._generation = -1
        self.shape: TableShape = shape_of(model)
        self._decoders: Decoders[ModelT] = Decoders(self.shape)
        self._stale = StaleMarkers()
        self._hits = (
            Hits(self.shape, self._cache, self._decoders.model) if self._cache is not None else None
        )
        self._batches: Batches | None = self.runtime.batches() if coalesce else None
        self._bound: Bound[ModelT] | None = None

    @property
    def metrics(self) -> Metrics:
        """Where requests, capacity, retries and cache hits are counted."""
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Metrics) -> None:
        self._metrics = metrics
        if self._cache is not None:  # the cheapest hits count straight into it
            self._cache.on_hit = metrics.record_cache_hit

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
            tracing.cache_counted(hit, count)

    def _hit(
        self, key: object, consistent: bool, projection: object, *, exists: bool = False
    ) -> Any:
        """A cache hit for a point read (`portchops_models.ops.hits`), or `MISS`.

        A face asks it before `_calling`: a hit returns with no deadline, span or
        connection. `MISS` (a miss, a consistent read, no cache, or settings changed
        since the last call, whose `_bind` then clears the cache) takes the whole path.
        """
        hits = self._hits
        if hits is None or consistent or self._generation != settings_generation():
            return MISS
        return hits.exists(key) if exists else hits.find(key, projection)

    def _calling(self, method: str) -> _Calling[ModelT]:
        """The scope of public call `method`, giving its context (`Bound`).

        The call runs under its ``call_timeout`` deadline and its trace scope (span,
        slow-call record: `portchops_models.observe.tracing`); the repository is bound
        inside them, so the connection a first call after `configure()` builds counts
        against the deadline. A face runs the operation in it::

            with self._calling("get") as ctx:
                return await drive(reads.get(ctx, key, consistent, projection))
        """
        return _Calling(self, method)

    def _current_table(self) -> str:
        """The model's table name under the settings in force (no connection built)."""
        return current_settings().table_name(self.shape.model.base_table_name)

    def _bind(self) -> Bound[ModelT]:
        """The context of one call (`Bound`): the connection in force and all the rest.

        The same `Bound` serves every call while the connection (and `metrics`) stay
        the ones it was made with: all it holds is fixed for them.
        """
        conn = current_connection()
        bound = self._bound
        if bound is not None and bound.conn is conn and bound.metrics is self.metrics:
            return bound
        table = conn.settings.table_name(self.shape.model.base_table_name)
        if conn.generation != self._generation:
            # New settings may mean other tables: nothing cached before still applies.
            if self._cache is not None and self._generation != -1:
                self._cache.clear()
            if self._cache is not None:  # every write to the table, from anywhere, evicts here
                coherence.register(self._cache, table)
            if self._hits is not None:  # what may close the cache, under these settings
                self._hits.gated = coherence.gated()
            self._generation = conn.generation
        self._bound = Bound(
            conn,
            table,
            self.shape,
            self.runtime,
            self._retry_given or conn.retry,
            self.metrics,
            self._cache,
            self._decoders,
            self._stale,
            self._batches,
        )
        return self._bound


#: A shared operation, as the public methods receive it.
Operation = Coroutine[Any, Any, T]


class _Calling(Generic[ModelT]):
    """`RepositoryBase._calling`'s scope: the deadline, then the trace scope, then the
    binding (a class: it opens every public call, and costs less than a generator's)."""

    __slots__ = ("_bounded", "_method", "_repository", "_scope")

    def __init__(self, repository: RepositoryBase[ModelT, Any], method: str) -> None:
        self._repository = repository
        self._method = method

    def __enter__(self) -> Bound[ModelT]:
        repository = self._repository
        settings = current_settings()
        self._bounded = bounded = deadline.bounded(settings.call_timeout)
        bounded.__enter__()
        try:
            self._scope = scope = tracing.Call(
                type(repository),
                self._method,
                settings.slow_call_seconds,
                repository._current_table,
            )
            scope.__enter__()
        except BaseException:
            bounded.__exit__(None, None, None)
            raise
        try:
            return repository._bind()
        except BaseException as err:
            self.__exit__(type(err), err, err.__traceback__)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._scope.__exit__(exc_type, exc, tb)
        finally:
            self._bounded.__exit__(exc_type, exc, tb)

"""`Bound`: one call's context, resolved once, that every operation works from.

A public call resolves what its operation needs when it starts: the connection
in force (and its table name), the model's shape, the runtime, the retry policy,
the metrics, the cache, the decoders and the markers to prune
(`portchops_models.dynamo.idempotency.StaleMarkers`). The operations
in `portchops_models.ops` take this object, never the repository, so none of
them reaches into a repository's private state and none resolves the
connection twice.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from ..cache.items import ItemCache
from ..dynamo.idempotency import StaleMarkers
from ..errors import InvalidRequest
from ..models.base import BaseModel
from ..models.decoding import model_decoder, partial_decoder
from ..models.projections import Projection
from ..models.shape import RawItem, TableShape
from ..observe.metrics import Metrics
from ..transport.connection import Connection
from ..transport.retry import RetryPolicy
from .coalesce import Batches
from .runtime import Runtime

__all__ = ["Bound", "Decoders"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Decoders(Generic[ModelT]):
    """A model's decoders: whole items, and partial ones (an index that does not project
    every attribute: `portchops_models.models.decoding.partial_decoder`), made once each."""

    def __init__(self, shape: TableShape) -> None:
        self.shape = shape
        self.model: Callable[[RawItem], ModelT] = model_decoder(cast(type[ModelT], shape.model))
        self._partial: Callable[[RawItem], ModelT] | None = None

    def of(self, index: str | None) -> Callable[[RawItem], ModelT]:
        """The decoder of items read from the table (``None``) or from `index`."""
        if index is None or not self.shape.indexes[index].partial:
            return self.model
        if self._partial is None:
            self._partial = partial_decoder(cast(type[ModelT], self.shape.model))
        return self._partial


@dataclass(frozen=True, slots=True)
class Bound(Generic[ModelT]):
    """What one call of a repository works with, resolved when the call starts.

    Attributes:
        conn: the connection in force.
        table: the model's table name under its settings.
        shape: the model's `TableShape`.
        runtime: how the call waits and sends (sync or async).
        retry: the retry policy in force (the repository's, else the connection's).
        metrics: where the call is counted.
        cache: the repository's cache, or ``None``.
        decoders: the model's decoders.
        stale: the markers the next update of a key prunes.
        coalesce: where the repository's point reads meet to leave as one batch
            (``coalesce=True``: `portchops_models.ops.coalesce`), or ``None``.
    """

    conn: Connection
    table: str
    shape: TableShape
    runtime: Runtime
    retry: RetryPolicy
    metrics: Metrics
    cache: ItemCache[Any, RawItem] | None
    decoders: Decoders[ModelT]
    stale: StaleMarkers
    coalesce: Batches | None = None

    async def send(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request through the runtime's send path (retry, metrics, errors)."""
        return await self.runtime.send(
            self.conn, operation, params, table=self.table, retry=self.retry, metrics=self.metrics
        )

    def decode(self, item: RawItem, projection: type[Projection[Any]] | None) -> Any:
        """A whole item as a model, or as `projection`."""
        if projection is None:
            return self.decoders.model(item)
        return projection.from_raw(item)

    def decoder(self, projection: type[Projection[Any]] | None) -> Callable[[RawItem], Any]:
        """What `decode` does with `projection`, as one function for a page of items."""
        return self.decoders.model if projection is None else projection.from_raw

    def keys(self, keys: Iterable[Hashable], what: str) -> list[Hashable]:
        """Distinct keys in order, each checked; a lone str or bytes is not a collection."""
        if isinstance(keys, str | bytes | bytearray) or not isinstance(keys, Iterable):
            raise InvalidRequest(f"{what} takes a collection of keys, got {keys!r}")
        return list(dict.fromkeys(self.shape.canonical_keys(keys)))

"""The evicter: a stream worker that publishes every changed key on the cache bus.

The caches of this layer hear about writes made through it (in-process coherence,
and the Redis bus across processes). A write from anywhere else (a Lambda, the
console, another service, a boto3 script) reaches them only through the table's
stream: `evicter` returns a `StreamWorker` whose handler hands the keys of each
batch of changes to `portchops_models.cache.coherence.invalidate`, and returns only
once the bus has taken them (so a checkpoint never passes keys the bus did not
publish: a crash or a Redis outage redelivers the batch)::

    evicter(User).run()                   # or: portchops streams evict --model ...

Run one fleet (one name) per table, anywhere; every process subscribed to the bus
(``PORTCHOPS_CACHE_BUS_URL``) drops the changed items.
"""

from __future__ import annotations

from typing import TypeVar

from rich.console import Console

from ..cache import bus, coherence
from ..errors import ConfigurationError, PortChopsError
from ..models.base import BaseModel
from ..observe.metrics import Metrics
from ..transport.connection import Connection
from .changes import Change
from .worker import StreamWorker

__all__ = ["evicter"]

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Seconds the handler waits for the bus to publish a batch's keys before failing it.
_FLUSH_SECONDS = 5.0


def evicter(
    model: type[ModelT],
    *,
    name: str | None = None,
    batch_size: int = 1000,
    lease_seconds: float = 30.0,
    poll_seconds: float = 0.25,
    retry_handler: bool = True,
    metrics: Metrics | None = None,
    console: Console | None = None,
    conn: Connection | None = None,
) -> StreamWorker[ModelT]:
    """A `StreamWorker` that evicts every changed item of `model`'s table from every
    process's cache, over the bus (its name defaults to ``evict-<table>``).

    Raises:
        ConfigurationError: no cache bus is configured (``PORTCHOPS_CACHE_BUS_URL``):
            there would be nobody to tell.
    """
    channel = bus.current()
    if channel is None:
        raise ConfigurationError(
            "the evicter publishes on the cache bus: set PORTCHOPS_CACHE_BUS_URL "
            "(redis://host:port/0) in this process and in every process it should reach"
        )
    table = model.table_name()

    def publish(changes: list[Change[ModelT]]) -> None:
        coherence.invalidate(table, [change.key for change in changes])
        if not channel.flush(timeout=_FLUSH_SECONDS):
            raise PortChopsError(
                f"the cache bus did not publish {len(changes)} keys of {table} within "
                f"{_FLUSH_SECONDS:.0f}s (is Redis reachable?)",
                table=table,
            )

    return StreamWorker(
        model,
        publish,
        name=name or f"evict-{table}",
        batch_size=batch_size,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        retry_handler=retry_handler,
        metrics=metrics,
        console=console,
        conn=conn,
    )

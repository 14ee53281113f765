"""The verbs ``portchops streams run`` and ``portchops streams evict``.

Both run a `StreamWorker` until stopped (SIGTERM or Ctrl-C hand its leases back,
after the batch in flight) or, with ``--until-idle``, until it has read every
shard to the stream's head. Unlike the library call, a handler that raises is
retried with backoff; a record it keeps failing on is reported with its sequence
number. A line of progress (records handled, lag behind the stream's head) is
printed every few seconds.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console

from ..models.base import BaseModel
from ..observe.metrics import Metrics
from ..streams import Change, StreamResult, StreamWorker, evicter

__all__ = ["evict", "run"]

ModelT = TypeVar("ModelT", bound=BaseModel)

_EVERY = 5.0  # seconds between progress lines


def run(
    model: type[ModelT],
    handler: Callable[[list[Change[ModelT]]], object],
    *,
    name: str,
    batch_size: int,
    lease_seconds: float,
    until_idle: bool,
    console: Console,
) -> StreamResult:
    """Run `handler` over `model`'s stream as worker fleet `name` (see the module docstring)."""
    metrics = Metrics()
    worker = StreamWorker(
        model,
        _reporting(handler, metrics, name, console),
        name=name,
        batch_size=batch_size,
        lease_seconds=lease_seconds,
        retry_handler=True,
        metrics=metrics,
        console=console,
    )
    return _run(worker, until_idle, console)


def evict(
    model: type[BaseModel],
    *,
    name: str | None,
    lease_seconds: float,
    until_idle: bool,
    console: Console,
) -> StreamResult:
    """Run the evicter of `model`'s table (`portchops_models.streams.evicter`)."""
    worker = evicter(model, name=name, lease_seconds=lease_seconds, console=console)
    return _run(worker, until_idle, console)


def _run(worker: StreamWorker[ModelT], until_idle: bool, console: Console) -> StreamResult:
    console.print(f"stream worker {worker.name} on {worker.model.table_name()}: {worker.owner}")
    with _signals_stop(worker):
        result = worker.run(until_idle=until_idle)
    console.print(
        f"{worker.name}: {result.records} records in {result.batches} batches, "
        f"{result.shards_finished} shards finished, {result.handler_errors} handler errors, "
        f"lag {result.lag_seconds:.1f}s"
    )
    return result


def _reporting(
    handler: Callable[[list[Change[ModelT]]], object],
    metrics: Metrics,
    name: str,
    console: Console,
) -> Callable[[list[Change[ModelT]]], object]:
    last = time.monotonic()

    def handle(changes: list[Change[ModelT]]) -> object:
        nonlocal last
        outcome = handler(changes)
        now = time.monotonic()
        if now - last >= _EVERY:
            last = now
            snap = metrics.snapshot()
            records = snap["stream_records"] + len(changes)
            console.print(
                f"  {name}: {records} records, lag {snap['stream_lag_seconds']:.1f}s, "
                f"{snap['stream_handler_errors']} handler errors"
            )
        return outcome

    return handle


@contextmanager
def _signals_stop(worker: StreamWorker[ModelT]) -> Iterator[None]:
    """SIGTERM (a container stopping) and SIGINT stop the worker after its batch in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop = lambda *_: worker.stop()  # noqa: E731
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

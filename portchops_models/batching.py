"""Parallel work for batch calls and scans: chunk fan-out and segment merging."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

from . import deadline
from .errors import InvalidRequest

__all__ = ["PageLike", "check_segments", "fan_out", "merge_segments"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class PageLike(Protocol[T_co]):
    """What `merge_segments` needs of a page: its items and the next cursor."""

    @property
    def items(self) -> Sequence[T_co]: ...  # pragma: no cover

    @property
    def cursor(self) -> str | None: ...  # pragma: no cover


def fan_out(
    executor: Executor, send: Callable[[list[Any]], dict[str, Any]], chunks: list[list[Any]]
) -> list[dict[str, Any] | BaseException]:
    """Send chunks in parallel on `executor` (inline when there is only one).

    Waits for every chunk, so no request outlives the call, and returns each chunk's
    answer or the exception it raised, in the order of `chunks`: the caller knows
    exactly which chunks were done when one failed.
    """
    if len(chunks) == 1:
        try:
            return [send(chunks[0])]
        except Exception as err:
            return [err]
    futures = [executor.submit(deadline.propagate(send), chunk) for chunk in chunks]
    outcomes: list[dict[str, Any] | BaseException] = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as err:
            outcomes.append(err)
    return outcomes


_DONE = object()


def check_segments(segments: object) -> None:
    """Raise `InvalidRequest` unless `segments` is an int from 1 to 1000."""
    if isinstance(segments, bool) or not (isinstance(segments, int) and 1 <= segments <= 1000):
        raise InvalidRequest("segments must be an int from 1 to 1000")


def merge_segments(segments: int, page: Callable[[int, str | None], PageLike[T]]) -> Iterator[T]:
    """Run one thread per scan segment; yield their items as pages arrive."""
    check_segments(segments)
    pages: queue.Queue[Any] = queue.Queue(maxsize=segments * 2)
    stop = threading.Event()

    def worker(segment: int) -> None:
        cursor: str | None = None
        try:
            while not stop.is_set():
                result = page(segment, cursor)
                pages.put(result.items)
                if result.cursor is None:
                    break
                cursor = result.cursor
        except BaseException as err:
            pages.put(err)
        finally:
            pages.put(_DONE)

    threads = [
        threading.Thread(
            target=deadline.propagate(worker), args=(s,), daemon=True, name=f"portchops-scan-{s}"
        )
        for s in range(segments)
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < segments:
            got = pages.get()
            if got is _DONE:
                finished += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                yield from got
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock workers waiting on a full queue
            try:
                pages.get_nowait()
            except queue.Empty:
                for t in threads:
                    t.join(timeout=0.05)

"""Deadlines: every public call ends within ``call_timeout`` seconds.

A repository method opens a deadline with `bounded` when it starts; everything
the call does underneath reads it: the retry loop does not sleep past it,
waiting for a pooled connection stops at it, connecting gets the time left, and
reading an answer (its headers and its body, as a whole: not per socket read)
ends at it, on the sync and async transports and on botocore's own path
(`portchops_models.transport`). Past it the call raises `CallTimeout` naming
what it was waiting for. Nested calls keep the outermost deadline, and the batch threads
inherit it (`propagate`), so a call with many chunks and rounds is bounded as a
whole.

Example:
    >>> with bounded(2.5):
    ...     0 < remaining() <= 2.5
    True
    >>> remaining() is None
    True
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import CallTimeout

__all__ = [
    "bounded",
    "expired",
    "propagate",
    "remaining",
    "timeout_error",
    "until",
    "window",
]

T = TypeVar("T")

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "portchops_deadline", default=None
)


class bounded:  # lower case: it is used as a function, ``with bounded(2.5):``
    """Run the block under a deadline `seconds` from now (unless one is already set).

    A class rather than a generator-based context manager: it opens every public
    call, and this way costs a third as much.
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._token: contextvars.Token[tuple[float, float] | None] | None = None

    def __enter__(self) -> None:
        if _deadline.get() is None:
            seconds = self._seconds
            self._token = _deadline.set((time.monotonic() + seconds, seconds))

    def __exit__(self, *exc: object) -> None:
        token = self._token
        if token is not None:
            self._token = None
            _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline (may be negative), or ``None`` without one."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def until() -> float | None:
    """The deadline as a `time.monotonic` instant, or ``None`` without one.

    For code that bounds several steps by the same instant (connect, send, read)
    and so reads the deadline once.
    """
    current = _deadline.get()
    return None if current is None else current[0]


def window() -> tuple[float, float] | None:
    """(`until`, the `time.monotonic` instant the outermost bounded call began) of the
    deadline in force, in one read, or ``None`` without one.

    The start is what the async pool ranks waiters by (`portchops_models.transport.gate`):
    every request of one call, its retries and batch chunks included, has the same.
    """
    current = _deadline.get()
    return None if current is None else (current[0], current[0] - current[1])


def expired() -> bool:
    """Whether a deadline is set and has passed."""
    left = remaining()
    return left is not None and left <= 0


def timeout_error(
    waited_for: str, *, table: str | None = None, operation: str = "call", attempts: int = 1
) -> CallTimeout:
    """The `CallTimeout` for the deadline in force, naming what the call waited for."""
    current = _deadline.get()
    limit = current[1] if current is not None else 0.0
    what = {
        "answer": "an answer from DynamoDB",
        "backoff": "its next attempt (backoff)",
        "connection": "a connection (every pooled one busy, or the endpoint not accepting)",
    }.get(waited_for, waited_for)
    return CallTimeout(
        f"{table or 'request'}: {operation} ran past call_timeout ({limit:g} s) after "
        f"{attempts} attempt(s), waiting for {what}",
        table=table,
        attempts=attempts,
        waited_for=waited_for,
    )


def propagate(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` bound to a copy of the caller's context (its deadline), for another thread.

    Each call of `propagate` makes its own copy: one context cannot run in two
    threads at once.
    """
    context = contextvars.copy_context()

    def run(*args: object) -> T:
        return context.run(fn, *args)

    return run

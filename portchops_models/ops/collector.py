"""Holding off the cyclic garbage collector while a bulk read builds its results.

A decoded model is a tracked object (the collector follows it); the plain dicts of
strings a raw client returns are not. A `batch_get` of 10,000 keys makes 10,000 models
that all stay alive until it returns, so every young collection during the call finds
them alive and promotes them, and about one call in two then pays a full collection of
the whole process: 40 ms of a 100 ms call, measured on dynalite (issue 25). Results that
die young, as a handler's do, never need to be promoted at all.

`hold` keeps the collector off while a sync bulk read runs, nothing else changed:

    with hold():
        models = build_them()

- Process-wide (the collector is): the first hold turns it off, if it was on, and the
  last one to end turns it on again. A hold turns on nothing it did not turn off.
- Bounded: a hold that starts while the collector has been held off for more than
  `LIMIT` seconds turns it on again at once, and no later hold turns it off until every
  hold has ended. Under reads that overlap without pause, the collector runs as usual.
- Only where nothing can suspend inside it (the sync API: a hold ends with its call);
  an async read could be abandoned mid-await and never end its hold.
- A forked child starts with the collector as the parent had it before any hold.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from types import TracebackType
from typing import Final

__all__ = ["LIMIT", "hold", "holding"]

#: The longest stretch, in seconds, that holds keep the collector off.
LIMIT: Final = 0.5

_lock = threading.Lock()
_holders = 0
_since = 0.0  # when the holds turned the collector off
_ours = False  # whether the collector is off because of the holds


class hold:
    """Keep the cyclic collector off while the block runs (see the module docstring)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _holders, _since, _ours
        with _lock:
            _holders += 1
            if _ours:
                if time.monotonic() - _since > LIMIT:  # held long enough: let it run
                    gc.enable()
                    _ours = False
            elif _holders == 1 and gc.isenabled():
                gc.disable()
                _ours, _since = True, time.monotonic()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _holders, _ours
        with _lock:
            _holders -= 1
            if _holders == 0 and _ours:
                gc.enable()
                _ours = False


def holding() -> bool:
    """Whether holds keep the collector off now (for tests and diagnostics)."""
    with _lock:
        return _ours


def _after_fork() -> None:
    global _lock, _holders, _ours
    if _ours:  # the holders were threads of the parent: none of them will end here
        gc.enable()
    _lock, _holders, _ours = threading.Lock(), 0, False


os.register_at_fork(after_in_child=_after_fork)

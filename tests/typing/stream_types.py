"""Pins the types of `portchops_models.streams`; checked by `mypy --strict` in `make test`."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, assert_type

from portchops_models import User, UserProgress
from portchops_models.streams import (
    Change,
    ChangeKind,
    StreamResult,
    StreamWorker,
    changes_from_event,
    enable_stream,
    evicter,
)


def decoded(event: dict[str, Any]) -> None:
    changes = changes_from_event(event, UserProgress)
    assert_type(changes, list[Change[UserProgress]])
    change = changes[0]
    assert_type(change.kind, ChangeKind)
    assert_type(change.key, Hashable)
    assert_type(change.old, UserProgress | None)
    assert_type(change.new, UserProgress | None)
    assert_type(change.expired, bool)
    assert_type(change.sequence_number, str)
    assert_type(change.created_at, float | None)
    assert_type(changes_from_event(event, User)[0].new, User | None)
    assert_type(enable_stream(User), str)
    assert_type(enable_stream(User, "KEYS_ONLY"), str)


def workers() -> None:
    def project(changes: list[Change[UserProgress]]) -> None:
        return None

    worker = StreamWorker(UserProgress, project, name="read-model")
    assert_type(worker, StreamWorker[UserProgress])
    result = worker.run(until_idle=True)
    assert_type(result, StreamResult)
    assert_type(result.records, int)
    assert_type(result.poison, tuple[str, str] | None)
    assert_type(evicter(User), StreamWorker[User])

"""`portchops_models.ops.collector`: sync bulk reads hold off the cyclic collector while
they build their results, and always let it run again."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator

import pytest

from portchops_models import TableNotFound, User, UserRepository, configure
from portchops_models.aio import AsyncUserRepository
from portchops_models.metrics import Metrics
from portchops_models.ops import collector
from portchops_models.settings import Settings


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    assert gc.isenabled()
    yield
    assert gc.isenabled()
    assert not collector.holding()


def test_a_hold_turns_the_collector_off_and_the_last_one_on_again() -> None:
    with collector.hold():
        assert not gc.isenabled()
        with collector.hold():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer hold is still there
        assert collector.holding()
    assert gc.isenabled()


def test_a_hold_ends_when_its_block_raises() -> None:
    with pytest.raises(RuntimeError), collector.hold():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_hold_turns_on_nothing_it_did_not_turn_off() -> None:
    gc.disable()
    try:
        with collector.hold():
            assert not collector.holding()
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


def test_holds_that_overlap_past_the_limit_let_the_collector_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hold that starts once the collector has been off for `LIMIT` turns it on, and
    no hold turns it off again until every hold has ended."""
    monkeypatch.setattr(collector, "LIMIT", -1.0)  # every stretch is already too long
    first, second = collector.hold(), collector.hold()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()  # overlapping: the stretch is over
    assert gc.isenabled()
    with collector.hold():
        assert gc.isenabled()  # others still hold: stays on
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    with collector.hold():  # every hold ended: a new stretch
        assert not gc.isenabled()


def test_holds_from_many_threads_all_end() -> None:
    inside = threading.Barrier(4)

    def read() -> None:
        with collector.hold():
            inside.wait(timeout=10)  # all four hold at once
            assert not gc.isenabled()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_forked_child_does_not_inherit_a_hold() -> None:
    with collector.hold():
        pid = os.fork()
        if pid == 0:  # the child: no thread of it holds anything
            os._exit(0 if gc.isenabled() and not collector.holding() else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_batch_get_holds_only_while_it_runs(tables: Settings) -> None:
    repo = UserRepository(cache=None, metrics=Metrics())
    for n in range(150):
        repo.save(User(user_id=f"u{n:03d}", email=f"u{n}@x.com", name=f"U{n}"))
    seen: list[bool] = []

    class Watch(Metrics):  # asked from the call's own send path, inside the hold
        def record_request(self, *args: object, **kwargs: object) -> None:
            seen.append(collector.holding())
            super().record_request(*args, **kwargs)  # type: ignore[arg-type]

    watched = UserRepository(cache=None, metrics=Watch())
    found = watched.batch_get([f"u{n:03d}" for n in range(150)])
    assert [user.user_id for user in found] == [f"u{n:03d}" for n in range(150)]
    assert seen == [True, True]  # two chunks, both built under the hold
    assert gc.isenabled()
    configure(endpoint_url=tables.endpoint_url, table_prefix="absent-")
    with pytest.raises(TableNotFound):
        watched.batch_get(["u000"])
    assert gc.isenabled()


def test_async_batch_get_holds_nothing(tables: Settings) -> None:
    import asyncio

    UserRepository(cache=None).save(User(user_id="u1", email="u1@x.com", name="U"))
    seen: list[bool] = []

    class Watch(Metrics):
        def record_request(self, *args: object, **kwargs: object) -> None:
            seen.append(gc.isenabled())
            super().record_request(*args, **kwargs)  # type: ignore[arg-type]

    repo = AsyncUserRepository(cache=None, metrics=Watch())
    assert [user.user_id for user in asyncio.run(repo.batch_get(["u1"]))] == ["u1"]
    assert seen == [True]

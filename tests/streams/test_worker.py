"""StreamWorker on moto's Streams API over HTTP: order, checkpoints, crashes, a fleet.

moto serves one shard per stream (and dynalite no Streams API at all), so a shard
split is shown on `readable` and `fair_share` (pure), and the fleet on one shard:
two processes never handle a record twice, a killed one's shard is taken over from
its checkpoint, a stopped one hands its lease back at once.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portchops_models import (
    ConfigurationError,
    InvalidRequest,
    Metrics,
    UserProgress,
    UserProgressRepository,
)
from portchops_models.migrate.backfills.lease import LeaseTable
from portchops_models.settings import Settings
from portchops_models.streams import Change, StreamWorker, enable_stream
from portchops_models.streams.shards import Shard, readable
from portchops_models.streams.worker import fair_share
from portchops_models.transport.connection import current_connection
from tests.bus_agent import ROOT, WAIT

pytestmark = pytest.mark.timeout(180)

Seen = list[tuple[str, str, str, int | None]]


def _raw(settings: Settings) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def _collector(seen: Seen) -> Any:
    def handle(changes: list[Change[UserProgress]]) -> None:
        for change in changes:
            item = change.new or change.old
            seen.append((change.kind, *change.key, None if item is None else item.attempts))

    return handle


def test_a_worker_sees_layer_and_raw_writes_in_order_per_key(tables: Settings) -> None:
    enable_stream(UserProgress)
    repo = UserProgressRepository(cache=None)
    for _ in range(3):
        repo.record_attempt("u1", "l1", 10)
        repo.record_attempt("u2", "l1", 20)
    raw = _raw(tables)
    raw.put_item(
        TableName=UserProgress.table_name(),
        Item={"userId": {"S": "u3"}, "lessonId": {"S": "l9"}, "status": {"S": "started"},
              "score": {"N": "1"}, "attempts": {"N": "7"}},
    )  # fmt: skip
    raw.delete_item(
        TableName=UserProgress.table_name(), Key={"userId": {"S": "u3"}, "lessonId": {"S": "l9"}}
    )
    seen: Seen = []
    metrics = Metrics()
    result = StreamWorker(
        UserProgress, _collector(seen), name="read-model", batch_size=3, metrics=metrics
    ).run(until_idle=True)
    per_key = {
        key: [a for _, u, les, a in seen if (u, les) == key]
        for key in {(u, les) for _, u, les, _ in seen}
    }
    # moto streams an item created by UpdateItem as an insert of the bare key first
    # (decoded with the defaults: attempts 0), then the update
    for key in (("u1", "l1"), ("u2", "l1")):
        assert per_key[key][-3:] == [1, 2, 3]
        assert set(per_key[key][:-3]) <= {0}
    assert [(k, a) for k, u, _, a in seen if u == "u3"] == [("insert", 7), ("remove", 7)]
    assert result.records == len(seen)
    assert result.batches >= len(seen) // 3
    snap = metrics.snapshot()
    assert snap["stream_records"] == len(seen)
    assert snap["operations"]["GetRecords"]["requests"] >= 1
    # a second run of the same fleet starts after the checkpoint: nothing again
    again: Seen = []
    StreamWorker(UserProgress, _collector(again), name="read-model").run(until_idle=True)
    assert again == []
    repo.record_attempt("u1", "l1", 10)
    StreamWorker(UserProgress, _collector(again), name="read-model").run(until_idle=True)
    assert [(u, a) for _, u, _, a in again] == [("u1", 4)]
    # another fleet reads the stream from its start
    other: Seen = []
    StreamWorker(UserProgress, _collector(other), name="audit").run(until_idle=True)
    assert len(other) == len(seen) + 1


def test_a_handler_that_raises_stops_the_run_and_loses_nothing(tables: Settings) -> None:
    enable_stream(UserProgress)
    repo = UserProgressRepository(cache=None)
    repo.batch_save(
        [UserProgress(user_id=f"u{n}", lesson_id="l1", status="started", score=0, attempts=n)
         for n in range(10)]
    )  # fmt: skip
    seen: Seen = []
    calls = 0

    def flaky(changes: list[Change[UserProgress]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the search index is down")
        _collector(seen)(changes)

    worker = StreamWorker(UserProgress, flaky, name="index", batch_size=2)
    with pytest.raises(RuntimeError, match="search index"):
        worker.run(until_idle=True)
    assert len(seen) == 4
    assert worker.result.handler_errors == 1
    StreamWorker(UserProgress, _collector(seen), name="index", batch_size=2).run(until_idle=True)
    assert sorted(a for *_, a in seen) == list(range(10))  # none lost, none twice


def test_a_record_that_keeps_failing_is_named_and_the_rest_go_on(
    tables: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    enable_stream(UserProgress)
    UserProgressRepository(cache=None).batch_save(
        [UserProgress(user_id=f"u{n}", lesson_id="l1", status="started", score=0, attempts=n)
         for n in range(5)]
    )  # fmt: skip
    seen: Seen = []
    failures = 0
    offered: dict[int, str] = {}

    def poisoned(changes: list[Change[UserProgress]]) -> None:
        nonlocal failures
        for c in changes:
            assert c.new is not None
            offered[c.new.attempts] = c.sequence_number
        if any(c.new is not None and c.new.attempts == 3 for c in changes) and failures < 5:
            failures += 1
            raise ValueError("cannot index attempts=3")
        _collector(seen)(changes)

    metrics = Metrics()
    worker = StreamWorker(
        UserProgress, poisoned, name="p", batch_size=10, poll_seconds=0.001,
        retry_handler=True, metrics=metrics,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="portchops_models.streams"):
        result = worker.run(until_idle=True)
    # each record handled once, in order; from the third failure on, one at a time,
    # so the records before the poison one went on and the poison one is named
    assert [a for *_, a in seen] == [0, 1, 2, 3, 4]
    assert result.handler_errors == 5
    assert metrics.snapshot()["stream_handler_errors"] == 5
    assert result.poison is not None
    assert result.poison[1] == offered[3]
    named = [r for r in caplog.records if getattr(r, "sequence_number", None) == offered[3]]
    assert named  # the log names the poison record, from its first failure on its own
    assert "the handler failed" in named[-1].getMessage()
    assert [r.attempts for r in named] == [1, 2]  # type: ignore[attr-defined]


def test_bad_arguments_are_typed_errors(tables: Settings) -> None:
    def noop(changes: list[Change[UserProgress]]) -> None:
        return None

    for bad in ({"name": ""}, {"name": "a#b"}, {"name": "x", "batch_size": 0},
                {"name": "x", "batch_size": 1001}, {"name": "x", "lease_seconds": 0},
                {"name": "x", "poll_seconds": float("nan")}):  # fmt: skip
        with pytest.raises(InvalidRequest):
            StreamWorker(UserProgress, noop, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="enable_stream"):
        StreamWorker(UserProgress, noop, name="x").run(until_idle=True)


# ---------------------------------------------------------------------- processes


def _env(settings: Settings) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTCHOPS_")},
        "PORTCHOPS_ENDPOINT_URL": str(settings.endpoint_url),
        "PORTCHOPS_TABLE_PREFIX": settings.table_prefix,
    }


def _agent(settings: Settings, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stream_agent", "fleet", str(out), *args],
        cwd=ROOT,
        env=_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )


def _lines(out: Path) -> list[list[Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def _write(count: int) -> None:
    UserProgressRepository(cache=None).batch_save(
        [UserProgress(user_id=f"u{n:03d}", lesson_id="l1", status="started", score=0,
                      attempts=n) for n in range(count)]
    )  # fmt: skip


def test_a_worker_killed_mid_batch_is_taken_over_from_its_checkpoint(
    tables: Settings, tmp_path: Path
) -> None:
    enable_stream(UserProgress)
    _write(20)
    out = tmp_path / "seen.jsonl"
    killed = _agent(tables, out, "--batch", "3", "--die-after", "2", "--lease", "1")
    assert killed.wait(timeout=WAIT) == -9
    assert len(_lines(out)) == 9  # batches 0, 1 checkpointed; batch 2 handled, then SIGKILL
    survivor = _agent(tables, out, "--batch", "3", "--lease", "1", "--until-distinct", "20")
    stdout, _ = survivor.communicate(timeout=WAIT * 4)
    assert survivor.returncode == 0, stdout
    sequences = [line[0] for line in _lines(out)]
    attempts = [line[3] for line in _lines(out)]
    assert sorted(set(attempts)) == list(range(20))  # nothing skipped
    assert len(attempts) == 23  # only the batch in flight came twice
    assert sequences[6:9] == sequences[9:12]


def test_two_processes_share_the_stream_and_sigterm_hands_the_lease_back(
    tables: Settings, tmp_path: Path
) -> None:
    enable_stream(UserProgress)
    _write(10)
    out = tmp_path / "seen.jsonl"
    holder = _agent(tables, out, "--batch", "2", "--lease", "60", "--hold")
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    waiting = _agent(tables, out, "--batch", "2", "--lease", "60", "--until-distinct", "10")
    holder.terminate()  # SIGTERM: the lease goes back now, not in 60 s
    stdout, _ = holder.communicate(timeout=WAIT)
    assert holder.returncode == 0
    handled_by_holder = json.loads(stdout.splitlines()[-1])["records"]
    stdout, _ = waiting.communicate(timeout=WAIT)
    assert waiting.returncode == 0
    assert json.loads(stdout.splitlines()[-1])["records"] == 10 - handled_by_holder
    attempts = [line[3] for line in _lines(out)]
    assert sorted(attempts) == list(range(10))  # every record once, across the two


# ---------------------------------------------------------------------- pure parts


@st.composite
def _families(draw: st.DrawFn) -> list[Shard]:
    count = draw(st.integers(1, 12))
    shards: list[Shard] = []
    for n in range(count):
        parent = draw(st.none() | st.integers(0, n - 1)) if n else None
        trimmed = draw(st.booleans())
        name = f"s{parent}" if parent is not None else None
        shards.append(Shard(f"s{n}", None if trimmed else name))
    return shards


@given(_families(), st.data())
def test_children_are_readable_only_once_their_parent_is_finished(
    shards: list[Shard], data: st.DataObject
) -> None:
    finished = set(data.draw(st.lists(st.sampled_from([s.shard_id for s in shards]))))
    ids = {s.shard_id for s in shards}
    ready = readable(shards, finished)
    for shard in shards:
        parent_done = shard.parent is None or shard.parent in finished or shard.parent not in ids
        assert (shard in ready) == (shard.shard_id not in finished and parent_done)


@given(st.integers(0, 500), st.integers(1, 50))
def test_fair_shares_cover_every_shard(shards: int, workers: int) -> None:
    share = fair_share(shards, workers)
    assert share * workers >= shards
    assert (share - 1) * workers < shards or shards == 0


# ---------------------------------------------------------------------- many shards


class ManyShards:
    """A `ShardSource` of recorded records in several shards (moto serves one): roots
    ``r0``..``r3`` and, after the closed ``r0``, its children ``c0`` and ``c1``."""

    def __init__(self, per_shard: int) -> None:
        self.layout: dict[str, tuple[str | None, bool]] = {
            "r0": (None, True), "r1": (None, False), "r2": (None, False), "r3": (None, False),
            "c0": ("r0", False), "c1": ("r0", False),
        }  # fmt: skip
        self.by_shard: dict[str, list[dict[str, Any]]] = {}
        for number, shard in enumerate(self.layout):
            self.by_shard[shard] = [
                _record(f"u{number}-{n}", str(10**6 * (number + 1) + n)) for n in range(per_shard)
            ]

    def shards(self) -> list[Shard]:
        return [Shard(s, parent, closed) for s, (parent, closed) in self.layout.items()]

    def iterator(self, shard_id: str, after: str | None) -> str:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in self.by_shard[shard_id]]
        start = 0 if after is None else numbers.index(after) + 1
        return f"{shard_id}@{start}"

    def records_of(self, shard_id: str) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in self.by_shard[shard_id]]

    def records(self, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        shard_id, _, start = iterator.partition("@")
        batch = self.by_shard[shard_id][int(start) : int(start) + limit]
        end = int(start) + len(batch)
        closed = self.layout[shard_id][1]
        if closed and end == len(self.by_shard[shard_id]):
            return batch, None
        return batch, f"{shard_id}@{end}"


def _until(condition: Any) -> None:
    """Wait for a condition on the lease table (polled: it is another component's state)."""
    pause = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the lease table never reached the state waited for")


def _record(user_id: str, sequence: str) -> dict[str, Any]:
    image = {"userId": {"S": user_id}, "lessonId": {"S": "l1"}, "status": {"S": "started"},
             "score": {"N": "1"}, "attempts": {"N": "1"}}  # fmt: skip
    return {
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"userId": image["userId"], "lessonId": image["lessonId"]},
                     "NewImage": image, "SequenceNumber": sequence},
    }  # fmt: skip


def test_a_worker_that_joins_gets_its_share_and_children_wait_for_their_parent(
    tables: Settings,
) -> None:
    enable_stream(UserProgress)
    source = ManyShards(per_shard=6)
    handled: list[tuple[str, str]] = []  # (worker, sequence number), in handling order
    lock = threading.Lock()
    joined = threading.Event()

    def handler(worker: str) -> Any:
        def handle(changes: list[Change[UserProgress]]) -> None:
            if worker == "A":  # A holds every shard until B is there to take its share
                assert joined.wait(WAIT)
            with lock:
                handled.extend((worker, c.sequence_number) for c in changes)

        return handle

    workers = {
        name: StreamWorker(UserProgress, handler(name), name="fleet", batch_size=2,
                           poll_seconds=0.01, source=source)
        for name in ("A", "B")
    }  # fmt: skip
    threads = {
        n: threading.Thread(target=w.run, kwargs={"until_idle": True}) for n, w in workers.items()
    }
    leases = LeaseTable(current_connection(), table="stream-leases")
    leases.ensure()  # what each worker does first; here before the test reads it
    threads["A"].start()
    _until(lambda: any(i.get("owner") for i in leases.items("fleet#")))  # A holds the shards
    threads["B"].start()
    _until(lambda: sum(i["kind"]["S"] == "stream-worker" for i in leases.items("fleet#")) == 2)
    joined.set()  # B has said it is there: A hands shards on at its next round
    for thread in threads.values():
        thread.join(WAIT * 4)
        assert not thread.is_alive()
    sequences = [seq for _, seq in handled]
    every = [seq for shard in source.layout for seq in source.records_of(shard)]
    assert sorted(sequences) == sorted(every)  # every record once, across the two
    assert workers["A"].result.records > 0
    assert workers["B"].result.records > 0  # B got a share
    last_of_parent = max(sequences.index(seq) for seq in source.records_of("r0"))
    first_of_children = min(
        sequences.index(seq) for c in ("c0", "c1") for seq in source.records_of(c)
    )
    assert last_of_parent < first_of_children

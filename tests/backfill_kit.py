"""Helpers for the backfill tests: a migration folder, worker processes, their logs.

Every worker is a real process (``portchops migrate up`` / ``migrate work``) talking
over HTTP to the one moto server of the test session. The test migration's page
function logs each page it is handed (pid, time, keys) to a file of its own, and
writes a per-row counter ``n`` into the table, so a test can tell how many times
each row was handed out and how many times it was migrated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portchops_models.errors import TableNotFound
from portchops_models.settings import Settings
from portchops_models.transport.connection import current_connection

PORTCHOPS = str(Path(sys.executable).with_name("portchops"))

MIGRATION = '''"""Count every row."""

import json
import os
import signal
import threading
import time
from pathlib import Path

from portchops_models.migrate import Backfill, Rate
from portchops_models.models import UserProgress

LOGS = Path(__file__).with_name("logs")
# "count": n = n + 1 on every row; "once": skip rows that have n; "log": no writes;
# "fenced": n = n + 1 on every row, each write fenced by the lease (Batch.fenced)
MODE = {mode!r}
DELAY = {delay!r}


def _log(name, line):
    LOGS.mkdir(exist_ok=True)
    with (LOGS / f"{{name}}{{os.getpid()}}-{{threading.get_ident()}}.log").open("a") as log:
        log.write(json.dumps(line) + "\\n")


def _stop_here():
    """Stop this process (SIGSTOP) right before a write, once the test asks for it."""
    asked = LOGS.parent / f"stop-{{os.getpid()}}"
    if asked.exists():
        asked.unlink()
        (LOGS.parent / f"stopped-{{os.getpid()}}").touch()
        os.kill(os.getpid(), signal.SIGSTOP)


def counter(attr):
    def count(batch, items):
        keys = [item["userId"]["S"] for item in items]
        line = {{"pid": os.getpid(), "t": time.time(), "n": len(items), "keys": keys, "attr": attr}}
        _log("", line)
        if DELAY:
            time.sleep(DELAY)  # stands for slow work per page
        if MODE == "log":
            return 0
        if MODE == "fenced":
            for item in items:
                _stop_here()
                sent = time.time()  # the ledger says when each write was sent
                batch.fenced("Update", {{
                    "Key": {{"userId": item["userId"], "lessonId": item["lessonId"]}},
                    "UpdateExpression": "ADD #n :one",
                    "ExpressionAttributeNames": {{"#n": attr}},
                    "ExpressionAttributeValues": {{":one": {{"N": "1"}}}},
                }})
                key = item["userId"]["S"]
                lease = [batch.segment, batch.fence]  # the lease it was sent under
                _log("ledger-", {{"pid": os.getpid(), "t": sent, "key": key, "lease": lease}})
            return len(items)
        todo = [item for item in items if not (MODE == "once" and attr in item)]
        puts = []
        for item in todo:
            n = int(item.get(attr, {{"N": "0"}})["N"]) + 1
            puts.append({{"PutRequest": {{"Item": {{**item, attr: {{"N": str(n)}}}}}}}})
        while puts:
            _stop_here()
            chunk, puts = puts[:25], puts[25:]
            sent = time.time()
            answer = batch.call("BatchWriteItem", {{"RequestItems": {{batch.table: chunk}}}})
            puts += answer.get("UnprocessedItems", {{}}).get(batch.table, [])
            keys = [p["PutRequest"]["Item"]["userId"]["S"] for p in chunk]
            lease = [batch.segment, batch.fence]
            _log("ledger-", {{"pid": os.getpid(), "t": sent, "keys": keys, "lease": lease}})
        return len(todo)
    return count


SETTINGS = dict(
    segments={segments},
    page_size={page_size},
    threads={threads},
    lease_seconds={lease},
    rate={rate},
)
BACKFILL = Backfill(name="count", model=UserProgress, per_page=counter("n"), **SETTINGS)
if {second!r}:
    SECOND = Backfill(name="second", model=UserProgress, per_page=counter("m"), **SETTINGS)


def up(ctx):
    BACKFILL.run(ctx)
    if {second!r}:
        SECOND.run(ctx)
    if (LOGS.parent / "fail-after").exists():
        raise RuntimeError("the code after the backfills failed")
'''


def seed(settings: Settings, count: int) -> None:
    """`count` progress rows ``r-000000``... without ``n``."""
    conn = current_connection()
    table = settings.table_name("user-progress")
    for start in range(0, count, 25):
        puts = [
            {"PutRequest": {"Item": {"userId": {"S": f"r-{i:06d}"}, "lessonId": {"S": "l"}}}}
            for i in range(start, min(start + 25, count))
        ]
        conn.call("BatchWriteItem", {"RequestItems": {table: puts}})


def counters(settings: Settings, attr: str = "n") -> dict[str, int]:
    """Every row's counter `attr` (0 where absent), by user id."""
    conn = current_connection()
    found: dict[str, int] = {}
    params: dict[str, Any] = {"TableName": settings.table_name("user-progress"), "Limit": 2000}
    while True:
        page = conn.call("Scan", params)
        for item in page["Items"]:
            found[item["userId"]["S"]] = int(item.get(attr, {"N": "0"})["N"])
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def counted(settings: Settings, n: int) -> tuple[int, int]:
    """(rows in the table, rows whose counter is `n`), counted by the engine (a COUNT
    scan, so no row travels: much cheaper on moto than reading 20,000 of them)."""
    conn = current_connection()
    params: dict[str, Any] = {
        "TableName": settings.table_name("user-progress"),
        "Select": "COUNT",
        "FilterExpression": "#n = :n",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {":n": {"N": str(n)}},
    }
    scanned = matched = 0
    while True:
        page = conn.call("Scan", params)
        scanned, matched = scanned + page["ScannedCount"], matched + page["Count"]
        if "LastEvaluatedKey" not in page:
            return scanned, matched
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def write_migration(
    folder: Path,
    *,
    mode: str,
    segments: int,
    page_size: int,
    threads: int = 1,
    lease: float = 30.0,
    rate: str = "None",
    delay: float = 0.0,
    second: bool = False,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0001_count_rows.py").write_text(
        MIGRATION.format(
            mode=mode,
            segments=segments,
            page_size=page_size,
            threads=threads,
            lease=lease,
            rate=rate,
            delay=delay,
            second=second,
        )
    )
    return folder


@dataclass
class Page:
    pid: int
    t: float
    n: int
    keys: list[str]
    attr: str = "n"


def pages(folder: Path) -> list[Page]:
    """Every page handed to the function, by time (a line cut by SIGKILL is skipped)."""
    found: list[Page] = []
    for log in sorted((folder / "logs").glob("[0-9]*.log")):
        for line in log.read_text().splitlines():
            try:
                found.append(Page(**json.loads(line)))
            except ValueError:
                continue
    return sorted(found, key=lambda page: page.t)


@dataclass(frozen=True)
class Write:
    """One row write that succeeded, as the test migration's function logged it."""

    pid: int
    t: float  # when it was sent
    key: str
    segment: int
    fence: int


def ledger(folder: Path) -> list[Write]:
    """Every row write that succeeded, as the function logged it."""
    found: list[Write] = []
    for log in sorted((folder / "logs").glob("ledger-*.log")):
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            segment, fence = entry["lease"]
            for key in entry.get("keys", [entry.get("key")]):
                found.append(Write(entry["pid"], entry["t"], key, segment, fence))
    return found


def handed_out(folder: Path) -> Counter[str]:
    """How many times each row was handed to the function."""
    return Counter(key for page in pages(folder) for key in page.keys)


class Workers:
    """Worker processes (``migrate up`` / ``migrate work``) on the test's engine and prefix."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.env = {
            **os.environ,
            "PORTCHOPS_ENDPOINT_URL": str(settings.endpoint_url),
            "PORTCHOPS_TABLE_PREFIX": settings.table_prefix,
            "COLUMNS": "100",
        }
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [PORTCHOPS, "migrate", *args, "--path", str(self.folder)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def up(self) -> subprocess.Popen[str]:
        return self.start("up")

    def work(self, *extra: str) -> subprocess.Popen[str]:
        return self.start("work", "--wait", "60", *extra)

    def holding(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        """Wait until `proc` holds a segment it has checkpointed in (`held_by`); that segment."""
        held: dict[str, Any] = wait_for(lambda: held_by(self.settings, proc.pid))
        return held

    def finish(self, timeout: float = 120) -> list[tuple[int, str]]:
        """Wait for every process; (return code, output) of each, in start order."""
        done = []
        for proc in self.procs:
            out, _ = proc.communicate(timeout=timeout)
            done.append((proc.returncode, out))
        return done

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, every: float = 0.02) -> Any:
    """Poll an observable condition until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def segment_items(settings: Settings) -> list[dict[str, Any]]:
    """The backfill's segment items in the history table."""
    conn = current_connection()
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "TableName": settings.table_name("schema-migrations"),
        "ConsistentRead": True,
    }
    while True:
        try:
            page = conn.send("Scan", params)
        except TableNotFound:
            return []  # the runner has not created the history table yet
        found += [i for i in page["Items"] if i.get("kind", {}).get("S") == "backfill-segment"]
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def history_ids(settings: Settings) -> list[str]:
    conn = current_connection()
    items = conn.call(
        "Scan", {"TableName": settings.table_name("schema-migrations"), "ConsistentRead": True}
    )["Items"]
    return sorted(item["id"]["S"] for item in items)


def owner_pid(item: dict[str, Any]) -> int | None:
    """The pid in a segment's owner (``host:pid:random/thread``), if it has one."""
    owner = item.get("owner", {}).get("S")
    return int(owner.split(":")[1]) if owner else None


def lease_pid(item: dict[str, Any]) -> int | None:
    """The pid whose lease a segment is under: its owner's, unless the segment is done or
    cancelled (such a segment keeps the owner that ended it, but no one holds it)."""
    if item.get("state", {}).get("S") in ("done", "cancelled"):
        return None
    return owner_pid(item)


def held_by(settings: Settings, pid: int) -> dict[str, Any] | None:
    """A segment that `pid` holds (unexpired) and has checkpointed in, if any."""
    for item, owner in leases_of(segment_items(settings), time.time()):
        if owner == pid and "position" in item:
            return item
    return None


def leases_of(items: list[dict[str, Any]], now: float) -> Iterator[tuple[dict[str, Any], int]]:
    """(item, owner pid) of every segment leased (unexpired) at `now`."""
    for item in items:
        pid = owner_pid(item)
        if pid is not None and float(item.get("expires_at", {"N": "0"})["N"]) > now:
            yield item, pid

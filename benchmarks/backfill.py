"""Scenario 10: a backfill over 16,000 rows on 1, 2 and 4 worker processes.

16,000 ``UserProgress`` rows are written under a table prefix of their own; then a
data migration (`portchops_models.migrate.Backfill`, 16 segments, pages of 500,
one segment at a time per process) rewrites every row with a counter ``n + 1``
(BatchWriteItem, 25 a request), three times: with ``portchops migrate up`` alone,
with ``up`` and one ``portchops migrate work``, and with ``up`` and three. Every
process is a real ``portchops`` command talking to dynalite (no proxy); the workers
start first and wait for the plan, so each run is timed from the plan's start to
the last segment (the step's recorded duration), process start-up aside.

Reported per run: rows per second and the ratio to one worker. Target: every row
rewritten exactly once per run (the counters end at 3). dynalite is one node process
on a shared machine, so the ratio says as much about the engine and the cores as
about the workers: against DynamoDB, whose partitions work in parallel, the
workers' share is the only limit (and the `Rate`, when set).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from portchops_models.models import UserProgress
from portchops_models.settings import configure
from portchops_models.tables import create_table, delete_table
from portchops_models.transport.connection import current_connection

from .common import Column, ScenarioResult, Target, use_layer
from .context import Bench

PREFIX = "benchbf-"
WORKERS = (1, 2, 4)
PORTCHOPS = str(Path(sys.executable).with_name("portchops"))

STEP = '''"""Count every row."""

from portchops_models.migrate import Backfill
from portchops_models.models import UserProgress


def count(batch, items):
    puts = [
        {"PutRequest": {"Item": {**i, "n": {"N": str(int(i.get("n", {"N": "0"})["N"]) + 1)}}}}
        for i in items
    ]
    while puts:
        chunk, puts = puts[:25], puts[25:]
        answer = batch.call("BatchWriteItem", {"RequestItems": {batch.table: chunk}})
        puts += answer.get("UnprocessedItems", {}).get(batch.table, [])
    return len(items)


BACKFILL = Backfill(
    name="count", model=UserProgress, per_page=count, segments=16, page_size=500, threads=1
)


def up(ctx):
    BACKFILL.run(ctx)
'''


def _seed(rows: int) -> None:
    conn = current_connection()
    table = f"{PREFIX}user-progress"
    for start in range(0, rows, 25):
        puts = [
            {"PutRequest": {"Item": {"userId": {"S": f"r-{i:06d}"}, "lessonId": {"S": "l"}}}}
            for i in range(start, min(start + 25, rows))
        ]
        conn.call("BatchWriteItem", {"RequestItems": {table: puts}})


def _counters() -> dict[int, int]:
    """How many rows have each counter value."""
    conn = current_connection()
    found: dict[int, int] = {}
    params: dict[str, Any] = {"TableName": f"{PREFIX}user-progress", "Limit": 2000}
    while True:
        page = conn.call("Scan", params)
        for item in page["Items"]:
            n = int(item.get("n", {"N": "0"})["N"])
            found[n] = found.get(n, 0) + 1
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _run(engine_url: str, root: Path, workers: int) -> dict[str, Any]:
    folder = root / f"bf{workers}"
    folder.mkdir()
    (folder / "0001_count_rows.py").write_text(STEP)
    env = {**os.environ, "PORTCHOPS_ENDPOINT_URL": engine_url, "PORTCHOPS_TABLE_PREFIX": PREFIX}

    def start(*args: str) -> subprocess.Popen[str]:
        command = [PORTCHOPS, "migrate", *args, "--path", str(folder)]
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    wall = time.perf_counter()
    procs = [start("work", "--wait", "60") for _ in range(workers - 1)]
    procs.insert(0, start("up"))
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"a backfill worker failed:\n{out}")
    wall = time.perf_counter() - wall
    record = current_connection().call(
        "GetItem",
        {
            "TableName": f"{PREFIX}schema-migrations",
            "Key": {"id": {"S": f"bf{workers}:0001"}},
            "ConsistentRead": True,
        },
    )["Item"]
    return {"seconds": float(record["duration_ms"]["N"]) / 1000, "wall": wall}


def run(bench: Bench) -> ScenarioResult:
    started = time.perf_counter()
    rows = bench.scale.backfill_rows
    configure(endpoint_url=bench.engine_url, table_prefix=PREFIX)
    conn = current_connection()
    create_table(UserProgress)
    try:
        t0 = time.perf_counter()
        _seed(rows)
        seed_seconds = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="portchops-bench-backfill-") as root:
            runs = {n: _run(bench.engine_url, Path(root), n) for n in WORKERS}
        counts = _counters()
    finally:
        for table in (f"{PREFIX}user-progress", f"{PREFIX}schema-migrations"):
            delete_table(table, conn=conn)
        use_layer(bench.engine_url)
    base = rows / runs[1]["seconds"]
    table_rows = [
        {
            "contender": f"{n} worker{'s' if n > 1 else ''}",
            "rows_per_second": rows / r["seconds"],
            "ratio": rows / r["seconds"] / base,
            "seconds": r["seconds"],
            "wall": r["wall"],
        }
        for n, r in runs.items()
    ]
    once = counts.get(len(WORKERS), 0)  # rows rewritten once per run
    return ScenarioResult(
        key="backfill",
        title="10. Backfill over 1, 2 and 4 worker processes",
        setup={"rows": rows, "segments": 16, "page_size": 500, "workers": list(WORKERS)},
        columns=[
            Column("contender", "workers", "{}"),
            Column("rows_per_second", "rows/s", "{:,.0f}"),
            Column("ratio", "vs 1 worker", "{:.2f}x"),
            Column("seconds", "backfill s", "{:.2f}"),
            Column("wall", "with start-up s", "{:.2f}"),
        ],
        rows=table_rows,
        targets=[
            Target(
                "backfill: rows rewritten once per run",
                once,
                rows,
                ">=",
                unit=" rows",
                floor="every row",
            )
        ],
        notes=[
            f"{rows:,} rows seeded in {seed_seconds:.1f} s; counters after the three runs: "
            f"{counts} (value: rows).",
            f"{os.cpu_count()} CPU(s) shared by dynalite, the workers and this process.",
        ],
        seconds=time.perf_counter() - started,
        extra={"runs": {str(n): r for n, r in runs.items()}},
    )

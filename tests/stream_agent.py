"""A stream worker process for the stream tests: ``python -m tests.stream_agent NAME OUT``.

Runs ``StreamWorker(UserProgress, ...)`` named NAME until idle (with
``PORTCHOPS_ENDPOINT_URL`` and ``PORTCHOPS_TABLE_PREFIX`` set), appending one JSON
line per change to OUT (``[sequence_number, user_id, lesson_id, attempts]``), flushed
and synced before the handler returns. Options:

- ``--batch N``: records per batch (default 2)
- ``--lease S``: lease seconds (default 1.0)
- ``--die-after N``: SIGKILL itself in the handler of batch N + 1, after writing its
  lines (the changes were handled, the checkpoint never written)
- ``--hold``: after the first batch, print ``held`` and wait for SIGTERM (then leave
  as `StreamWorker.stop` says: leases handed back)
- ``--until-distinct N``: run (not until idle) until OUT holds N distinct records,
  whoever handled them: a fleet-wide end for workers that must wait for a shard
  another worker holds (a dead one's lease must expire first)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from portchops_models import UserProgress
from portchops_models.streams import Change, StreamWorker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--die-after", type=int, default=None)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--until-distinct", type=int, default=None)
    args = parser.parse_args()
    batches = 0
    first = threading.Event()

    def handle(changes: list[Change[UserProgress]]) -> None:
        nonlocal batches
        with open(args.out, "a", encoding="utf-8") as out:
            for change in changes:
                item = change.new or change.old
                attempts = None if item is None else item.attempts
                out.write(json.dumps([change.sequence_number, *change.key, attempts]) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if args.die_after is not None and batches == args.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        batches += 1
        if args.until_distinct is not None:
            with open(args.out, encoding="utf-8") as done:
                if len({line.split(",")[0] for line in done}) >= args.until_distinct:
                    worker.stop()
        if args.hold and not first.is_set():
            first.set()
            print("held", flush=True)

    worker = StreamWorker(
        UserProgress, handle, name=args.name, batch_size=args.batch, lease_seconds=args.lease,
        poll_seconds=0.05,
    )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    result = worker.run(until_idle=not args.hold and args.until_distinct is None)
    print(json.dumps({"records": result.records, "lost": result.leases_lost}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

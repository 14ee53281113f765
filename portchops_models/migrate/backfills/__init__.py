"""Backfills: data migrations over every row of a table, on any number of workers.

- `backfill`: `Backfill`, what a step declares, and running it;
- `worker`: the per-process worker (segments, pages, checkpoints, heartbeats);
- `lease`: fenced leases on segments in the history table;
- `rate`: the shared rate limit of all the workers;
- `command`: the verbs ``portchops migrate work`` and ``backfill_status``.
"""

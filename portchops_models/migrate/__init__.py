"""The migration runner over ``migrations/NNNN_description.py`` (modelled on alembic).

Each verb is a typed function that the CLI wraps and tests call directly:
`upgrade`, `downgrade` and `status`. Scripts are plain modules found by
scanning a directory (by default the top-level ``migrations/`` folder next to
the package; pass ``path=`` / ``--path`` for another) and loaded by file path,
since their names start with digits. Each has ``up(ctx)`` and, where the step
can be undone, ``down(ctx)``; the first line of its docstring is the
description that `status` shows.

The applied state lives in the target store, table ``{prefix}schema-migrations``
(hash key ``id``, created on first use, PAY_PER_REQUEST, encrypted):

* ``id = "0003"``: one item per step of the package's own folder; an app's
  folder (``--path DIR``) has ids of its own, ``"lessons:0003"``, under its
  namespace (`namespace_of`: ``NAMESPACE = "lessons"`` in the folder's
  ``__init__.py``, else the folder's name), so each folder's history is kept
  apart: `status` shows one folder's steps, and a gap or an edited file is
  judged within the folder. Each item has ``status`` (``"applied"``, or
  ``"failed"`` and ``error``), ``applied_at``, ``duration_ms``, ``checksum``
  (sha256 of the file), ``description`` and ``folder`` (where it was applied
  from, named in the message when a check fails and the namespace was applied
  from another folder). A data migration's checkpoints (``checkpoint:KEY``)
  live on its item while it runs; recording the step as applied replaces the
  item and drops them, and `downgrade` deletes it.
* ``id = "lock"``: the run lock, one for all folders, taken with a conditional
  PutItem (``attribute_not_exists(id) OR expires_at <= now``) with an owner and a lease
  that a heartbeat renews. A second runner polls until it frees up, up to
  ``lock_timeout`` seconds, then stops with a message naming the holder. Under
  the lock the history is read again before each step, so every step is
  applied once however many runners start together. A runner that dies keeps
  the lock until its lease (20 s, well within the 60 s default lock timeout)
  runs out. (This relies on CreateTable and conditional writes being atomic,
  as in DynamoDB. moto's CreateTable is not: two runners creating the history
  table at the same moment can both succeed, the second replacing the first's
  table and its lock.)

Checks, each a `MigrationError` with a one-line message, before anything runs:
a gap (a number skipped in the folder's files, an applied step whose file is
gone, or a pending step numbered below an applied one), an applied file edited
since (checksum mismatch; pass ``allow_edited=True`` / ``--allow-edited`` to run
anyway, `status` keeps reporting it), an unknown target, a file that does not import, a step to undo
without ``down``, and a table that exists with other keys than its model. A
step that raises is recorded as failed and stops the run; running again
retries it (data migrations resume from their checkpoints). A dry run prints
what would run and changes nothing: it neither creates the history table nor
takes the lock, and does not call the steps.

Tables are PAY_PER_REQUEST and encrypted; point-in-time recovery and TTL are
turned on where the engine has them (AWS and moto do; dynalite has neither, so
they are skipped with a note).

Example:
    >>> from portchops_models.migrate import status, upgrade
    >>> results = upgrade()                                    # doctest: +SKIP
    >>> [s.number for s in status() if s.applied]              # doctest: +SKIP
    ['0001', '0002', '0003', '0004', '0005']

Modules, one per concept: `errors` (`MigrationError`, `connection_errors`),
`discovery` (`Migration`, `discover`, `default_path`, `namespace_of`, loading a file),
`request` (one call with retries, metrics and error translation), `history`
(the ``schema-migrations`` table), `lock` (the lease lock), `context`
(`MigrationContext`), `plan` (the checks before anything runs), `runner`
(`upgrade`, `downgrade`, `status`), and for backfills over many workers:
`backfill` (`Backfill`), `lease` (segment leases with fencing), `rate` (the shared
`Rate`), `worker` (the segment loops) and `work` (`work`, `backfill_status`).
"""

from __future__ import annotations

from ..errors import EndpointUnreachable, NoCredentials
from .backfills.backfill import Backfill, BackfillCancelled, BackfillResult, Batch, Rate
from .backfills.command import BackfillProgress, backfill_status, control, work
from .backfills.upcast import VersionCounts, converging_backfill, version_counts
from .context import CheckpointHook, MigrationContext
from .discovery import Migration, default_path, discover, namespace_of
from .errors import MigrationError, connection_errors
from .history import HISTORY_TABLE
from .runner import MigrationStatus, StepResult, downgrade, status, upgrade

__all__ = [
    "HISTORY_TABLE",
    "Backfill",
    "BackfillCancelled",
    "BackfillProgress",
    "BackfillResult",
    "Batch",
    "CheckpointHook",
    "EndpointUnreachable",
    "Migration",
    "MigrationContext",
    "MigrationError",
    "MigrationStatus",
    "NoCredentials",
    "Rate",
    "StepResult",
    "VersionCounts",
    "backfill_status",
    "connection_errors",
    "control",
    "converging_backfill",
    "default_path",
    "discover",
    "downgrade",
    "namespace_of",
    "status",
    "upgrade",
    "version_counts",
    "work",
]

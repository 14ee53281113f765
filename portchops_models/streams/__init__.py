"""Change streams: the changes to a model's table, typed.

Turn a table's stream on with `enable_stream` (idempotent: a migration can call
it), then read its records as `Change` objects, in an AWS Lambda handler with
`changes_from_event`::

    from portchops_models.streams import changes_from_event, enable_stream

    arn = enable_stream(Note)                       # NEW_AND_OLD_IMAGES

    def handler(event, context):
        for change in changes_from_event(event, Note):
            change.kind                 # "insert" | "modify" | "remove"
            change.key                  # the repository's key shape
            change.old, change.new      # Note | None
            change.expired              # True for a deletion by TTL

or from any number of processes with a `StreamWorker` (one fenced lease per shard,
checkpointed after each batch)::

    StreamWorker(Note, handle_batch, name="read-model").run()

`evicter(Note)` is such a worker that evicts every changed item from every
process's cache over the Redis bus, whoever wrote it.

See docs/streams.md.
"""

from __future__ import annotations

from ..admin.tables import STREAM_VIEWS, enable_stream
from .changes import Change, ChangeKind, changes_from_event
from .evicter import evicter
from .worker import STREAM_LEASES, StreamResult, StreamWorker

__all__ = [
    "STREAM_LEASES",
    "STREAM_VIEWS",
    "Change",
    "ChangeKind",
    "StreamResult",
    "StreamWorker",
    "changes_from_event",
    "enable_stream",
    "evicter",
]

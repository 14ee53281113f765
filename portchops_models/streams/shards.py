"""A table's stream as shards: listing them, reading one, and which may be read now.

DynamoDB Streams keeps a stream's records in shards. A shard is split or closed
from time to time (about every four hours, or as the table's partitions split);
its children start where it ends, so a key's records continue in a child. To keep
every key's records in order, a child is read only once its parent has been read
to its end (`readable`). A closed shard's last `GetRecords` answer has no
``NextShardIterator``; a shard older than the stream's 24-hour trim horizon is no
longer listed, so a child whose parent is gone may be read at once.

`ShardReader` makes the three Streams API calls (``DescribeStream``,
``GetShardIterator``, ``GetRecords``) through the connection's one send path on
the lean transport (`Connection.send_streams`): retried, counted, translated.
`readable` is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..observe.metrics import Metrics
from ..transport.connection import Connection

__all__ = ["Shard", "ShardReader", "ShardSource", "readable"]


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard of a stream, as ``DescribeStream`` lists it.

    Attributes:
        shard_id: its id.
        parent: its parent's id (None for a shard of the stream's first generation).
        closed: it has an ending sequence number: no record will be added to it.
    """

    shard_id: str
    parent: str | None = None
    closed: bool = False


def readable(shards: Iterable[Shard], finished: set[str]) -> list[Shard]:
    """The shards that may be read now, parents first: not `finished`, and whose parent is
    finished or no longer listed (trimmed), so every key's records stay in order.

    Example: a parent ``a`` and its children ``b``, ``c``: only ``a`` until ``a`` is in
    `finished`, then ``b`` and ``c``.
    """
    listed = list(shards)
    ids = {shard.shard_id for shard in listed}
    return [
        shard
        for shard in listed
        if shard.shard_id not in finished
        and (shard.parent is None or shard.parent in finished or shard.parent not in ids)
    ]


class ShardSource(Protocol):
    """Where a stream worker reads shards from: `ShardReader` (the Streams API), or a
    source of your own (a replay of recorded records, a test's stream of many shards)."""

    def shards(self) -> list[Shard]:
        """Every shard, parents listed before their children."""
        ...

    def iterator(self, shard_id: str, after: str | None) -> str:
        """A position just after sequence number `after` (None: the shard's oldest record)."""
        ...

    def records(self, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` records from `iterator`, and the next position (None: the shard
        is closed and read to its end)."""
        ...


class ShardReader:
    """Reads one stream (`arn`) through the DynamoDB Streams API.

    Args:
        conn: the connection (its Streams transport, retry policy and pool slots).
        arn: the stream's ARN (`portchops_models.admin.tables.stream_arn`).
        table: the table's name, for metrics and errors.
        metrics: where requests are counted, or None.
    """

    def __init__(
        self, conn: Connection, arn: str, *, table: str, metrics: Metrics | None = None
    ) -> None:
        self.conn = conn
        self.arn = arn
        self.table = table
        self.metrics = metrics

    def _send(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.conn.send_streams(operation, params, table=self.table, metrics=self.metrics)

    def shards(self) -> list[Shard]:
        """Every shard of the stream, in the order DynamoDB lists them (every page)."""
        found: list[Shard] = []
        params: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            described = self._send("DescribeStream", params)["StreamDescription"]
            found.extend(_shard(entry) for entry in described.get("Shards", ()))
            last = described.get("LastEvaluatedShardId")
            if not last:
                return found
            params["ExclusiveStartShardId"] = last

    def iterator(self, shard_id: str, after: str | None) -> str:
        """A shard iterator from just after sequence number `after` (None: the oldest
        record still held, ``TRIM_HORIZON``)."""
        params: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard_id}
        if after is None:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            params["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            params["SequenceNumber"] = after
        return str(self._send("GetShardIterator", params)["ShardIterator"])

    def records(self, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` records from `iterator`, and the iterator to go on with (None: the
        shard is closed and read to its end)."""
        answer = self._send("GetRecords", {"ShardIterator": iterator, "Limit": limit})
        following = answer.get("NextShardIterator")
        return list(answer.get("Records", ())), str(following) if following else None


def _shard(entry: Mapping[str, Any]) -> Shard:
    numbers = entry.get("SequenceNumberRange") or {}
    parent = entry.get("ParentShardId")
    return Shard(
        shard_id=str(entry["ShardId"]),
        parent=str(parent) if parent else None,
        closed=bool(numbers.get("EndingSequenceNumber")),
    )

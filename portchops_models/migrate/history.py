"""The ``{prefix}schema-migrations`` table: step records, checksums, failures, checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..admin import tables
from ..errors import ConditionFailed, PortChopsError
from ..transport.connection import Connection
from .discovery import Migration, _parse_id
from .errors import MigrationError

#: Base name of the history table (the prefix is added).
HISTORY_TABLE = tables.MIGRATION_HISTORY_TABLE
_CHECKPOINT = "checkpoint:"


@dataclass(frozen=True)
class _Record:
    number: str
    namespace: str
    status: str
    description: str
    checksum: str | None
    applied_at: datetime | None
    duration_ms: float | None
    error: str | None
    folder: str | None


def _record(item: Mapping[str, Mapping[str, str]]) -> _Record:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value.get("S") if value else None

    number = item.get("duration_ms", {}).get("N")
    applied = text("applied_at")
    namespace, step = _parse_id(text("id") or "") or ("", "")
    return _Record(
        number=step,
        namespace=namespace,
        status=text("status") or "pending",
        description=text("description") or "",
        checksum=text("checksum"),
        applied_at=datetime.fromisoformat(applied) if applied else None,
        duration_ms=float(number) if number else None,
        error=text("error"),
        folder=text("folder"),
    )


class _History:
    """The ``{prefix}schema-migrations`` table: step records, checkpoints and the lock."""

    def __init__(self, conn: Connection, base: str = HISTORY_TABLE) -> None:
        s = conn.settings
        self.conn = conn
        self.table = s.table_name(base)
        self.retry = conn.retry

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.conn.send(
            operation, {"TableName": self.table, **params}, table=self.table, retry=self.retry
        )

    def exists(self) -> bool:
        table = tables.describe_table(self.table, conn=self.conn)
        if table is None:
            return False
        if table.get("KeySchema") != [{"AttributeName": "id", "KeyType": "HASH"}]:
            raise MigrationError(f"table {self.table} exists but is not keyed by a string id")
        return True

    def ensure(self) -> None:
        if self.exists():
            return
        try:
            self.call(
                "CreateTable",
                {
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "SSESpecification": {"Enabled": True},
                },
            )
        except PortChopsError as err:
            if err.code != "ResourceInUseException":  # another runner created it first
                raise
        tables.wait_until_active(self.table, conn=self.conn)

    def records(self, namespace: str) -> dict[str, _Record]:
        """The step records of one folder's namespace, by number (the lock is not one)."""
        found: dict[str, _Record] = {}
        params: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.call("Scan", params)
            for item in page.get("Items", []):
                record = _record(item)
                if record.number and record.namespace == namespace:
                    found[record.number] = record
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, item_id: str) -> dict[str, Any] | None:
        key = {"Key": {"id": {"S": item_id}}, "ConsistentRead": True}
        item: dict[str, Any] | None = self.call("GetItem", key).get("Item")
        return item

    def is_applied(self, step_id: str) -> bool:
        item = self.get(step_id)
        return item is not None and _record(item).status == "applied"

    def applied(self, migration: Migration, *, at: datetime, duration_ms: float) -> bool:
        """Record the step as applied, once: False if it already was (a backfill's last
        worker records it when the last segment completes, before the runner would)."""
        item = {
            "id": {"S": migration.id},
            "status": {"S": "applied"},
            "description": {"S": migration.description},
            "checksum": {"S": migration.checksum},
            "applied_at": {"S": at.isoformat()},
            "duration_ms": {"N": f"{duration_ms:.3f}"},
            "folder": {"S": _folder(migration)},
        }
        try:
            self.call(
                "PutItem",
                {
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#s) OR #s <> :applied",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":applied": {"S": "applied"}},
                },
            )
        except ConditionFailed:
            return False
        return True

    def failed(self, migration: Migration, *, error: str, at: datetime) -> None:
        names = {"#s": "status", "#e": "error", "#d": "description", "#c": "checksum"}
        names |= {"#t": "failed_at", "#f": "folder"}
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": migration.id}},
                "UpdateExpression": "SET #s = :s, #e = :e, #d = :d, #c = :c, #t = :t, #f = :f",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":s": {"S": "failed"},
                    ":e": {"S": error[:2000] or "failed"},
                    ":d": {"S": migration.description},
                    ":c": {"S": migration.checksum},
                    ":t": {"S": at.isoformat()},
                    ":f": {"S": _folder(migration)},
                },
            },
        )

    def forget(self, step_id: str) -> None:
        self.call("DeleteItem", {"Key": {"id": {"S": step_id}}})

    def checkpoint(self, step_id: str, key: str) -> str | None:
        item = self.get(step_id) or {}
        value = item.get(_CHECKPOINT + key, {}).get("S")
        return value if isinstance(value, str) else None

    def save_checkpoint(self, step_id: str, key: str, value: str) -> None:
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": step_id}},
                "UpdateExpression": "SET #k = :v",
                "ExpressionAttributeNames": {"#k": _CHECKPOINT + key},
                "ExpressionAttributeValues": {":v": {"S": value}},
            },
        )


def _folder(migration: Migration) -> str:
    """Where the step was applied from (shown when two folders share a namespace)."""
    return str(migration.path.resolve().parent)

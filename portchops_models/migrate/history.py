"""The ``{prefix}schema-migrations`` table: step records, checksums, failures, checkpoints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import tables
from ..connection import Connection
from ..errors import PortChopsError
from .discovery import Migration
from .errors import MigrationError

#: Base name of the history table (the prefix is added).
HISTORY_TABLE = "schema-migrations"
_CHECKPOINT = "checkpoint:"


@dataclass(frozen=True)
class _Record:
    number: str
    status: str
    description: str
    checksum: str | None
    applied_at: datetime | None
    duration_ms: float | None
    error: str | None


def _record(item: Mapping[str, Mapping[str, str]]) -> _Record:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value.get("S") if value else None

    number = item.get("duration_ms", {}).get("N")
    applied = text("applied_at")
    return _Record(
        number=text("id") or "",
        status=text("status") or "pending",
        description=text("description") or "",
        checksum=text("checksum"),
        applied_at=datetime.fromisoformat(applied) if applied else None,
        duration_ms=float(number) if number else None,
        error=text("error"),
    )


class _History:
    """The ``{prefix}schema-migrations`` table: step records, checkpoints and the lock."""

    def __init__(self, conn: Connection) -> None:
        s = conn.settings
        self.conn = conn
        self.table = s.table_name(HISTORY_TABLE)
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
            raise MigrationError(f"table {self.table} exists but is not a migration history")
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

    def records(self) -> dict[str, _Record]:
        found: dict[str, _Record] = {}
        params: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = self.call("Scan", params)
            for item in page.get("Items", []):
                record = _record(item)
                if re.fullmatch(r"\d{4}", record.number):
                    found[record.number] = record
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, item_id: str) -> dict[str, Any] | None:
        key = {"Key": {"id": {"S": item_id}}, "ConsistentRead": True}
        item: dict[str, Any] | None = self.call("GetItem", key).get("Item")
        return item

    def is_applied(self, number: str) -> bool:
        item = self.get(number)
        return item is not None and _record(item).status == "applied"

    def applied(self, migration: Migration, *, at: datetime, duration_ms: float) -> None:
        item = {
            "id": {"S": migration.number},
            "status": {"S": "applied"},
            "description": {"S": migration.description},
            "checksum": {"S": migration.checksum},
            "applied_at": {"S": at.isoformat()},
            "duration_ms": {"N": f"{duration_ms:.3f}"},
        }
        self.call("PutItem", {"Item": item})

    def failed(self, migration: Migration, *, error: str, at: datetime) -> None:
        names = {"#s": "status", "#e": "error", "#d": "description", "#c": "checksum"}
        names["#t"] = "failed_at"
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": migration.number}},
                "UpdateExpression": "SET #s = :s, #e = :e, #d = :d, #c = :c, #t = :t",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":s": {"S": "failed"},
                    ":e": {"S": error[:2000] or "failed"},
                    ":d": {"S": migration.description},
                    ":c": {"S": migration.checksum},
                    ":t": {"S": at.isoformat()},
                },
            },
        )

    def forget(self, number: str) -> None:
        self.call("DeleteItem", {"Key": {"id": {"S": number}}})

    def checkpoint(self, number: str, key: str) -> str | None:
        item = self.get(number) or {}
        value = item.get(_CHECKPOINT + key, {}).get("S")
        return value if isinstance(value, str) else None

    def save_checkpoint(self, number: str, key: str, value: str) -> None:
        self.call(
            "UpdateItem",
            {
                "Key": {"id": {"S": number}},
                "UpdateExpression": "SET #k = :v",
                "ExpressionAttributeNames": {"#k": _CHECKPOINT + key},
                "ExpressionAttributeValues": {":v": {"S": value}},
            },
        )

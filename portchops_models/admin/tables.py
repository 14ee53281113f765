"""Table definitions derived from the models: create, describe, wait, delete.

The key schema, attribute definitions and indexes come from the model classes
(no second copy of the schema). Tables are PAY_PER_REQUEST with server-side
encryption; `create_table` can also turn on point-in-time recovery and TTL, and
every call waits until the table and its indexes are ACTIVE.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import (
    ConfigurationError,
    InvalidRequest,
    PortChopsError,
    error_code,
    table_not_found,
    translate,
)
from ..models.attributes import ExpiryAttribute
from ..models.base import BaseModel
from ..transport.connection import Connection, current_connection

__all__ = [
    "MIGRATION_HISTORY_TABLE",
    "create_table",
    "delete_table",
    "describe_table",
    "STREAM_VIEWS",
    "enable_pitr",
    "enable_stream",
    "stream_arn",
    "enable_ttl",
    "index_spec",
    "table_spec",
    "ttl_attribute_name",
    "wait_until_active",
]

_WAIT_SECONDS = 300.0
#: Base name of the migration runner's history table (`portchops_models.migrate.history`);
#: named here, below the runner, so the per-role policies can grant it.
MIGRATION_HISTORY_TABLE = "schema-migrations"


def _key_schema(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    # DynamoDB wants the HASH element first.
    schema = [
        {"AttributeName": str(e["AttributeName"]), "KeyType": str(e["KeyType"])} for e in entries
    ]
    return sorted(schema, key=lambda e: e["KeyType"] != "HASH")


def index_spec(model: type[BaseModel], index_name: str) -> dict[str, Any]:
    """The `GlobalSecondaryIndexes` entry for one of the model's indexes."""
    for gsi in model._get_schema()["global_secondary_indexes"]:
        if gsi["index_name"] == index_name:
            return {
                "IndexName": gsi["index_name"],
                "KeySchema": _key_schema(gsi["key_schema"]),
                "Projection": gsi["projection"],
            }
    raise InvalidRequest(f"{model.__name__} has no index {index_name!r}")


def table_spec(
    model: type[BaseModel], *, table_name: str | None = None, indexes: bool = True
) -> dict[str, Any]:
    """CreateTable parameters for a model: PAY_PER_REQUEST, encrypted, its indexes.

    Local secondary indexes are always included (DynamoDB creates them only with
    the table); ``indexes=False`` leaves out the global ones, for a migration that
    adds them later.
    """
    schema: Any = model._get_schema()
    gsis = [index_spec(model, g["index_name"]) for g in schema["global_secondary_indexes"]]
    lsis = [
        {
            "IndexName": lsi["index_name"],
            "KeySchema": _key_schema(lsi["key_schema"]),
            "Projection": lsi["projection"],
        }
        for lsi in schema["local_secondary_indexes"]
    ]
    used = {e["AttributeName"] for e in schema["key_schema"]}
    used |= {k["AttributeName"] for i in lsis for k in i["KeySchema"]}
    if indexes:
        used |= {k["AttributeName"] for g in gsis for k in g["KeySchema"]}
    spec: dict[str, Any] = {
        "TableName": table_name or model.table_name(),
        "KeySchema": _key_schema(schema["key_schema"]),
        "AttributeDefinitions": sorted(
            (d for d in schema["attribute_definitions"] if d["AttributeName"] in used),
            key=lambda d: d["AttributeName"],
        ),
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if indexes and gsis:
        spec["GlobalSecondaryIndexes"] = gsis
    if lsis:
        spec["LocalSecondaryIndexes"] = lsis
    return spec


def ttl_attribute_name(model: type[BaseModel]) -> str | None:
    """The DynamoDB name of the model's TTL attribute, if it has one."""
    for attr in model.get_attributes().values():
        if isinstance(attr, ExpiryAttribute):
            return attr.attr_name
    return None


def describe_table(table_name: str, *, conn: Connection | None = None) -> dict[str, Any] | None:
    """The table's description, or None when it does not exist."""
    conn = conn or current_connection()
    try:
        table: dict[str, Any] = conn.call("DescribeTable", {"TableName": table_name})["Table"]
    except Exception as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise translate(err, table=table_name, endpoint=conn.client.meta.endpoint_url) from err
    return table


def wait_until_active(
    table_name: str, *, conn: Connection | None = None, timeout: float = _WAIT_SECONDS
) -> dict[str, Any]:
    """Poll until the table and all its indexes are ACTIVE; return the description."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        table = describe_table(table_name, conn=conn)
        if table is None:
            raise table_not_found(table_name)
        statuses = [table.get("TableStatus")] + [
            g.get("IndexStatus") for g in table.get("GlobalSecondaryIndexes", [])
        ]
        if all(s == "ACTIVE" for s in statuses):
            return table
        if time.monotonic() > deadline:
            raise PortChopsError(f"{table_name} not ACTIVE after {timeout:.0f}s", table=table_name)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def create_table(
    model: type[BaseModel],
    *,
    conn: Connection | None = None,
    table_name: str | None = None,
    indexes: bool = True,
    ttl: bool = True,
    pitr: bool = True,
) -> dict[str, Any]:
    """Create the model's table (if missing), wait until ACTIVE, then TTL and PITR.

    TTL and point-in-time recovery are best effort on engines without them
    (dynalite has neither); on AWS and moto both are applied.
    """
    conn = conn or current_connection()
    spec = table_spec(model, table_name=table_name, indexes=indexes)
    name = spec["TableName"]
    if describe_table(name, conn=conn) is None:
        try:
            conn.call("CreateTable", spec)
        except Exception as err:
            if error_code(err) != "ResourceInUseException":
                raise translate(err, table=name, endpoint=conn.client.meta.endpoint_url) from err
    table = wait_until_active(name, conn=conn)
    if ttl:
        enable_ttl(model, conn=conn, table_name=name)
    if pitr:
        enable_pitr(name, conn=conn)
    return table


def enable_ttl(
    model: type[BaseModel], *, conn: Connection | None = None, table_name: str | None = None
) -> bool:
    """Turn on TTL for the model's TTL attribute; False if the engine has no TTL."""
    attr = ttl_attribute_name(model)
    if attr is None:
        return False
    conn = conn or current_connection()
    name = table_name or model.table_name()
    try:
        current = conn.call("DescribeTimeToLive", {"TableName": name})
        desc = current.get("TimeToLiveDescription", {})
        if desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return True
        conn.call(
            "UpdateTimeToLive",
            {
                "TableName": name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attr},
            },
        )
    except Exception as err:
        if _unsupported(err):
            return False
        raise translate(err, table=name, endpoint=conn.client.meta.endpoint_url) from err
    return True


def enable_pitr(table_name: str, *, conn: Connection | None = None) -> bool:
    """Turn on point-in-time recovery; False if the engine does not support it."""
    conn = conn or current_connection()
    try:
        conn.call(
            "UpdateContinuousBackups",
            {
                "TableName": table_name,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        )
    except Exception as err:
        if _unsupported(err):
            return False
        raise translate(err, table=table_name, endpoint=conn.client.meta.endpoint_url) from err
    return True


#: The stream view types DynamoDB offers (what each stream record carries).
STREAM_VIEWS = ("NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY")


def enable_stream(
    model: type[BaseModel],
    view: str | None = None,
    *,
    conn: Connection | None = None,
    table_name: str | None = None,
) -> str:
    """Turn on the DynamoDB stream of the model's table; return the stream's ARN.

    `view` defaults to the model's own ``Meta.stream_view_type`` (PynamoDB's option,
    which the IAM policy reads too), else ``"NEW_AND_OLD_IMAGES"``.
    Idempotent: a stream already on with the same `view` is kept and its ARN
    returned, so a migration can call it every time. DynamoDB cannot change the
    view of a live stream: asking for another one is an `InvalidRequest` naming
    both (turn the stream off first, which ends the old stream's records).

    Example::

        arn = enable_stream(Note)                       # NEW_AND_OLD_IMAGES
        arn = enable_stream(Note, "KEYS_ONLY")          # InvalidRequest: already NEW_AND_OLD_IMAGES

    Raises:
        InvalidRequest: `view` is not one of `STREAM_VIEWS`, or the stream is on
            with another view.
        TableNotFound: the table does not exist.
        ConfigurationError: the engine has no streams (dynalite).
    """
    if view is None:
        view = getattr(model.Meta, "stream_view_type", None) or "NEW_AND_OLD_IMAGES"
    if view not in STREAM_VIEWS:
        raise InvalidRequest(f"stream view must be one of {', '.join(STREAM_VIEWS)}, got {view!r}")
    conn = conn or current_connection()
    name = table_name or model.table_name()
    for _ in range(2):  # a second pass after another process turned it on meanwhile
        table = describe_table(name, conn=conn)
        if table is None:
            raise table_not_found(name)
        arn = _live_stream(table, view)
        if arn is not None:
            return arn
        try:
            conn.call(
                "UpdateTable",
                {
                    "TableName": name,
                    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view},
                },
            )
        except Exception as err:
            if error_code(err) == "ResourceInUseException":
                continue
            if _unsupported(err) or "UpdateStreamEnabled" in str(err):  # dynalite's refusal
                raise ConfigurationError(
                    f"{name}: this engine has no DynamoDB Streams ({err}); "
                    "use moto's server or AWS for streams"
                ) from err
            raise translate(err, table=name, endpoint=conn.client.meta.endpoint_url) from err
        arn = _live_stream(wait_until_active(name, conn=conn), view)
        if arn is not None:
            return arn
        raise ConfigurationError(f"{name}: UpdateTable turned no stream on: this engine has none")
    raise PortChopsError(f"{name}: the stream kept changing while it was being turned on")


def stream_arn(
    model: type[BaseModel], *, conn: Connection | None = None, table_name: str | None = None
) -> tuple[str, str]:
    """The ARN and view of the model's live stream (what a stream worker reads).

    Raises:
        TableNotFound: the table does not exist.
        ConfigurationError: the table's stream is off (`enable_stream` turns it on).
    """
    conn = conn or current_connection()
    name = table_name or model.table_name()
    table = describe_table(name, conn=conn)
    if table is None:
        raise table_not_found(name)
    spec = table.get("StreamSpecification") or {}
    arn = table.get("LatestStreamArn")
    if not spec.get("StreamEnabled") or not arn:
        raise ConfigurationError(
            f"{name} has no stream on: call enable_stream({model.__name__}) first (a migration can)"
        )
    return str(arn), str(spec.get("StreamViewType"))


def _live_stream(table: Mapping[str, Any], view: str) -> str | None:
    """The ARN of the table's stream if it is on with `view` (None when it is off)."""
    spec = table.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return None
    current = spec.get("StreamViewType")
    if current != view:
        raise InvalidRequest(
            f"{table.get('TableName')}: its stream is on with view {current}, not {view}; "
            "DynamoDB cannot change a live stream's view (turn the stream off first)"
        )
    arn = table.get("LatestStreamArn")
    return str(arn) if arn else None


def delete_table(table_name: str, *, conn: Connection | None = None) -> bool:
    """Delete a table and wait until it is gone; False if it did not exist."""
    conn = conn or current_connection()
    try:
        conn.call("DeleteTable", {"TableName": table_name})
    except Exception as err:
        if error_code(err) == "ResourceNotFoundException":
            return False
        raise translate(err, table=table_name, endpoint=conn.client.meta.endpoint_url) from err
    deadline = time.monotonic() + _WAIT_SECONDS
    while describe_table(table_name, conn=conn) is not None:
        if time.monotonic() > deadline:
            raise PortChopsError(f"{table_name} still exists after {_WAIT_SECONDS:.0f}s")
        time.sleep(0.05)
    return True


#: The error codes of an engine that does not know an operation (dynalite's, moto's).
UNSUPPORTED_CODES = frozenset({"UnknownOperationException", "UnrecognizedClientException"})


def _unsupported(err: BaseException) -> bool:
    code = error_code(err)
    return code in UNSUPPORTED_CODES or (code is None and "Unknown" in str(err))

"""The repository's read parser gives exactly what botocore's parser gives."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from portchops_models.settings import Settings
from portchops_models.transport.connection import current_connection

EVERY_TYPE = {
    "userId": {"S": "every-type"},
    "email": {"S": "é@example.com"},
    "n": {"N": "-12.500"},
    "b": {"B": b"\x00\xffbinary"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"B": b"\x03"}, "l": {"L": [{"B": b"\x04"}, {"N": "7"}]}}},
    "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}, {"M": {"b": {"B": b"\x05"}}}]},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
}


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_every_read_parses_like_botocore(any_tables: Settings) -> None:
    conn = current_connection()
    users = any_tables.table_name("users")
    conn.call("PutItem", {"TableName": users, "Item": EVERY_TYPE})
    for i in range(5):
        conn.call("PutItem", {"TableName": users, "Item": {"userId": {"S": f"u{i}"}}})
    requests: dict[str, dict[str, Any]] = {
        "GetItem": {"TableName": users, "Key": {"userId": {"S": "every-type"}}},
        "BatchGetItem": {
            "RequestItems": {users: {"Keys": [{"userId": {"S": k}} for k in ("every-type", "u1")]}},
            "ReturnConsumedCapacity": "TOTAL",
        },
        "Query": {
            "TableName": users,
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": "every-type"}},
            "ReturnConsumedCapacity": "TOTAL",
        },
        "Scan": {"TableName": users, "Limit": 3},
    }
    for operation, params in requests.items():
        by_botocore = _strip(conn.client._make_api_call(operation, dict(params)))
        by_layer = _strip(conn.read(operation, dict(params)))
        if operation == "BatchGetItem":
            for items in (*by_botocore["Responses"].values(), *by_layer["Responses"].values()):
                items.sort(key=lambda item: item["userId"]["S"])
        assert by_layer == by_botocore, operation
    item = conn.read("GetItem", requests["GetItem"])["Item"]
    assert item["b"] == {"B": b"\x00\xffbinary"}
    assert item["m"]["M"]["l"]["L"][0] == {"B": b"\x04"}


def test_errors_still_go_through_botocore(any_tables: Settings) -> None:
    conn = current_connection()
    with pytest.raises(ClientError) as info:
        conn.read("GetItem", {"TableName": "no-such-table-here", "Key": {"userId": {"S": "u"}}})
    assert info.value.response["Error"]["Code"].endswith("ResourceNotFoundException")

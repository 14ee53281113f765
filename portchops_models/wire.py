"""Parsing the repository's read answers with one ``json.loads``.

botocore's generic response parser walks the output shape for every attribute
value of every item: tens of microseconds an item, more than the whole HTTP
exchange of a batch read on a fast network. DynamoDB's JSON already has the
shape botocore returns (numbers stay strings in ``N``); only binary values need
base64-decoding. So for the reads made through `call_parsed` (GetItem,
BatchGetItem, Query, Scan) a successful answer is parsed here, through
botocore's ``before-parse`` event; errors, other operations and every other
user of the client (PynamoDB's own model calls included) keep botocore's parser.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PARSED_OPERATIONS", "call_parsed", "install"]

#: Reads whose successful JSON answers are parsed here.
PARSED_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
_local = threading.local()


def call_parsed(
    call: Callable[[str, dict[str, Any]], dict[str, Any]], operation: str, params: dict[str, Any]
) -> dict[str, Any]:
    """``call(operation, params)``, with a read's answer parsed by `_parse` in this thread."""
    if operation not in PARSED_OPERATIONS:
        return call(operation, params)
    _local.active = True
    try:
        return call(operation, params)
    finally:
        _local.active = False


def install(client: Any) -> None:
    """Hook `_parse` into the client's ``before-parse`` events (once per client)."""
    events = client.meta.events
    for operation in PARSED_OPERATIONS:
        events.register(
            f"before-parse.dynamodb.{operation}",
            _parse,
            unique_id=f"portchops-lean-{operation}",
        )


def _parse(
    response_dict: dict[str, Any],
    customized_response_dict: dict[str, Any],
    operation_model: Any,
    **_: Any,
) -> None:
    """Parse a repository read's 200 answer with one ``json.loads``.

    DynamoDB's JSON already has the shape botocore returns (numbers stay strings in
    ``N``); only binary values need base64-decoding. The result goes into
    ``customized_response_dict``, which botocore merges into its own result, and the
    body botocore then parses is ``{}`` (it still adds ``ResponseMetadata``). Only the
    output shape's members are kept, as botocore does. Errors, other operations, other
    callers of the client and anything unexpected are left to botocore.
    """
    if not getattr(_local, "active", False) or response_dict.get("status_code") != 200:
        return
    try:
        parsed = json.loads(response_dict["body"])
        if not isinstance(parsed, dict):
            return
        members = operation_model.output_shape.members
        lean = {k: v for k, v in parsed.items() if v is not None and k in members}
        _decode_binaries(lean)
    except Exception:  # leave it all to botocore, which reports malformed answers
        return
    customized_response_dict.update(lean)
    response_dict["body"] = b"{}"


def _decode_binaries(parsed: dict[str, Any]) -> None:
    """Base64-decode the B and BS values of every item and key, as botocore's parser does."""
    for name in ("Item", "LastEvaluatedKey"):
        if name in parsed:
            _decode_map(parsed[name])
    for item in parsed.get("Items", ()):
        _decode_map(item)
    for items in parsed.get("Responses", {}).values():
        for item in items:
            _decode_map(item)
    for request in parsed.get("UnprocessedKeys", {}).values():
        for key in request.get("Keys", ()):
            _decode_map(key)


def _decode_map(item: dict[str, Any]) -> None:
    for value in item.values():
        if "S" not in value and "N" not in value:
            _decode_value(value)


def _decode_value(value: dict[str, Any]) -> None:
    if "B" in value:
        value["B"] = base64.b64decode(value["B"])
    elif "BS" in value:
        value["BS"] = [base64.b64decode(v) for v in value["BS"]]
    elif "M" in value:
        _decode_map(value["M"])
    elif "L" in value:
        for element in value["L"]:
            if "S" not in element and "N" not in element:
                _decode_value(element)

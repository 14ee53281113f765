"""Parsing the repository's read answers with one ``json.loads``.

botocore's generic response parser walks the output shape for every attribute
value of every item: tens of microseconds an item, more than the whole HTTP
exchange of a batch read on a fast network. DynamoDB's JSON already has the
shape botocore returns (numbers stay strings in ``N``); only binary values need
base64-decoding. So for the reads made through `call_parsed` (GetItem,
BatchGetItem, Query, Scan) a successful answer is parsed here, through
botocore's ``before-parse`` event; errors, other operations and every other
user of the client keep botocore's parser. `Connection.call` no longer goes
through botocore (see `portchops_models.transport`, which decodes the same way
with the same helper); this hook serves the code that still uses ``conn.client``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from .codec import decode_binaries

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
        decode_binaries(lean)
    except Exception:  # leave it all to botocore, which reports malformed answers
        return
    customized_response_dict.update(lean)
    response_dict["body"] = b"{}"

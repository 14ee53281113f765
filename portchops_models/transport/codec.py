"""The pure half of the request path: a DynamoDB call to HTTP bytes and back, no I/O.

`encode_request` makes the request botocore would send (same URL, headers,
signature and body bytes; pinned by tests/transport/test_transport.py) with one
``json.dumps``. `decode_response` turns an answer into what botocore's client
returns: one ``json.loads`` for the data plane (DynamoDB's JSON already has the
shape botocore returns; numbers stay strings in ``N``, only binaries need
base64-decoding), botocore's own parser for the control plane (timestamps
become datetimes there) and for errors, which are raised as the same
`botocore.exceptions.ClientError` subclasses with the same ``response``, so
`portchops_models.errors` classifies and translates them unchanged.
"""

from __future__ import annotations

import base64
import binascii
import functools
import http.client
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.credentials import Credentials
from botocore.exceptions import ChecksumError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from .signing import sign

__all__ = [
    "LEAN_OPERATIONS",
    "HttpRequest",
    "Service",
    "decode_binaries",
    "decode_response",
    "encode_request",
    "user_agent",
]

#: Operations whose successful answers are parsed with one ``json.loads`` (the data plane).
LEAN_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_TARGET_PREFIX = "DynamoDB_20120810."
#: The Streams API's calls answered with one ``json.loads`` (records are the hot path;
#: ``ApproximateCreationDateTime`` then stays epoch seconds, as in a Lambda event).
_LEAN_STREAM_OPERATIONS = frozenset({"GetRecords"})
_CONTENT_TYPE = "application/x-amz-json-1.0"
#: An error's message is cut to this many characters when the answer is not JSON.
_SHORT = 120


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One signed HTTP request: what goes on the wire, nothing more."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    #: the DynamoDB operation (``"GetItem"``), for decoding the answer and for errors.
    operation: str = field(default="", compare=False)


@functools.cache
def user_agent() -> str:
    """The ``User-Agent`` of our requests: this layer, then botocore (whose signer we match)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import botocore

    try:
        ours = version("portchops-models")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        ours = "0"
    return (
        f"portchops-models/{ours} Botocore/{botocore.__version__} "
        f"lang/python#{platform.python_version()}"
    )


def _bytes_to_base64(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_body(params: dict[str, Any]) -> bytes:
    """The JSON body botocore sends for `params`: one ``json.dumps``, bytes as base64.

    botocore leaves out members set to ``None``; so does this (at the top level,
    the only place the layer and PynamoDB ever put one).
    """
    if None in params.values():
        params = {k: v for k, v in params.items() if v is not None}
    return json.dumps(params, default=_bytes_to_base64).encode("utf-8")


def encode_request(
    operation: str,
    params: dict[str, Any],
    *,
    endpoint: str,
    region: str,
    credentials: Credentials | None,
    now: datetime | None = None,
    target_prefix: str = _TARGET_PREFIX,
) -> HttpRequest:
    """The signed HTTP request for one DynamoDB call, as botocore makes it.

    Args:
        operation: the API name, e.g. ``"GetItem"``.
        params: its parameters, as for botocore's client (binaries as ``bytes``).
        endpoint: the endpoint URL, e.g. ``https://dynamodb.eu-west-1.amazonaws.com``.
        region: the region signed for.
        credentials: botocore credentials (refreshed here when they are about to expire).
        now: the signing time (default: now); for tests.
        target_prefix: the ``X-Amz-Target`` prefix: DynamoDB's, or the Streams API's
            (`Service.target_prefix`).

    Every header is botocore's but two kinds: ``User-Agent`` names this layer,
    and botocore's retry telemetry (``amz-sdk-invocation-id``, ``amz-sdk-request``)
    is not sent, as the retries are not botocore's. Neither kind is signed.

    Raises:
        NoCredentialsError: `credentials` is None (botocore raises the same).
    """
    if credentials is None:
        raise NoCredentialsError()
    frozen = credentials.get_frozen_credentials()
    body = encode_body(params)
    amz_date = (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        if now is None
        else now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    target = target_prefix + operation
    headers = {
        "X-Amz-Target": target,
        "Content-Type": _CONTENT_TYPE,
        "User-Agent": user_agent(),
        "X-Amz-Date": amz_date,
    }
    if frozen.token:
        headers["X-Amz-Security-Token"] = frozen.token
    headers["Authorization"] = sign(
        endpoint=endpoint,
        region=region,
        target=target,
        amz_date=amz_date,
        body=body,
        credentials=frozen,
    )
    headers["Content-Length"] = str(len(body))
    return HttpRequest("POST", endpoint.rstrip("/") + "/", headers, body, operation)


class Service:
    """What coding needs from botocore's model of DynamoDB (or of its Streams API): the
    target prefix, parser, shapes and error classes.

    Built once per client (`Service.of`) or once per process (`Service.default`),
    so modeled errors are instances of the client's own ``client.exceptions`` classes.
    """

    def __init__(self, model: Any, exceptions: Any) -> None:
        from botocore.parsers import create_parser

        self.model = model
        self.exceptions = exceptions
        self.parser = create_parser("json")
        self.target_prefix = f"{model.metadata['targetPrefix']}."
        offered = set(model.operation_names)
        self.members = {
            op: frozenset(model.operation_model(op).output_shape.members)
            for op in LEAN_OPERATIONS | _LEAN_STREAM_OPERATIONS
            if op in offered
        }

    @classmethod
    def of(cls, client: Any) -> Service:
        """The service of a botocore DynamoDB client (its model and exception classes)."""
        return cls(client.meta.service_model, client.exceptions)

    @classmethod
    @functools.cache
    def default(cls, name: str = "dynamodb") -> Service:
        """A process-wide service, for callers without a client (loaded once per name:
        ``"dynamodb"`` or ``"dynamodbstreams"``)."""
        import botocore.session
        from botocore.errorfactory import ClientExceptionsFactory

        model = botocore.session.get_session().get_service_model(name)
        return cls(model, ClientExceptionsFactory().create_client_exceptions(model))


def decode_response(
    operation: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
    *,
    service: Service | None = None,
) -> dict[str, Any]:
    """What botocore's client returns for this answer, or the error it raises.

    Args:
        headers: the answer's headers, names in lower case.

    Raises:
        ChecksumError: ``x-amz-crc32`` does not match the body (retryable, as in botocore).
        ClientError: DynamoDB answered an error (the modeled subclass, e.g.
            ``ConditionalCheckFailedException``), with botocore's ``response``.
        ResponseParserError: a successful answer that is not JSON.
    """
    crc = headers.get("x-amz-crc32")
    if crc is not None and crc.isdigit() and int(crc) != zlib.crc32(body):
        raise ChecksumError(
            checksum_type="crc32", expected_checksum=crc, actual_checksum=str(zlib.crc32(body))
        )
    svc = service or Service.default()
    if status >= 300:
        raise _client_error(svc, operation, status, headers, body)
    members = svc.members.get(operation)
    if members is None:  # the control plane: botocore's parser, timestamps and all
        parsed: dict[str, Any] = svc.parser.parse(
            _response_dict(operation, status, headers, body),
            svc.model.operation_model(operation).output_shape,
        )
        parsed["ResponseMetadata"]["RetryAttempts"] = 0
        return parsed
    try:
        raw = json.loads(body) if body else {}
    except ValueError as err:
        if "x-amzn-requestid" not in headers:  # e.g. a web server's 200 page: not DynamoDB
            raise _client_error(svc, operation, status, headers, body) from err
        raise ResponseParserError(f"{operation}: the answer is not JSON: {_snippet(body)}") from err
    if not isinstance(raw, dict):
        raise ResponseParserError(f"{operation}: the answer is not a JSON object")
    parsed = {k: v for k, v in raw.items() if k in members and v is not None}
    if _may_hold_binaries(body):
        decode_binaries(parsed)
    parsed["ResponseMetadata"] = _metadata(status, headers)
    return parsed


def _may_hold_binaries(body: bytes) -> bool:
    """Whether the answer could hold a ``B``/``BS`` value (a type key ``"B"``/``"BS"``).

    A byte search is far cheaper than walking every attribute of every item, and most
    tables hold no binary values. A string that merely looks like one only costs the walk.
    """
    return _BINARY_TYPE.search(body) is not None


#: ``"B":``, ``"BS":``, ``"B" `` or ``"BS" ``: one pass over the body (four ``in`` tests
#: cost five times as much on a 1 MB page).
_BINARY_TYPE = re.compile(rb'"BS?"[ :]')


def _metadata(status: int, headers: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    request_id = headers.get("x-amzn-requestid")
    if request_id is not None:
        meta["RequestId"] = request_id
    meta["HTTPStatusCode"] = status
    meta["HTTPHeaders"] = headers
    meta["RetryAttempts"] = 0
    return meta


def _response_dict(
    operation: str, status: int, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    return {
        "status_code": status,
        "headers": headers,
        "body": body,
        "context": {"operation_name": operation},
    }


def _client_error(
    svc: Service, operation: str, status: int, headers: dict[str, str], body: bytes
) -> ClientError:
    """The exception botocore's client raises for this error answer.

    A JSON error goes through botocore's parser, modeled fields included (the
    ``CancellationReasons`` of a canceled transaction, the ``Item`` of a failed
    condition). Anything else (an HTML page from a proxy, an empty 503) becomes
    a `ClientError` whose code is the status and whose message is one short line.
    """
    try:
        is_json = isinstance(json.loads(body), dict)
    except ValueError:
        is_json = False
    if is_json:
        response = _response_dict(operation, status, headers, body)
        parsed: dict[str, Any] = svc.parser.parse(
            response, svc.model.operation_model(operation).output_shape
        )
        code = parsed.get("Error", {}).get("Code")
        shape = svc.model.shape_for_error_code(code) if code else None
        if shape is not None:
            parsed.update(svc.parser.parse(response, shape))
    else:
        reason = http.client.responses.get(status, "")
        message = " ".join(filter(None, [reason, _snippet(body)]))
        parsed = {"Error": {"Code": str(status), "Message": message}}
    parsed["ResponseMetadata"] = _metadata(status, headers)
    code = parsed.get("Error", {}).get("Code") or str(status)
    error: ClientError = svc.exceptions.from_code(code)(parsed, operation)
    return error


def _snippet(body: bytes) -> str:
    """The first characters of a body that is not JSON, on one line (tags and all)."""
    text = " ".join(body[: _SHORT * 4].decode("utf-8", "replace").split())
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def decode_binaries(parsed: dict[str, Any]) -> None:
    """Base64-decode in place the ``B``/``BS`` values of every item and key of an answer.

    Covers every data-plane output: ``Item``, ``Items``, ``Attributes``,
    ``LastEvaluatedKey``, batch and transaction ``Responses``, ``UnprocessedKeys``,
    ``UnprocessedItems`` and the ``ItemCollectionKey`` of ``ItemCollectionMetrics``.
    """
    for name in ("Item", "Attributes", "LastEvaluatedKey"):
        if name in parsed:
            _decode_map(parsed[name])
    for item in parsed.get("Items", ()):
        _decode_map(item)
    responses = parsed.get("Responses")
    if isinstance(responses, dict):  # BatchGetItem: table -> items
        for items in responses.values():
            for item in items:
                _decode_map(item)
    elif isinstance(responses, list):  # TransactGetItems: one {"Item": ...} per get
        for entry in responses:
            if entry and "Item" in entry:
                _decode_map(entry["Item"])
    for request in parsed.get("UnprocessedKeys", {}).values():
        for key in request.get("Keys", ()):
            _decode_map(key)
    for requests in parsed.get("UnprocessedItems", {}).values():
        for request in requests:
            if "PutRequest" in request:
                _decode_map(request["PutRequest"]["Item"])
            if "DeleteRequest" in request:
                _decode_map(request["DeleteRequest"]["Key"])
    metrics = parsed.get("ItemCollectionMetrics")
    if isinstance(metrics, dict):
        if "ItemCollectionKey" in metrics:  # a single write
            _decode_map(metrics["ItemCollectionKey"])
        else:  # batch or transaction: table -> list
            for entries in metrics.values():
                for entry in entries:
                    if "ItemCollectionKey" in entry:
                        _decode_map(entry["ItemCollectionKey"])


def _decode_map(item: dict[str, Any]) -> None:
    for value in item.values():
        if "S" not in value and "N" not in value:
            _decode_value(value)


def _decode_value(value: dict[str, Any]) -> None:
    try:
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
    except binascii.Error as err:
        raise ResponseParserError(f"a binary value is not base64: {err}") from err

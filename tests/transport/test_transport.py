"""The lean request path: byte-for-byte botocore's requests, botocore's answers and errors.

Conformance: botocore's client, with SDK retries off as the connection configures
it, is stopped at its ``before-send`` event, so nothing goes on the wire; the
request it would have sent is compared with `encode_request`'s, and the answer
handed back to it is decoded by both. The pool is tested against real servers
(dynalite, the fault proxy, and a tiny local server that lies).
"""

from __future__ import annotations

import http.server
import json
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from portchops_models import ThrottledError, User, UserRepository, configure, errors
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport import HttpPool, Service, Transport, decode_response, encode_request
from portchops_models.transport.connection import current_connection
from tests.conftest import fast_retry

AWS = "https://dynamodb.eu-west-1.amazonaws.com"
LOCAL = "http://127.0.0.1:8123"
#: botocore's retry telemetry, not sent by the lean path (the retries are not botocore's).
SDK_TELEMETRY = {"amz-sdk-invocation-id", "amz-sdk-request"}


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class Botocore:
    """botocore's client, stopped before the wire: records its requests, gets canned answers."""

    def __init__(self, *, endpoint: str | None = None, token: str | None = "session-token") -> None:
        session = botocore.session.Session()
        session.set_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
        self.credentials = session.get_credentials()
        self.client: Any = session.create_client(
            "dynamodb",
            region_name="eu-west-1",
            endpoint_url=endpoint,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=False
            ),
        )
        self.endpoint: str = self.client.meta.endpoint_url
        self.sent: list[Any] = []
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.client.meta.events.register("before-send", self._before_send)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse:
        self.sent.append(request)
        status, headers, body = self.answer
        return AWSResponse(request.url, status, headers, _Body(body))

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client._make_api_call(operation, params)
        return result

    def service(self) -> Service:
        return Service.of(self.client)


def _headers(request: Any) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


def _signed_at(headers: dict[str, str]) -> datetime:
    return datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "get": ("GetItem", {"TableName": "users", "Key": {"userId": {"S": "u-é"}}}),
    "put binary and numbers": (
        "PutItem",
        {
            "TableName": "lessons",
            "Item": {
                "id": {"B": b"\x00\xff\x10"},
                "n": {"N": "-12.500"},
                "ns": {"NS": ["1", "2.5"]},
                "bs": {"BS": [b"\x01", b"\x02"]},
                "m": {"M": {"b": {"B": b"\x03"}, "l": {"L": [{"B": b"\x04"}, {"N": "7"}]}}},
                "text": {"S": "naïve ☃ \U0001f600"},
            },
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": "id"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    "query with names": (
        "Query",
        {
            "TableName": "user-progress",
            "IndexName": "completed-index",
            "KeyConditionExpression": "#u = :u AND begins_with(#l, :p)",
            "ExpressionAttributeNames": {"#u": "userId", "#l": "lessonId", "#name": "name"},
            "ExpressionAttributeValues": {":u": {"S": "u1"}, ":p": {"S": "les"}},
            "ProjectionExpression": "#u, #l, #name",
            "Limit": 25,
            "ScanIndexForward": False,
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    "batch get": (
        "BatchGetItem",
        {
            "RequestItems": {
                "users": {"Keys": [{"userId": {"S": f"u{i}"}} for i in range(3)]},
                "lessons": {"Keys": [{"id": {"B": b"\x01\x02"}}], "ConsistentRead": True},
            }
        },
    ),
    "transact write": (
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "users", "Item": {"userId": {"S": "u1"}}}},
                {
                    "Update": {
                        "TableName": "user-progress",
                        "Key": {"userId": {"S": "u1"}, "lessonId": {"S": "l1"}},
                        "UpdateExpression": "ADD #a :one",
                        "ExpressionAttributeNames": {"#a": "attempts"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": "lessons", "Key": {"id": {"B": b"\xfe"}}}},
            ],
            "ClientRequestToken": "a1b2c3",
        },
    ),
}


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize(
    ("endpoint", "token"), [(None, "session-token"), (LOCAL, None)], ids=["aws+token", "local"]
)
def test_requests_are_botocores_byte_for_byte(name: str, endpoint: str | None, token: str) -> None:
    boto = Botocore(endpoint=endpoint, token=token)
    operation, params = REQUESTS[name]
    boto.call(operation, params)
    theirs = boto.sent[-1]
    expected = _headers(theirs)
    ours = encode_request(
        operation,
        params,
        endpoint=boto.endpoint,
        region="eu-west-1",
        credentials=boto.credentials,
        now=_signed_at(expected),
    )
    assert (ours.method, ours.url) == (theirs.method, theirs.url)
    assert ours.body == theirs.body
    for header in ("User-Agent", *SDK_TELEMETRY):
        expected.pop(header)
    assert ours.headers.pop("User-Agent").startswith("portchops-models/")
    assert ours.headers == expected  # Authorization, X-Amz-Date, token, target, length...
    assert ("X-Amz-Security-Token" in ours.headers) == (token is not None)


def test_no_credentials_is_botocores_error() -> None:
    with pytest.raises(NoCredentialsError):
        encode_request("GetItem", {}, endpoint=AWS, region="eu-west-1", credentials=None)


EVERY_TYPE = {
    "userId": {"S": "every-type"},
    "n": {"N": "-12.500"},
    "b": {"B": "AP9iaW5hcnk="},
    "ss": {"SS": ["a", "b"]},
    "bs": {"BS": ["AQ==", "Ag=="]},
    "m": {"M": {"inner": {"B": "Aw=="}, "l": {"L": [{"B": "BA=="}, {"N": "7"}]}}},
    "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}, {"M": {"b": {"B": "BQ=="}}}]},
}
KEY = {"id": {"B": "AQI="}}
CAPACITY = {"TableName": "t", "CapacityUnits": 0.5}
ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "get": ("GetItem", {"Item": EVERY_TYPE, "ConsumedCapacity": CAPACITY}),
    "get missing": ("GetItem", {}),
    "query": ("Query", {"Items": [EVERY_TYPE, KEY], "Count": 2, "LastEvaluatedKey": KEY}),
    "batch get": (
        "BatchGetItem",
        {"Responses": {"t": [EVERY_TYPE]}, "UnprocessedKeys": {"t": {"Keys": [KEY]}}},
    ),
    "update": (
        "UpdateItem",
        {"Attributes": EVERY_TYPE, "ItemCollectionMetrics": {"ItemCollectionKey": KEY}},
    ),
    "batch write": (
        "BatchWriteItem",
        {
            "UnprocessedItems": {
                "t": [{"PutRequest": {"Item": EVERY_TYPE}}, {"DeleteRequest": {"Key": KEY}}]
            },
            "ItemCollectionMetrics": {"t": [{"ItemCollectionKey": KEY}]},
        },
    ),
    "transact get": ("TransactGetItems", {"Responses": [{"Item": EVERY_TYPE}, {}]}),
    "transact write": ("TransactWriteItems", {"ConsumedCapacity": [CAPACITY]}),
    "describe table (control plane)": (
        "DescribeTable",
        {"Table": {"TableName": "t", "TableStatus": "ACTIVE", "CreationDateTime": 1.7e9}},
    ),
    "unknown member": ("GetItem", {"Item": KEY, "SomethingNew": 1}),
}


def _params_for(operation: str) -> dict[str, Any]:
    """Enough parameters for botocore's endpoint rules (they look at the tables named)."""
    if operation == "BatchWriteItem":
        return {"RequestItems": {"t": [{"DeleteRequest": {"Key": {"id": {"S": "k"}}}}]}}
    if operation == "BatchGetItem":
        return {"RequestItems": {"t": {"Keys": [{"id": {"S": "k"}}]}}}
    if operation.startswith("Transact"):
        verb = "Get" if operation == "TransactGetItems" else "Delete"
        return {"TransactItems": [{verb: {"TableName": "t", "Key": {"id": {"S": "k"}}}}]}
    return {"TableName": "t"}


def _without_retry_bookkeeping(response: dict[str, Any]) -> dict[str, Any]:
    """botocore's answer less ``MaxAttemptsReached``: its retry handler's note, not DynamoDB's."""
    meta = dict(response["ResponseMetadata"])
    meta.pop("MaxAttemptsReached", None)
    return {**response, "ResponseMetadata": meta}


def _answer(status: int, body: bytes, **extra: str) -> tuple[int, dict[str, str], bytes]:
    headers = {
        "x-amzn-requestid": "REQ123",
        "content-type": "application/x-amz-json-1.0",
        "x-amz-crc32": str(zlib.crc32(body)),
        "content-length": str(len(body)),
        **extra,
    }
    return status, headers, body


@pytest.mark.parametrize("name", list(ANSWERS))
def test_answers_decode_as_botocore_parses_them(name: str) -> None:
    boto = Botocore()
    operation, payload = ANSWERS[name]
    boto.answer = _answer(200, json.dumps(payload).encode())
    expected = _without_retry_bookkeeping(boto.call(operation, _params_for(operation)))
    ours = decode_response(operation, *boto.answer, service=boto.service())
    assert ours == expected


ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "throttled": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "Rate exceeded",
        },
    ),
    "condition with item": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": EVERY_TYPE,
        },
    ),
    "transaction canceled": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific"
            " reasons [None, ConditionalCheckFailed]",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Message": "no", "Item": KEY},
            ],
        },
    ),
    "missing table": (
        400,
        {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "x"},
    ),
    "validation": (400, {"__type": "com.amazon.coral.validate#ValidationException"}),
    "server error": (500, {"__type": "com.amazonaws.dynamodb#InternalServerError"}),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_botocores_exceptions_and_classify_alike(name: str) -> None:
    boto = Botocore()
    status, payload = ERRORS[name]
    boto.answer = _answer(status, json.dumps(payload).encode())
    with pytest.raises(ClientError) as theirs:
        boto.call("PutItem", {})
    with pytest.raises(ClientError) as ours:
        decode_response("PutItem", *boto.answer, service=boto.service())
    assert type(ours.value) is type(theirs.value)  # the client's own modeled class
    assert ours.value.response == _without_retry_bookkeeping(dict(theirs.value.response))
    assert str(ours.value) == str(theirs.value).replace(" (reached max retries: 0)", "")
    for probe in (errors.error_code, errors.http_status, errors.is_retryable):
        assert probe(ours.value) == probe(theirs.value)
    assert type(errors.translate(ours.value)) is type(errors.translate(theirs.value))


def test_an_html_page_is_a_short_client_error_and_not_dynamodb() -> None:
    page = b"<!DOCTYPE html><html><head><title>501 Not Implemented</title></head>" + (
        b"<body>" + b"x" * 5000 + b"</body></html>"
    )
    headers = {"content-type": "text/html", "content-length": str(len(page))}
    with pytest.raises(ClientError) as info:
        decode_response("GetItem", 501, headers, page)
    error = info.value.response["Error"]
    assert error["Code"] == "501"
    assert error["Message"].startswith("Not Implemented <!DOCTYPE html>")
    assert len(error["Message"]) < 200
    translated = errors.translate(info.value, table="users", endpoint=LOCAL)
    assert isinstance(translated, errors.NotDynamoDB)
    assert "text/html" in str(translated)


def test_a_200_that_is_not_json_is_a_parser_error_not_a_traceback() -> None:
    dynamodb = {"x-amzn-requestid": "R1"}  # DynamoDB's answer, garbled
    with pytest.raises(Exception, match="not JSON") as info:
        decode_response("GetItem", 200, dynamodb, b"<html>hello</html>")
    assert isinstance(errors.translate(info.value), errors.ServiceError)


def test_a_200_page_without_a_request_id_is_not_dynamodb() -> None:
    page = {"content-type": "text/html"}
    with pytest.raises(ClientError) as info:
        decode_response("GetItem", 200, page, b"<html>hello</html>")
    assert isinstance(errors.translate(info.value, endpoint=LOCAL), errors.NotDynamoDB)


def test_a_crc32_mismatch_is_a_retryable_checksum_error() -> None:
    body = json.dumps({"Item": KEY}).encode()
    with pytest.raises(ChecksumError) as info:
        decode_response("GetItem", 200, {"x-amz-crc32": str(zlib.crc32(body) ^ 1)}, body)
    assert errors.is_retryable(info.value)
    assert decode_response("GetItem", 200, {"x-amz-crc32": str(zlib.crc32(body))}, body)["Item"]


# ------------------------------------------------------------------ the body codec, any value

_LEAF = st.one_of(
    st.builds(lambda s: {"S": s}, st.text()),
    st.builds(lambda n: {"N": str(n)}, st.integers() | st.decimals(allow_nan=False, places=3)),
    st.builds(lambda b: {"B": b}, st.binary()),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(), min_size=1, max_size=4)),
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(), min_size=1, max_size=4)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: (
        st.builds(lambda m: {"M": m}, st.dictionaries(st.text(), inner, max_size=4))
        | st.builds(lambda items: {"L": items}, st.lists(inner, max_size=4))
    ),
    max_leaves=12,
)
_ITEM = st.dictionaries(st.text(min_size=1), _VALUE, min_size=1, max_size=6)
_SERIALIZER = Botocore()


@settings(max_examples=150, deadline=None)
@given(item=_ITEM)
def test_body_codec_round_trips_and_matches_botocores_serializer(item: dict[str, Any]) -> None:
    params = {"TableName": "t", "Item": item}
    request = encode_request(
        "PutItem", params, endpoint=LOCAL, region="eu-west-1", credentials=_SERIALIZER.credentials
    )
    _SERIALIZER.call("PutItem", params)
    assert request.body == _SERIALIZER.sent[-1].body
    echoed = json.dumps({"Item": json.loads(request.body)["Item"]}).encode()
    assert decode_response("GetItem", 200, {}, echoed)["Item"] == item


# ------------------------------------------------------------------ the pool, on real servers


class _Lying(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: list[tuple[int, dict[str, str], bytes]]
    seen: list[bytes]

    def do_POST(self) -> None:
        self.seen.append(self.rfile.read(int(self.headers["Content-Length"])))
        status, headers, body = self.answers.pop(0) if self.answers else _answer(200, b"{}")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def liar() -> Iterator[tuple[str, type[_Lying]]]:
    """A tiny local HTTP/1.1 server answering what the test puts in ``answers``."""
    handler = type("Handler", (_Lying,), {"answers": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_a_lying_server_is_caught_by_the_crc_and_the_call_retried(
    liar: tuple[str, type[_Lying]],
) -> None:
    url, handler = liar
    body = json.dumps({"Item": {"userId": {"S": "u1"}, "name": {"S": "Ada"}}}).encode()
    honest = _answer(200, body)
    lie = (200, {**honest[1], "x-amz-crc32": str(zlib.crc32(body) ^ 0xFF)}, body)
    handler.answers.extend([lie, lie, honest])
    configure(endpoint_url=url)
    conn = current_connection()
    with pytest.raises(ChecksumError):
        conn.call("GetItem", {"TableName": "users", "Key": {"userId": {"S": "u1"}}})
    answer = conn.send("GetItem", {"TableName": "users"}, table="users", retry=fast_retry())
    assert answer["Item"]["name"] == {"S": "Ada"}
    assert len(handler.seen) == 3


def test_connections_are_kept_alive_and_reused(any_tables: Settings) -> None:
    conn = current_connection()
    repo = UserRepository(cache=None)
    repo.save(User(user_id="u1", email="a@example.com", name="Ada"))
    for _ in range(30):
        assert repo.get("u1").name == "Ada"
    if current_engine(conn) == "dynalite":  # moto closes every connection after its answer
        assert conn.transport.pool.opened == 1


def current_engine(conn: Any) -> str:
    """'dynalite' when the engine keeps connections alive (moto closes every one)."""
    probe = HttpPool(conn.transport.endpoint, maxsize=1, connect_timeout=2, read_timeout=5)
    request = conn.transport.encode("ListTables", {})
    _, headers, _ = probe.send(request)
    probe.close()
    return "moto" if headers.get("connection", "").lower() == "close" else "dynalite"


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    liar: tuple[str, type[_Lying]],
) -> None:
    url, handler = liar
    closing = _answer(200, b"{}", connection="close")
    handler.answers.extend([_answer(200, b"{}"), closing, _answer(200, b"{}")])
    pool = HttpPool(url, maxsize=2, connect_timeout=2, read_timeout=5)
    request = encode_request(
        "ListTables", {}, endpoint=url, region="us-east-1", credentials=Botocore().credentials
    )
    for _ in range(3):
        status, _, _ = pool.send(request)
        assert status == 200
    assert pool.opened == 2  # one kept alive for two requests, then a fresh one
    pool.close()


def test_connection_failures_are_botocores_exceptions(proxy: FaultProxy) -> None:
    conn = current_connection()
    key = {"TableName": proxy_table(), "Key": {"userId": {"S": "u1"}}}
    proxy.faults = Faults(drop=1.0)
    with pytest.raises(ConnectionClosedError):
        conn.call("GetItem", key)
    proxy.faults = Faults(hang=1.0)
    short = Transport(
        endpoint=proxy.endpoint_url,
        region="us-east-1",
        credentials=conn.transport.credentials,
        connect_timeout=1,
        read_timeout=0.2,
        max_connections=1,
    )
    with pytest.raises(ReadTimeoutError):
        short.call("GetItem", key)
    short.close()
    proxy.faults = Faults()
    assert "Item" not in conn.call("GetItem", key)


def proxy_table() -> str:
    return current_connection().settings.table_name("users")


def test_an_endpoint_that_is_not_listening_never_answered() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EndpointConnectionError):
        current_connection().call("ListTables", {})
    with pytest.raises(ThrottledError) as info:  # EndpointUnreachable, after the retries
        UserRepository(cache=None, retry=fast_retry(max_attempts=2)).get("u1")
    assert isinstance(info.value, errors.EndpointUnreachable)


def test_through_an_http_proxy_calls_go_through_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    configure(Settings(endpoint_url=None, region="eu-west-1"))
    transport = current_connection().transport
    assert transport.fallback is not None
    assert transport.endpoint == "https://dynamodb.eu-west-1.amazonaws.com"


# ------------------------------------------------------------------ deadlines and relayed errors


def test_under_a_deadline_the_pool_reads_a_trickling_answer_by_it_as_a_whole(
    proxy: FaultProxy,
) -> None:
    import time

    from portchops_models.transport import deadline

    conn = current_connection()
    pool = HttpPool(proxy.endpoint_url, maxsize=1, connect_timeout=2, read_timeout=5)
    key = {"userId": {"S": "u1"}}
    request = conn.transport.encode("GetItem", {"TableName": proxy_table(), "Key": key})
    for faults in (Faults(trickle_headers=0.05), Faults(trickle_body=0.05)):
        proxy.faults = faults
        start = time.monotonic()
        with deadline.bounded(0.5), pytest.raises(ReadTimeoutError):
            pool.send(request)  # each byte within read_timeout: only the deadline ends it
        assert 0.45 <= time.monotonic() - start <= 0.6
    proxy.faults = Faults(trickle_body=0.0005, trickle_body_length=300)
    with deadline.bounded(5.0):
        status, _, body = pool.send(request)  # slow, but whole within the deadline
    assert status == 200
    assert len(body) == 300
    pool.close()


def test_connecting_gets_the_time_left_not_the_connect_timeout() -> None:
    import time

    from botocore.exceptions import ConnectTimeoutError

    from portchops_models.testing.faultproxy import DroppedSyns
    from portchops_models.transport import deadline

    with DroppedSyns() as silent:
        pool = HttpPool(silent.endpoint_url, maxsize=1, connect_timeout=10, read_timeout=5)
        request = encode_request(
            "ListTables",
            {},
            endpoint=silent.endpoint_url,
            region="us-east-1",
            credentials=Botocore().credentials,
        )
        start = time.monotonic()
        with deadline.bounded(0.3), pytest.raises(ConnectTimeoutError):
            pool.send(request)
        assert 0.25 <= time.monotonic() - start <= 0.45
        with deadline.bounded(0.3):
            time.sleep(0.31)
            with pytest.raises(ConnectTimeoutError):  # past the deadline: no connect at all
                pool.send(request)
        assert pool.opened == 0


def test_an_html_503_is_relayed_once_the_endpoint_answered_as_dynamodb(
    liar: tuple[str, type[_Lying]],
) -> None:
    url, handler = liar
    page = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    sidecar = (503, {"content-type": "text/html", "content-length": str(len(page))}, page)
    handler.answers.extend([sidecar, _answer(200, b"{}"), sidecar])
    configure(endpoint_url=url)
    conn = current_connection()
    key = {"TableName": "users", "Key": {"userId": {"S": "u1"}}}
    with pytest.raises(ClientError) as never:  # first answer: not DynamoDB's
        conn.call("GetItem", key)
    assert not errors.relayed(never.value)
    assert isinstance(errors.translate(never.value, endpoint=url), errors.NotDynamoDB)
    assert not conn.transport.answered
    conn.call("GetItem", key)  # DynamoDB's answer (a request id)
    assert conn.transport.answered
    with pytest.raises(ClientError) as later:
        conn.call("GetItem", key)
    err = later.value
    assert errors.relayed(err)
    assert errors.not_dynamodb(err) is None
    assert errors.is_retryable(err)
    failure = errors.translate(err, table="users", endpoint=url)
    assert isinstance(failure, errors.ThrottledError)
    assert "HTTP 503 without a request id (text/html)" in str(failure)
    gave_up = errors.gave_up(err, table="users", attempts=8, reason="attempts exhausted")
    assert "last error: HTTP 503 without a request id" in str(gave_up)


def test_a_relayed_4xx_page_is_a_service_error_naming_its_status() -> None:
    page = b"<html>403 Forbidden</html>"
    with pytest.raises(ClientError) as info:
        decode_response("GetItem", 403, {"content-type": "text/html"}, page)
    info.value.response["ResponseMetadata"][errors.RELAYED] = True  # as the transport marks it
    assert not errors.is_retryable(info.value)
    failure = errors.translate(info.value, table="users")
    assert type(failure) is errors.ServiceError
    assert "HTTP 403 without a request id (text/html)" in str(failure)

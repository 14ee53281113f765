"""The fault-injecting proxy in front of the embedded engine (and a keep-alive fake)."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import time
import uuid
import zlib

import botocore.config
import botocore.session
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from portchops_models.models import User
from portchops_models.testing.engine import LocalEngine
from portchops_models.testing.faultproxy import FaultProxy, Faults, ProxyStats, SeenRequest
from portchops_models.transport.connection import current_connection

pytestmark = pytest.mark.timeout(120)


def make_client(endpoint_url, **config):
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, **config),
    )


class Recorder:
    """Keeps the raw HTTP responses a botocore client received."""

    def __init__(self, client):
        self.responses = []
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def _after_call(self, http_response, **kwargs):
        self.responses.append(http_response)

    @property
    def last(self):
        return self.responses[-1]


@pytest.fixture(scope="module")
def engine():
    with LocalEngine() as running:
        yield running


@pytest.fixture(scope="module")
def direct(engine):
    """A client that talks to the engine without the proxy."""
    client = make_client(engine.endpoint_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def table(direct):
    name = f"faultproxy-{uuid.uuid4().hex[:8]}"
    direct.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, 100, 25):
        direct.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": item(f"get-{i:03d}", i)}}
                    for i in range(start, start + 25)
                ]
            }
        )
    yield name
    direct.delete_table(TableName=name)


def item(pk, n):
    return {"pk": {"S": pk}, "n": {"N": str(n)}, "payload": {"S": "x" * 50}}


GET_KEYS = [{"pk": {"S": f"get-{i:03d}"}} for i in range(100)]


@pytest.fixture
def make_proxy(engine):
    proxies = []

    def make(faults=None, *, seed=1, upstream=None):
        proxy = FaultProxy(
            upstream=upstream or engine.endpoint_url, faults=faults, seed=seed
        ).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def clients():
    made = []

    def make(endpoint_url, **config):
        client = make_client(endpoint_url, **config)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


# -- pass-through -------------------------------------------------------------


def test_pass_through_round_trip_is_byte_identical(make_proxy, clients, direct, table):
    proxy = make_proxy()
    client = clients(proxy.endpoint_url)
    via_proxy = Recorder(client)
    straight = Recorder(direct)
    client.put_item(TableName=table, Item=item("pass-1", 1))

    got = client.get_item(TableName=table, Key={"pk": {"S": "pass-1"}}, ConsistentRead=True)
    direct.get_item(TableName=table, Key={"pk": {"S": "pass-1"}}, ConsistentRead=True)
    assert got["Item"] == item("pass-1", 1)
    assert via_proxy.last.content == straight.last.content
    proxied_headers, direct_headers = via_proxy.last.headers, straight.last.headers
    assert proxied_headers["x-amz-crc32"] == direct_headers["x-amz-crc32"]
    assert proxied_headers["content-type"] == direct_headers["content-type"]
    assert proxied_headers["content-length"] == str(len(via_proxy.last.content))

    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "pass-1"}},
    }
    assert client.query(**query)["Items"] == [item("pass-1", 1)]
    direct.query(**query)
    assert via_proxy.last.content == straight.last.content

    stats = proxy.stats
    assert stats.requests == stats.forwarded == 3
    assert stats.by_operation == {"PutItem": 1, "GetItem": 1, "Query": 1}
    assert stats.forwarded_by_operation == stats.by_operation
    assert stats.throttled == stats.server_errors == stats.dropped == stats.upstream_errors == 0
    assert stats.bytes_to_client == sum(len(r.content) for r in via_proxy.responses)


def test_stats_is_a_frozen_snapshot_and_reset(make_proxy, clients):
    proxy = make_proxy()
    client = clients(proxy.endpoint_url)
    client.list_tables()
    snapshot = proxy.stats
    client.list_tables()
    assert isinstance(snapshot, ProxyStats)
    assert snapshot.requests == 1
    assert proxy.stats.requests == 2
    with pytest.raises(AttributeError):
        snapshot.requests = 5  # type: ignore[misc]

    proxy.reset_stats()
    stats = proxy.stats
    assert stats.requests == stats.forwarded == stats.bytes_to_client == 0
    assert stats.by_operation == {}
    assert stats.connections_opened == 0
    assert stats.open_connections == stats.peak_connections == 1  # the client's live connection


# -- errors answered by the proxy ---------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
def test_throttle_answers_without_forwarding(make_proxy, clients, table, code):
    proxy = make_proxy(Faults(throttle=1.0, throttle_code=code))
    client = clients(proxy.endpoint_url)

    with pytest.raises(ClientError) as excinfo:
        client.get_item(TableName=table, Key={"pk": {"S": "get-000"}})

    assert error_code(excinfo) == code
    assert http_status(excinfo) == 400
    headers = excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amzn-requestid"]
    assert headers["x-amz-crc32"]
    stats = proxy.stats
    assert stats.requests == stats.throttled == 1
    assert stats.forwarded == 0
    assert stats.forwarded_by_operation == {}
    assert stats.by_operation == {"GetItem": 1}


def test_self_answered_responses_carry_a_valid_crc32(make_proxy):
    proxy = make_proxy(Faults(throttle=1.0))
    conn = http.client.HTTPConnection(proxy.host, proxy.port)
    conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"})
    response = conn.getresponse()
    body = response.read()
    conn.close()

    assert response.status == 400
    assert int(response.getheader("x-amz-crc32")) == zlib.crc32(body)
    assert int(response.getheader("Content-Length")) == len(body)
    assert response.getheader("Content-Type") == "application/x-amz-json-1.0"
    assert response.getheader("x-amzn-RequestId")
    assert json.loads(body)["__type"] == (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    )
    assert proxy.stats.bytes_to_client == len(body)


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_server_error_answers_without_forwarding(make_proxy, clients, table, status, code):
    proxy = make_proxy(Faults(server_error=1.0, server_error_status=status))
    client = clients(proxy.endpoint_url)

    with pytest.raises(ClientError) as excinfo:
        client.get_item(TableName=table, Key={"pk": {"S": "get-000"}})

    assert error_code(excinfo) == code
    assert http_status(excinfo) == status
    stats = proxy.stats
    assert stats.requests == stats.server_errors == 1
    assert stats.forwarded == 0


def test_drop_closes_the_connection_without_an_answer(make_proxy, clients, table):
    proxy = make_proxy(Faults(drop=1.0))
    client = clients(proxy.endpoint_url)

    with pytest.raises(ConnectionClosedError):
        client.get_item(TableName=table, Key={"pk": {"S": "get-000"}})

    stats = proxy.stats
    assert stats.requests == stats.dropped == 1
    assert stats.forwarded == stats.bytes_to_client == 0

    proxy.faults = Faults()  # the client recovers on a fresh connection
    assert client.get_item(TableName=table, Key={"pk": {"S": "get-000"}})["Item"]["n"] == {"N": "0"}
    assert proxy.stats.connections_opened == 2


def test_faults_can_be_swapped_at_runtime(make_proxy, clients):
    proxy = make_proxy()
    client = clients(proxy.endpoint_url)
    client.list_tables()

    proxy.faults = Faults(throttle=1.0)
    assert proxy.faults == Faults(throttle=1.0)
    with pytest.raises(ClientError):
        client.list_tables()

    proxy.faults = Faults()
    client.list_tables()
    stats = proxy.stats
    assert (stats.requests, stats.forwarded, stats.throttled) == (3, 2, 1)


def test_operations_filter_limits_faults(make_proxy, clients, table):
    proxy = make_proxy(Faults(throttle=1.0, operations=frozenset({"BatchWriteItem"})))
    client = clients(proxy.endpoint_url)

    assert client.get_item(TableName=table, Key={"pk": {"S": "get-001"}})["Item"]
    with pytest.raises(ClientError) as excinfo:
        client.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": item("filter-1", 1)}}]}
        )

    assert error_code(excinfo) == "ProvisionedThroughputExceededException"
    stats = proxy.stats
    assert stats.by_operation == {"GetItem": 1, "BatchWriteItem": 1}
    assert stats.forwarded_by_operation == {"GetItem": 1}
    assert stats.throttled == 1


def test_latency_is_applied_and_requests_still_forwarded(make_proxy, clients):
    proxy = make_proxy(Faults(latency=0.002, latency_jitter=0.002))
    client = clients(proxy.endpoint_url)
    for _ in range(5):
        client.list_tables()
    assert proxy.stats.forwarded == 5


def test_faults_are_validated():
    with pytest.raises(ValueError, match="within"):
        Faults(throttle=1.5)
    with pytest.raises(ValueError, match="<= 1"):
        Faults(throttle=0.6, server_error=0.6)
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="500 or 503"):
        Faults(server_error_status=404)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="within"):
        Faults(hang=-0.1)
    with pytest.raises(ValueError, match="within"):
        Faults(lost_answer=2.0)
    with pytest.raises(ValueError, match="<= 1"):
        Faults(lost_answer=0.5, hang=0.3, drop=0.3)
    assert Faults(lost_answer=0.5, hang=0.5).draws_outcomes
    assert not Faults(latency=1.0, unprocessed=1.0).draws_outcomes
    assert Faults(operations=frozenset({"GetItem"})).applies_to("GetItem")
    assert not Faults(operations=frozenset({"GetItem"})).applies_to("PutItem")
    assert not Faults().applies_to("")


# -- partial batches ----------------------------------------------------------


def batch_get_request(table, keys):
    return {
        table: {
            "Keys": keys,
            "ProjectionExpression": "#pk, #n",
            "ExpressionAttributeNames": {"#pk": "pk", "#n": "n"},
            "ConsistentRead": True,
        }
    }


def test_batch_get_unprocessed_keys_lose_and_duplicate_nothing(make_proxy, clients, table):
    proxy = make_proxy(Faults(unprocessed=0.5), seed=1)
    client = clients(proxy.endpoint_url)
    recorder = Recorder(client)

    # A ChecksumError would be raised here had the proxy not fixed x-amz-crc32.
    response = client.batch_get_item(RequestItems=batch_get_request(table, GET_KEYS))

    returned = [i["pk"]["S"] for i in response["Responses"][table]]
    unprocessed = response["UnprocessedKeys"][table]
    left = [k["pk"]["S"] for k in unprocessed["Keys"]]
    requested = [k["pk"]["S"] for k in GET_KEYS]
    assert 0 < len(left) < 100
    assert len(returned) + len(left) == 100
    assert sorted(returned + left) == requested
    assert all(set(i) == {"pk", "n"} for i in response["Responses"][table])
    assert unprocessed["ProjectionExpression"] == "#pk, #n"
    assert unprocessed["ExpressionAttributeNames"] == {"#pk": "pk", "#n": "n"}
    assert unprocessed["ConsistentRead"] is True

    raw = recorder.last
    assert int(raw.headers["x-amz-crc32"]) == zlib.crc32(raw.content)
    assert int(raw.headers["content-length"]) == len(raw.content)
    stats = proxy.stats
    assert stats.unprocessed_keys == len(left)
    assert stats.forwarded == 1
    assert stats.bytes_to_client == len(raw.content)


def test_batch_get_retrying_unprocessed_keys_reads_everything_once(make_proxy, clients, table):
    proxy = make_proxy(Faults(unprocessed=0.5), seed=3)
    client = clients(proxy.endpoint_url)

    seen = []
    moved = 0
    request = batch_get_request(table, GET_KEYS)
    for _ in range(60):
        response = client.batch_get_item(RequestItems=request)
        seen.extend(i["pk"]["S"] for i in response["Responses"].get(table, []))
        request = response["UnprocessedKeys"]
        if not request:
            break
        moved += len(request[table]["Keys"])
    else:
        pytest.fail("unprocessed keys never drained")

    assert sorted(seen) == [k["pk"]["S"] for k in GET_KEYS]
    assert proxy.stats.unprocessed_keys == moved > 0


def test_batch_get_all_keys_unprocessed_forwards_nothing(make_proxy, clients, table):
    proxy = make_proxy(Faults(unprocessed=1.0))
    client = clients(proxy.endpoint_url)

    response = client.batch_get_item(
        RequestItems=batch_get_request(table, GET_KEYS[:10]), ReturnConsumedCapacity="TOTAL"
    )

    assert response["Responses"] == {table: []}
    assert response["UnprocessedKeys"] == batch_get_request(table, GET_KEYS[:10])
    assert response["ConsumedCapacity"] == []
    stats = proxy.stats
    assert stats.forwarded == 0
    assert stats.unprocessed_keys == 10


def test_batch_get_same_seed_same_draws(make_proxy, clients, table):
    def unprocessed_with(seed):
        proxy = make_proxy(Faults(unprocessed=0.3), seed=seed)
        client = clients(proxy.endpoint_url)
        response = client.batch_get_item(RequestItems=batch_get_request(table, GET_KEYS))
        return [k["pk"]["S"] for k in response["UnprocessedKeys"][table]["Keys"]]

    assert unprocessed_with(7) == unprocessed_with(7)


def test_batch_write_unprocessed_items_plus_stored_equal_the_request(
    make_proxy, clients, direct, table
):
    proxy = make_proxy(Faults(unprocessed=0.5), seed=1)
    client = clients(proxy.endpoint_url)
    requests = [{"PutRequest": {"Item": item(f"write-{i:02d}", i)}} for i in range(25)]

    response = client.batch_write_item(RequestItems={table: requests})

    unprocessed = response["UnprocessedItems"][table]
    left = {r["PutRequest"]["Item"]["pk"]["S"] for r in unprocessed}
    assert 0 < len(left) < 25
    assert unprocessed == [r for r in requests if r["PutRequest"]["Item"]["pk"]["S"] in left]
    stored = direct.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": r["PutRequest"]["Item"]["pk"]} for r in requests]}}
    )["Responses"][table]
    stored_pks = {i["pk"]["S"] for i in stored}
    assert stored_pks.isdisjoint(left)
    assert stored_pks | left == {f"write-{i:02d}" for i in range(25)}
    stats = proxy.stats
    assert stats.unprocessed_items == len(left)
    assert stats.unprocessed_keys == 0
    assert stats.forwarded_by_operation == {"BatchWriteItem": 1}


def test_batch_write_all_unprocessed_writes_nothing(make_proxy, clients, direct, table):
    proxy = make_proxy(Faults(unprocessed=1.0))
    client = clients(proxy.endpoint_url)
    requests = [{"PutRequest": {"Item": item(f"never-{i}", i)}} for i in range(3)]

    response = client.batch_write_item(RequestItems={table: requests})

    assert response["UnprocessedItems"] == {table: requests}
    assert proxy.stats.forwarded == 0
    assert "Item" not in direct.get_item(TableName=table, Key={"pk": {"S": "never-0"}})


def test_oversized_batches_are_forwarded_whole(make_proxy, engine, table):
    proxy = make_proxy(Faults(unprocessed=1.0))
    body = json.dumps(
        {"RequestItems": batch_get_request(table, [*GET_KEYS, {"pk": {"S": "get-extra"}}])}
    ).encode()
    conn = http.client.HTTPConnection(proxy.host, proxy.port)
    conn.request("POST", "/", body=body, headers={"X-Amz-Target": "DynamoDB_20120810.BatchGetItem"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert proxy.stats.forwarded == 1
    assert proxy.stats.unprocessed_keys == 0


# -- connections --------------------------------------------------------------


def test_client_connection_is_kept_alive_though_moto_closes_upstream(make_proxy, clients, engine):
    conn = http.client.HTTPConnection(engine.host, engine.port)
    conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"})
    upstream = conn.getresponse()
    upstream.read()
    conn.close()
    assert upstream.getheader("Connection") == "close"

    proxy = make_proxy()
    client = clients(proxy.endpoint_url)
    for _ in range(20):
        client.list_tables()

    stats = proxy.stats
    assert stats.forwarded == 20
    assert stats.connections_opened == 1
    assert stats.open_connections == 1
    assert stats.peak_connections == 1


def test_peak_connections_counts_concurrent_clients(make_proxy, clients):
    proxy = make_proxy()
    count = 5
    botos = [clients(proxy.endpoint_url) for _ in range(count)]
    barrier = threading.Barrier(count)
    errors = []

    def call(client):
        try:
            barrier.wait()
            client.list_tables()
            barrier.wait()  # every connection is open before anyone goes on
            client.list_tables()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(c,)) for c in botos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stats = proxy.stats
    assert stats.forwarded == 2 * count
    assert stats.connections_opened == count
    assert stats.peak_connections == count
    assert stats.open_connections == count


def test_stop_releases_the_port_and_ends_threads(engine, clients):
    proxy = FaultProxy(upstream=engine.endpoint_url)
    with proxy:
        client = clients(proxy.endpoint_url)
        client.list_tables()  # leaves a kept-alive connection for stop() to close
        port = proxy.port
        assert proxy.running
        assert any(t.name.startswith(f"faultproxy-{port}-") for t in threading.enumerate())
    proxy.stop()  # idempotent

    assert not proxy.running
    assert not [t for t in threading.enumerate() if t.name.startswith(f"faultproxy-{port}-")]
    with pytest.raises(RuntimeError):
        _ = proxy.endpoint_url
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()

    proxy.start()  # restartable, on a fresh free port
    try:
        assert clients(proxy.endpoint_url).list_tables()["TableNames"] is not None
    finally:
        proxy.stop()


def test_unreachable_upstream_answers_502(make_proxy, clients):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # bound, never listening: connections are refused
        proxy = make_proxy(upstream=f"http://127.0.0.1:{dead_port}")
        client = clients(proxy.endpoint_url)
        with pytest.raises(ClientError) as excinfo:
            client.list_tables()
    assert http_status(excinfo) == 502
    stats = proxy.stats
    assert stats.upstream_errors == 1
    assert stats.forwarded == 0


def test_upstream_must_be_an_http_url():
    with pytest.raises(ValueError, match="http"):
        FaultProxy(upstream="https://dynamodb.us-east-1.amazonaws.com")
    with pytest.raises(ValueError, match="path"):
        FaultProxy(upstream="http://127.0.0.1:8000/prefix")


# -- a keep-alive upstream, like dynalite -------------------------------------


class EchoUpstream:
    """A keep-alive HTTP/1.1 server that echoes requests and counts connections.

    After ``close_after`` responses on one connection it closes it without
    saying so (no ``Connection: close``), like an idle timeout would.
    """

    def __init__(self, close_after=0, reply=None):
        self.connections = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1

            def setup(self):
                super().setup()
                self.served = 0
                with owner.lock:
                    owner.connections += 1

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                echo = {"headers": list(self.headers.items()), "body": body.decode("latin-1")}
                answer = json.dumps(reply(json.loads(body)) if reply else echo).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("X-Upstream-Header", "Kept")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.served += 1
                if close_after and self.served >= close_after:
                    self.close_connection = True

            def log_message(self, format, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def post(conn, body, headers):
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def test_headers_and_body_are_forwarded_unchanged(make_proxy):
    with EchoUpstream() as upstream:
        proxy = make_proxy(upstream=upstream.url)
        conn = http.client.HTTPConnection(proxy.host, proxy.port)
        body = json.dumps({"TableName": "t", "Key": {"pk": {"S": "é"}}}).encode()
        headers = {
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "X-Custom-Header": "Some Value",
            "Authorization": "AWS4-HMAC-SHA256 Credential=x",
        }
        response, raw = post(conn, body, headers)
        conn.request(
            "POST",
            "/",
            body=iter([body[:5], body[5:]]),
            headers={**headers, "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        chunked = conn.getresponse()
        chunked_raw = chunked.read()
        conn.close()

    echoed = json.loads(raw)
    received = dict(echoed["headers"])
    assert echoed["body"].encode("latin-1") == body
    assert received["X-Custom-Header"] == "Some Value"
    assert received["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert received["Authorization"] == "AWS4-HMAC-SHA256 Credential=x"
    assert received["Host"] == f"{proxy.host}:{proxy.port}"
    assert received["Content-Length"] == str(len(body))
    assert response.getheader("X-Upstream-Header") == "Kept"
    assert json.loads(chunked_raw)["body"].encode("latin-1") == body
    assert chunked.status == 200
    assert proxy.stats.forwarded == 2


def test_keep_alive_upstream_connection_is_reused(make_proxy):
    with EchoUpstream() as upstream:
        proxy = make_proxy(upstream=upstream.url)
        conn = http.client.HTTPConnection(proxy.host, proxy.port)
        for _ in range(10):
            response, _ = post(conn, b"{}", {"X-Amz-Target": "DynamoDB_20120810.ListTables"})
            assert response.status == 200
        conn.close()
        assert upstream.connections == 1
    assert proxy.stats.connections_opened == 1
    assert proxy.stats.forwarded == 10


def test_upstream_closing_idle_connections_is_retried(make_proxy):
    with EchoUpstream(close_after=3) as upstream:
        proxy = make_proxy(upstream=upstream.url)
        conn = http.client.HTTPConnection(proxy.host, proxy.port)
        for _ in range(7):
            response, raw = post(conn, b"{}", {"X-Amz-Target": "DynamoDB_20120810.ListTables"})
            assert response.status == 200
            assert json.loads(raw)["body"] == "{}"
        conn.close()
        assert upstream.connections == 3
    stats = proxy.stats
    assert stats.forwarded == 7
    assert stats.upstream_errors == 0
    assert stats.connections_opened == 1


def test_unprocessed_merge_with_what_the_engine_left(make_proxy):
    engine_left_item = {"PutRequest": {"Item": {"pk": {"S": "engine"}}}}
    engine_left_key = {"pk": {"S": "engine"}}
    forwarded = []

    def reply(payload):
        forwarded.append(payload)
        if "Keys" in next(iter(payload["RequestItems"].values())):  # BatchGetItem
            return {
                "Responses": {"t": []},
                "UnprocessedKeys": {"t": {"Keys": [engine_left_key], "ConsistentRead": True}},
            }
        return {"UnprocessedItems": {"t": [engine_left_item]}}

    writes = [{"PutRequest": {"Item": {"pk": {"S": f"w{i}"}}}} for i in range(10)]
    keys = [{"pk": {"S": f"k{i}"}} for i in range(10)]
    with EchoUpstream(reply=reply) as upstream:
        proxy = make_proxy(Faults(unprocessed=0.5), seed=2, upstream=upstream.url)
        conn = http.client.HTTPConnection(proxy.host, proxy.port)
        _, raw_write = post(
            conn,
            json.dumps({"RequestItems": {"t": writes}}).encode(),
            {"X-Amz-Target": "DynamoDB_20120810.BatchWriteItem"},
        )
        response, raw_get = post(
            conn,
            json.dumps({"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}}).encode(),
            {"X-Amz-Target": "DynamoDB_20120810.BatchGetItem"},
        )
        conn.close()

    sent_writes = forwarded[0]["RequestItems"]["t"]
    left_writes = json.loads(raw_write)["UnprocessedItems"]["t"]
    assert left_writes[0] == engine_left_item
    assert sorted(map(json.dumps, sent_writes + left_writes[1:])) == sorted(map(json.dumps, writes))
    assert 0 < len(sent_writes) < 10

    sent_keys = forwarded[1]["RequestItems"]["t"]["Keys"]
    left = json.loads(raw_get)["UnprocessedKeys"]["t"]
    assert left["ConsistentRead"] is True
    assert left["Keys"][0] == engine_left_key
    assert sorted(map(json.dumps, sent_keys + left["Keys"][1:])) == sorted(map(json.dumps, keys))
    assert int(response.getheader("x-amz-crc32")) == zlib.crc32(raw_get)
    stats = proxy.stats
    assert stats.unprocessed_items == len(left_writes) - 1
    assert stats.unprocessed_keys == len(left["Keys"]) - 1


# -- lost answers -------------------------------------------------------------


def test_lost_answer_stores_the_write_then_resets_the_connection(
    make_proxy, clients, direct, table
):
    proxy = make_proxy(Faults(lost_answer=1.0, operations=frozenset({"PutItem"})))
    client = clients(proxy.endpoint_url)

    with pytest.raises(ConnectionClosedError):
        client.put_item(TableName=table, Item=item("lost-1", 1))

    key = {"pk": {"S": "lost-1"}}
    assert direct.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == item(
        "lost-1", 1
    )
    stats = proxy.stats
    assert stats.requests == stats.forwarded == stats.lost_answers == 1
    assert stats.forwarded_by_operation == {"PutItem": 1}
    assert stats.dropped == stats.bytes_to_client == 0

    # Only PutItem loses its answers: the same client reads through the proxy.
    assert client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"] == {"N": "1"}
    stats = proxy.stats
    assert stats.lost_answers == 1
    assert stats.by_operation == stats.forwarded_by_operation == {"PutItem": 1, "GetItem": 1}
    assert stats.connections_opened == 2  # the reset connection was not reused


def test_lost_answer_through_the_library_connection(proxy: FaultProxy, moto_engine, clients):
    proxy.faults = Faults(lost_answer=1.0, operations=frozenset({"PutItem"}))
    table = User.table_name()
    stored = {"userId": {"S": "u-lost"}, "email": {"S": "lost@example.com"}, "name": {"S": "L"}}
    conn = current_connection()

    with pytest.raises(ConnectionClosedError):
        conn.call("PutItem", {"TableName": table, "Item": stored})

    key = {"userId": {"S": "u-lost"}}
    direct = clients(moto_engine.endpoint_url)
    assert direct.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == stored
    through = conn.call("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    assert through["Item"] == stored
    stats = proxy.stats
    assert stats.lost_answers == 1
    assert stats.forwarded_by_operation == {"PutItem": 1, "GetItem": 1}


def test_every_lost_answer_was_a_stored_write(make_proxy, clients, direct, table):
    proxy = make_proxy(Faults(lost_answer=0.5), seed=4)
    client = clients(proxy.endpoint_url)
    lost = []
    for i in range(20):
        try:
            client.put_item(TableName=table, Item=item(f"half-{i:02d}", i))
        except ConnectionClosedError:
            lost.append(True)
        else:
            lost.append(False)

    keys = [{"pk": {"S": f"half-{i:02d}"}} for i in range(20)]
    stored = direct.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
    assert len(stored["Responses"][table]) == 20
    assert 0 < sum(lost) < 20
    stats = proxy.stats
    assert stats.lost_answers == sum(lost)
    assert stats.forwarded == 20
    assert [seen.fault == "lost_answer" for seen in proxy.seen] == lost


def test_lost_answer_batches_are_forwarded_whole(make_proxy, clients, direct, table):
    proxy = make_proxy(Faults(lost_answer=1.0, unprocessed=1.0))
    client = clients(proxy.endpoint_url)
    requests = [{"PutRequest": {"Item": item(f"lost-batch-{i}", i)}} for i in range(5)]

    with pytest.raises(ConnectionClosedError):
        client.batch_write_item(RequestItems={table: requests})

    keys = [{"pk": r["PutRequest"]["Item"]["pk"]} for r in requests]
    stored = direct.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
    assert len(stored["Responses"][table]) == 5
    stats = proxy.stats
    assert stats.lost_answers == 1
    assert stats.unprocessed_items == 0


# -- hangs --------------------------------------------------------------------


def proxy_threads(port):
    return [t for t in threading.enumerate() if t.name.startswith(f"faultproxy-{port}-")]


def test_hang_sends_nothing_until_the_client_gives_up(make_proxy, clients, table):
    proxy = make_proxy(Faults(hang=1.0, operations=frozenset({"GetItem"})))
    client = clients(proxy.endpoint_url, read_timeout=0.5, connect_timeout=5)

    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.get_item(TableName=table, Key={"pk": {"S": "get-000"}})
    waited = time.monotonic() - started

    assert 0.45 <= waited < 2.0  # the client's own read timeout, not an answer
    # The client closed the timed-out connection: the proxy's thread for it ends.
    hung_thread = [t for t in proxy_threads(proxy.port) if t.name.endswith("-conn-1")]
    for thread in hung_thread:
        thread.join(timeout=10)
        assert not thread.is_alive()
    stats = proxy.stats
    assert stats.requests == stats.hung == 1
    assert stats.forwarded == stats.bytes_to_client == 0
    assert stats.open_connections == 0

    # Other operations are answered meanwhile.
    assert client.list_tables()["TableNames"] is not None
    assert proxy.stats.hung == 1
    assert [seen.fault for seen in proxy.seen] == ["hang", None]


def test_stop_closes_hung_connections_and_ends_every_thread(engine):
    request = (
        b"POST / HTTP/1.1\r\nHost: proxy\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
        b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"
    )
    proxy = FaultProxy(upstream=engine.endpoint_url, faults=Faults(hang=1.0)).start()
    port = proxy.port
    socks = [socket.create_connection((proxy.host, port), timeout=0.5) for _ in range(3)]
    try:
        for sock in socks:
            sock.sendall(request)
        for sock in socks:
            with pytest.raises(TimeoutError):
                sock.recv(1)  # no answer, no close

        stopper = threading.Thread(target=proxy.__exit__, args=(None, None, None))
        started = time.monotonic()
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
        assert time.monotonic() - started < 2.0
        assert proxy_threads(port) == []
        for sock in socks:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # closed by the proxy, without a byte
    finally:
        for sock in socks:
            sock.close()
        proxy.stop()
    stats = proxy.stats
    assert stats.requests == stats.hung == 3
    assert stats.forwarded == 0
    assert stats.open_connections == 0


# -- the request log ----------------------------------------------------------


def test_seen_records_every_request_in_order(make_proxy, clients, table):
    proxy = make_proxy(Faults(throttle=1.0, operations=frozenset({"GetItem"})))
    client = clients(proxy.endpoint_url)
    client.list_tables()
    client.put_item(TableName=table, Item=item("seen-1", 1))
    with pytest.raises(ClientError):
        client.get_item(TableName=table, Key={"pk": {"S": "seen-1"}})

    seen = proxy.seen
    assert [r.operation for r in seen] == ["ListTables", "PutItem", "GetItem"]
    assert [r.fault for r in seen] == [None, None, "throttle"]
    put = seen[1]
    assert isinstance(put, SeenRequest)
    assert put.method == "POST"
    assert put.target == "/"
    assert put.header("x-amz-target") == "DynamoDB_20120810.PutItem"
    assert put.payload == {"TableName": table, "Item": item("seen-1", 1)}
    assert json.loads(put.body) == put.payload
    assert put.header("no-such-header") is None

    client.list_tables()
    assert len(seen) == 3  # a snapshot
    assert len(proxy.seen) == 4
    proxy.reset_stats()
    assert proxy.seen == ()


def test_seen_keeps_the_original_batch_and_the_transaction_token(
    make_proxy, clients, direct, table
):
    proxy = make_proxy(Faults(unprocessed=1.0, operations=frozenset({"BatchWriteItem"})))
    client = clients(proxy.endpoint_url)
    requests = [{"PutRequest": {"Item": item(f"seen-batch-{i}", i)}} for i in range(3)]
    client.batch_write_item(RequestItems={table: requests})

    proxy.faults = Faults(lost_answer=1.0, operations=frozenset({"TransactWriteItems"}))
    with pytest.raises(ConnectionClosedError):
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": item("seen-tx", 1)}}]
        )

    batch, transaction = proxy.seen
    assert batch.fault == "unprocessed"
    assert batch.payload == {"RequestItems": {table: requests}}  # as sent, not as forwarded
    assert transaction.fault == "lost_answer"
    token = transaction.payload["ClientRequestToken"]  # botocore's idempotency token
    assert isinstance(token, str)
    assert len(token) > 0
    assert "Item" in direct.get_item(TableName=table, Key={"pk": {"S": "seen-tx"}})


def test_seen_is_bounded(engine, clients):
    with pytest.raises(ValueError, match="request log"):
        FaultProxy(upstream=engine.endpoint_url, request_log_size=-1)
    with FaultProxy(upstream=engine.endpoint_url, request_log_size=3) as proxy:
        client = clients(proxy.endpoint_url)
        for limit in range(1, 6):
            client.list_tables(Limit=limit)
        assert [r.payload for r in proxy.seen] == [{"Limit": 3}, {"Limit": 4}, {"Limit": 5}]
    with FaultProxy(upstream=engine.endpoint_url, request_log_size=0) as proxy:
        clients(proxy.endpoint_url).list_tables()
        assert proxy.seen == ()
        assert proxy.stats.requests == 1


# -- slow answers, a sidecar's pages, dropped SYNs ------------------------------

#: A ListTables moto routes to DynamoDB (by the credential scope of its Authorization).
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=x"
)
LIST_TABLES = (
    b"POST / HTTP/1.1\r\nHost: proxy\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
    b"Authorization: " + AUTHORIZATION.encode() + b"\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"
)


def read_answer(sock):
    """Read one whole answer from a raw socket: each recv's size, the head, the body."""
    sizes, data = [], b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-head"
        sizes.append(len(chunk))
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return sizes, head.decode("latin-1"), body


def test_trickled_headers_come_a_byte_at_a_time_after_the_engine_answered(make_proxy):
    proxy = make_proxy(Faults(trickle_headers=0.002))
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(LIST_TABLES)
        sizes, head, body = read_answer(sock)
        took = time.monotonic() - started
    assert sizes[0] == 1  # the status line's first byte, alone
    assert len(sizes) > 20
    assert took >= 0.002 * (len(head) - 1) * 0.8
    assert head.startswith("HTTP/1.1 200 ")
    assert "TableNames" in json.loads(body)
    stats = proxy.stats
    assert (stats.trickled, stats.forwarded) == (1, 1)
    assert [seen.fault for seen in proxy.seen] == ["trickle"]


def test_a_trickled_body_is_the_answer_padded_to_its_declared_length(make_proxy):
    proxy = make_proxy(Faults(trickle_body=0.001, trickle_body_length=600))
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    started = time.monotonic()
    headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Authorization": AUTHORIZATION}
    # One name at most: the answer stays short of 600 bytes whatever tables other tests
    # on the shared engine hold meanwhile.
    conn.request("POST", "/", body=b'{"Limit": 1}', headers=headers)
    response = conn.getresponse()
    head_at = time.monotonic() - started
    body = response.read()
    took = time.monotonic() - started
    conn.close()
    assert response.status == 200
    assert int(response.getheader("Content-Length")) == len(body) == 600
    assert int(response.getheader("x-amz-crc32")) == zlib.crc32(body)
    assert response.getheader("x-amzn-RequestId")
    assert "TableNames" in json.loads(body)  # JSON whitespace pads it
    assert head_at < 0.3 < 0.6 * 0.8 <= took
    assert proxy.stats.trickled == 1
    assert proxy.stats.bytes_to_client == 600


def test_stop_ends_a_trickling_answer_at_once(engine):
    proxy = FaultProxy(upstream=engine.endpoint_url, faults=Faults(trickle_body=5.0)).start()
    port = proxy.port
    with socket.create_connection((proxy.host, port), timeout=10) as sock:
        sock.sendall(LIST_TABLES)
        assert sock.recv(1) == b"H"  # the head came at once: the body trickles
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 2.0
        assert proxy_threads(port) == []


def test_every_nth_request_is_a_sidecars_html_page_without_a_request_id(make_proxy, clients):
    proxy = make_proxy(Faults(html_error_every=3))
    client = clients(proxy.endpoint_url)
    failed = []
    for _ in range(9):
        try:
            client.list_tables()
        except ClientError as err:
            failed.append(err.response)
    assert len(failed) == 3
    for response in failed:
        meta = response["ResponseMetadata"]
        assert meta["HTTPStatusCode"] == 503
        assert "x-amzn-requestid" not in {name.lower() for name in meta["HTTPHeaders"]}
        assert meta["HTTPHeaders"]["content-type"] == "text/html"
    stats = proxy.stats
    assert (stats.html_errors, stats.forwarded, stats.requests) == (3, 6, 9)
    assert [seen.fault for seen in proxy.seen] == [None, None, "html_error"] * 3

    proxy.faults = Faults(html_error_every=2, html_error_status=502)  # the count restarts
    assert client.list_tables()["TableNames"] is not None
    with pytest.raises(ClientError) as info:
        client.list_tables()
    assert http_status(info) == 502


def test_the_new_faults_are_validated():
    with pytest.raises(ValueError, match="trickle"):
        Faults(trickle_headers=-1)
    with pytest.raises(ValueError, match="trickle_body_length"):
        Faults(trickle_body=0.1, trickle_body_length=0)
    with pytest.raises(ValueError, match="html_error_every"):
        Faults(html_error_every=-1)
    with pytest.raises(ValueError, match="5xx"):
        Faults(html_error_every=2, html_error_status=404)
    assert Faults(trickle_body=0.1).trickles
    assert not Faults(html_error_every=3).draws_outcomes


def test_dropped_syns_never_complete_a_connection():
    from portchops_models.testing.faultproxy import DroppedSyns

    with DroppedSyns() as silent:
        assert silent.endpoint_url == f"http://127.0.0.1:{silent.port}"
        started = time.monotonic()
        for _ in range(2):
            with pytest.raises(TimeoutError):
                socket.create_connection((silent.host, silent.port), timeout=0.2)
        assert 0.35 <= time.monotonic() - started < 1.5
    with pytest.raises(ConnectionRefusedError):  # stopped: the port is closed
        socket.create_connection((silent.host, silent.port), timeout=0.5)
    with pytest.raises(RuntimeError, match="not started"):
        _ = silent.endpoint_url

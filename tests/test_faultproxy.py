"""The fault-injecting proxy in front of the embedded engine (and a keep-alive fake)."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import uuid
import zlib

import botocore.config
import botocore.session
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from portchops_models.testing.engine import LocalEngine
from portchops_models.testing.faultproxy import FaultProxy, Faults, ProxyStats

pytestmark = pytest.mark.timeout(120)


def make_client(endpoint_url):
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
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

    def make(endpoint_url):
        client = make_client(endpoint_url)
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

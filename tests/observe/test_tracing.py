"""OpenTelemetry spans, read back from the SDK's in-memory exporter, for both APIs.

A span per public call (INTERNAL), a child span per DynamoDB request (CLIENT) with
the semantic-convention attributes; retries as events, give-ups as error status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from portchops_models import ThrottledError, Transaction, TransactionCanceled, User, UserRepository
from portchops_models.observe import tracing
from portchops_models.settings import Settings
from portchops_models.testing.faultproxy import FaultProxy, Faults
from tests.conftest import fast_retry
from tests.observability_kit import SECRET_ID, Api, seed, throttle_always, throttle_once


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of this test only, kept in memory (the global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    yield exporter
    tracing.use_tracer_provider(None)
    provider.shutdown()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Api:
    return Api(request.param)


def _by_kind(exporter: InMemorySpanExporter) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """(call spans, request spans), each in the order they ended."""
    finished = list(exporter.get_finished_spans())
    calls = [s for s in finished if s.kind is SpanKind.INTERNAL]
    requests = [s for s in finished if s.kind is SpanKind.CLIENT]
    return calls, requests


def _child_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None
    assert parent.context is not None
    return child.parent.span_id == parent.context.span_id


def _no_values(exporter: InMemorySpanExporter) -> None:
    """No span carries a key value, in an attribute, an event or a status."""
    for span in exporter.get_finished_spans():
        text = json.dumps(
            [
                dict(span.attributes or {}),
                [dict(e.attributes or {}) for e in span.events],
                span.status.description,
            ],
            default=str,
        )
        assert SECRET_ID not in text, span.name


def test_a_get_is_a_call_span_over_a_getitem_span(
    tables: Settings, spans: InMemorySpanExporter, api: Api
) -> None:
    seed(1)
    users = api.users()
    spans.clear()
    assert api.run(lambda: users.get(SECRET_ID)).user_id == SECRET_ID
    (call,), (request,) = _by_kind(spans)
    table = f"{tables.table_prefix}users"
    assert call.name == f"{api.repository}.get"
    assert call.attributes is not None
    assert request.attributes is not None
    assert call.attributes["db.system.name"] == "aws.dynamodb"
    assert call.attributes["db.collection.name"] == table
    assert call.attributes["portchops.cache.misses"] == 1
    assert call.attributes["portchops.cache.hits"] == 0
    assert call.attributes["portchops.requests"] == 1
    assert request.name == f"GetItem {table}"
    assert _child_of(request, call)
    assert request.attributes["db.system.name"] == "aws.dynamodb"
    assert request.attributes["db.operation.name"] == "GetItem"
    assert request.attributes["db.collection.name"] == table
    assert request.attributes["aws.dynamodb.table_names"] == (table,)
    assert request.attributes["portchops.attempts"] == 1
    (capacity,) = request.attributes["aws.dynamodb.consumed_capacity"]
    assert isinstance(capacity, str)
    assert json.loads(capacity)["TableName"] == table
    assert request.status.status_code is StatusCode.UNSET

    spans.clear()  # the second get is a cache hit: no span at all (ops/hits.py), no request
    hits = users.metrics.snapshot()["cache_hits"]
    api.run(lambda: users.get(SECRET_ID))
    assert _by_kind(spans) == ([], [])
    assert users.metrics.snapshot()["cache_hits"] == hits + 1  # counted in the metrics
    spans.clear()  # a consistent get bypasses the cache: a call span over its request
    api.run(lambda: users.get(SECRET_ID, consistent=True))
    (call,), (request,) = _by_kind(spans)
    assert call.attributes is not None
    assert call.attributes["portchops.requests"] == 1
    assert "portchops.cache.hits" not in call.attributes  # no cache lookup made
    assert _child_of(request, call)
    _no_values(spans)


def test_a_batch_get_has_a_span_per_chunk_with_its_size(
    tables: Settings, spans: InMemorySpanExporter, api: Api
) -> None:
    ids = seed(150)
    users = api.users(cache=None)
    spans.clear()
    assert len(api.run(lambda: users.batch_get(ids))) == 150
    (call,), requests = _by_kind(spans)
    assert call.name == f"{api.repository}.batch_get"
    assert sorted(r.attributes["db.operation.batch.size"] for r in requests if r.attributes) == [
        50,
        100,
    ]
    for request in requests:  # the sync API sends chunks on other threads: still children
        assert request.name == f"BatchGetItem {tables.table_prefix}users"
        assert _child_of(request, call)
    _no_values(spans)


def test_a_retried_call_carries_a_retry_event(
    proxy: FaultProxy, spans: InMemorySpanExporter, api: Api
) -> None:
    seed(1)
    users = api.users(cache=None, retry=throttle_once(proxy))
    spans.clear()
    api.run(lambda: users.get(SECRET_ID))
    (call,), (request,) = _by_kind(spans)
    assert request.attributes is not None
    assert call.attributes is not None
    assert request.attributes["portchops.attempts"] == 2
    assert request.attributes["portchops.throttles"] == 1
    (event,) = request.events
    assert event.name == "retry"
    assert event.attributes is not None
    assert event.attributes["attempt"] == 1
    assert event.attributes["error.type"] == "ProvisionedThroughputExceededException"
    assert request.status.status_code is StatusCode.UNSET
    assert call.attributes["portchops.retries"] == 1


def test_a_give_up_is_an_error_on_both_spans(
    proxy: FaultProxy, spans: InMemorySpanExporter, api: Api
) -> None:
    users = api.users(cache=None, retry=throttle_always(proxy, attempts=3))
    with pytest.raises(ThrottledError):
        api.run(lambda: users.get(SECRET_ID))
    (call,), (request,) = _by_kind(spans)
    assert _child_of(request, call)
    for span in (call, request):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes is not None
        assert span.attributes["error.type"] == "ThrottledError"
        assert span.attributes["aws.error_code"] == "ProvisionedThroughputExceededException"
    assert request.attributes is not None
    assert request.attributes["portchops.attempts"] == 3
    assert [e.name for e in request.events] == ["retry", "retry"]
    _no_values(spans)


def test_batch_rounds_without_progress_are_events_then_an_error(
    proxy: FaultProxy, spans: InMemorySpanExporter
) -> None:
    ids = seed(10)
    users = UserRepository(cache=None, retry=fast_retry(max_attempts=3))
    proxy.faults = Faults(unprocessed=1.0, operations=frozenset({"BatchGetItem"}))
    spans.clear()
    with pytest.raises(ThrottledError):
        users.batch_get(ids)
    (call,), requests = _by_kind(spans)
    assert call.status.status_code is StatusCode.ERROR
    assert [e.name for e in call.events] == ["batch_retry", "batch_retry"]
    assert [e.attributes["outstanding"] for e in call.events if e.attributes] == [10, 10]
    assert len(requests) == 3
    assert all(r.attributes and r.attributes["portchops.unprocessed"] == 10 for r in requests)


def test_a_transaction_names_its_tables_size_and_cancellation_codes(
    tables: Settings, spans: InMemorySpanExporter
) -> None:
    tx = Transaction()
    tx.save(User(user_id="u1", email="u1@example.com", name="N"))
    tx.check(User, "nobody", User.user_id.exists())
    with pytest.raises(TransactionCanceled):
        tx.commit()
    (call,), (request,) = _by_kind(spans)
    codes = ("None", "ConditionalCheckFailed")
    assert call.name == "Transaction.commit"
    assert call.attributes is not None
    assert request.attributes is not None
    assert call.attributes["portchops.transaction.size"] == 2
    assert call.attributes["portchops.transaction.cancellation_codes"] == codes
    assert request.name == f"TransactWriteItems {tables.table_prefix}users"
    assert request.attributes["db.operation.batch.size"] == 2
    assert request.attributes["portchops.transaction.cancellation_codes"] == codes
    assert request.status.status_code is StatusCode.ERROR


def test_a_parallel_scan_runs_its_pages_under_the_callers_span(
    tables: Settings, spans: InMemorySpanExporter
) -> None:
    users = UserRepository(cache=None)
    users.batch_save([User(user_id=f"u{i}", email="a@x.io", name="A") for i in range(30)])
    spans.clear()
    provider = TracerProvider()  # the app's own span around the loop
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("export") as outer:
        assert len(list(users.scan(segments=3))) == 30
    assert outer.context is not None
    pages = [s for s in spans.get_finished_spans() if s.name == "UserRepository.scan"]
    assert len(pages) >= 3  # one call span per page, from three segment threads
    assert all(p.parent is not None and p.parent.span_id == outer.context.span_id for p in pages)


def test_no_span_without_a_provider(tables: Settings) -> None:
    assert tracing.tracer() is None  # the global provider is the API's no-op proxy
    seed(1)
    assert UserRepository().get(SECRET_ID).user_id == SECRET_ID


def _child(tables: Settings, script: str) -> str:
    env = {
        **os.environ,
        "PORTCHOPS_ENDPOINT_URL": str(tables.endpoint_url),
        "PORTCHOPS_TABLE_PREFIX": tables.table_prefix,
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_opentelemetry_installed_calls_work(tables: Settings) -> None:
    seed(1)
    out = _child(
        tables,
        f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        from portchops_models import UserRepository
        from portchops_models.observe import tracing
        print(UserRepository().get({SECRET_ID!r}).user_id, tracing.tracer())
        """,
    )
    assert out == f"{SECRET_ID} None"


def test_the_global_tracer_provider_is_used(tables: Settings) -> None:
    seed(1)
    out = _child(
        tables,
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from portchops_models import UserRepository
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        UserRepository().get({SECRET_ID!r})
        print(sorted(s.name.split()[0] for s in exporter.get_finished_spans()))
        """,
    )
    assert out == "['GetItem', 'UserRepository.get']"


def test_each_stream_batch_is_a_span_and_a_failing_handler_marks_it(
    tables: Settings, spans: InMemorySpanExporter
) -> None:
    from portchops_models import UserProgress, UserProgressRepository
    from portchops_models.streams import Change, StreamWorker, enable_stream

    enable_stream(UserProgress)
    UserProgressRepository(cache=None).record_attempt("u1", "l1", 50)

    def refuse(changes: list[Change[UserProgress]]) -> None:
        raise LookupError("no index")

    with pytest.raises(LookupError):
        StreamWorker(UserProgress, refuse, name="spans").run(until_idle=True)
    handled = [s for s in spans.get_finished_spans() if s.name == "StreamWorker.handle"]
    assert len(handled) == 1
    assert handled[0].status.status_code is StatusCode.ERROR
    assert handled[0].attributes is not None
    assert handled[0].attributes["error.type"] == "LookupError"
    assert handled[0].attributes["db.collection.name"] == UserProgress.table_name()

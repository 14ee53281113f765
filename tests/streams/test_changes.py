"""Stream records read from moto's Streams API (over HTTP) decode into typed changes.

The layer's repositories and a raw botocore client write the tables; the records
are read back from the engine's stream with botocore's ``dynamodbstreams`` client
(in the Lambda event's shape: ``{"Records": [...]}``) and decoded with
`changes_from_event`. dynalite has no Streams API, so these run on moto only.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portchops_models import (
    ConfigurationError,
    InvalidRequest,
    User,
    UserProgress,
    UserProgressRepository,
    UserRepository,
)
from portchops_models.settings import Settings
from portchops_models.streams import Change, changes_from_event, enable_stream
from portchops_models.testing.engine import DynaliteEngine
from portchops_models.testing.plugin import configured_tables
from portchops_models.transport.connection import current_connection

pytestmark = pytest.mark.timeout(120)


def _client(settings: Settings, service: str) -> Any:
    return botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def stream_event(settings: Settings, arn: str) -> dict[str, Any]:
    """Every record of the stream so far, as a Lambda event (the engine's own records)."""
    streams = _client(settings, "dynamodbstreams")
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it)
            records.extend(page["Records"])
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return {"Records": records}


def test_enable_stream_is_idempotent_and_refuses_another_view(tables: Settings) -> None:
    arn = enable_stream(UserProgress)
    assert arn.startswith("arn:aws:dynamodb:")
    assert UserProgress.table_name() in arn
    assert enable_stream(UserProgress) == arn
    with pytest.raises(InvalidRequest, match="NEW_AND_OLD_IMAGES"):
        enable_stream(UserProgress, "KEYS_ONLY")
    with pytest.raises(InvalidRequest, match="stream view"):
        enable_stream(UserProgress, "EVERYTHING")
    described = current_connection().call("DescribeTable", {"TableName": UserProgress.table_name()})
    assert described["Table"]["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_an_engine_without_streams_says_so(dynalite_engine: DynaliteEngine) -> None:
    with (
        configured_tables(dynalite_engine.endpoint_url, (UserProgress,)),
        pytest.raises(ConfigurationError, match="no DynamoDB Streams"),
    ):
        enable_stream(UserProgress)


def test_inserts_modifies_and_removes_decode_with_their_types(tables: Settings) -> None:
    arn = enable_stream(UserProgress)
    progress = UserProgressRepository(cache=None)
    # A PutItem first: moto streams an UpdateItem that creates an item as two INSERTs
    # (the bare key, then the item), where DynamoDB streams one.
    progress.save(UserProgress(user_id="u1", lesson_id="l1", attempts=1, score=40))
    progress.record_attempt("u1", "l1", 95)  # completes the lesson
    progress.delete(("u1", "l1"))

    changes = changes_from_event(stream_event(tables, arn), UserProgress)

    assert [c.kind for c in changes] == ["insert", "modify", "remove"]
    assert all(c.key == ("u1", "l1") for c in changes)
    insert, modify, remove = changes
    assert insert.old is None
    assert insert.new is not None
    assert insert.new.attempts == 1
    assert insert.new.score == 40
    assert modify.old is not None
    assert modify.new is not None
    assert (modify.old.attempts, modify.new.attempts) == (1, 2)
    assert modify.new.status == "completed"
    assert isinstance(modify.new.completed_at, datetime)
    assert modify.new.completed_at.tzinfo is not None
    assert isinstance(modify.new.ttl, datetime)
    assert remove.new is None
    assert remove.old is not None
    assert remove.old.attempts == 2
    assert not any(c.expired for c in changes)
    numbers = [int(c.sequence_number) for c in changes]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3
    assert all(c.created_at is not None for c in changes)
    for change in changes:  # the exactly-once markers never reach a model
        for image in (change.old, change.new):
            if image is not None:
                assert not any(name.startswith("_pcw_") for name in image.attribute_values)
    # The records carried the layer's markers: the engine saw them, the models did not.
    raw = stream_event(tables, arn)["Records"][1]["dynamodb"]["NewImage"]
    assert any(name.startswith("_pcw_") for name in raw)


def test_a_raw_botocore_write_decodes_like_one_of_the_layer(tables: Settings) -> None:
    arn = enable_stream(User)
    UserRepository(cache=None).create(User(user_id="u1", name="Ada", email="ada@example.com"))
    _client(tables, "dynamodb").update_item(
        TableName=User.table_name(),
        Key={"userId": {"S": "u1"}},
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "Ada L."}},
    )
    insert, modify = changes_from_event(stream_event(tables, arn), User)
    assert insert.kind == "insert"
    assert modify.kind == "modify"
    assert insert.key == modify.key == "u1"
    assert modify.old is not None
    assert modify.new is not None
    assert (modify.old.name, modify.new.name) == ("Ada", "Ada L.")
    assert modify.new.email == "ada@example.com"


def test_a_ttl_deletion_is_flagged_expired(tables: Settings) -> None:
    arn = enable_stream(UserProgress)
    progress = UserProgressRepository(cache=None)
    progress.save(UserProgress(user_id="u1", lesson_id="l1"))
    progress.delete(("u1", "l1"))
    event = stream_event(tables, arn)
    # moto does not sweep expired items; DynamoDB's TTL deletion is this same record
    # with the service as its author.
    removal = copy.deepcopy(event["Records"][-1])
    removal["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    (change,) = changes_from_event({"Records": [removal]}, UserProgress)
    assert change.kind == "remove"
    assert change.expired
    removal["userIdentity"] = {"type": "Service", "principalId": "someone-else"}
    assert not changes_from_event({"Records": [removal]}, UserProgress)[0].expired


def test_keys_only_records_carry_no_images(tables: Settings) -> None:
    arn = enable_stream(User, "KEYS_ONLY")
    UserRepository(cache=None).create(User(user_id="u9", name="Bo", email="bo@example.com"))
    (change,) = changes_from_event(stream_event(tables, arn), User)
    assert change == Change(
        "insert", "u9", None, None, False, change.sequence_number, change.created_at
    )


# ---------------------------------------------------------------- pure decoding


def _record(kind: str, keys: dict[str, Any], **images: Any) -> dict[str, Any]:
    return {"eventName": kind, "dynamodb": {"Keys": keys, "SequenceNumber": "1", **images}}


@settings(max_examples=200, deadline=None)
@given(
    user=st.text(min_size=1, max_size=20),
    lesson=st.text(min_size=1, max_size=20),
    attempts=st.integers(min_value=0, max_value=10**9),
    score=st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_an_image_decodes_to_the_model_that_was_serialised(
    user: str, lesson: str, attempts: int, score: Decimal, when: datetime
) -> None:
    row = UserProgress(
        user_id=user, lesson_id=lesson, attempts=attempts, score=score, completed_at=when
    )
    image = row.serialize()
    keys = {"userId": image["userId"], "lessonId": image["lessonId"]}
    (change,) = changes_from_event(
        {"Records": [_record("INSERT", keys, NewImage=image)]}, UserProgress
    )
    assert change.key == (user, lesson)
    assert change.new is not None
    assert change.new.attribute_values == UserProgress.from_raw_data(image).attribute_values


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    record=st.fixed_dictionaries(
        {
            "eventName": st.sampled_from(["INSERT", "MODIFY", "REMOVE", "OTHER"]) | junk,
            "dynamodb": st.fixed_dictionaries(
                {},
                optional={
                    "Keys": junk
                    | st.just({"userId": {"S": "u"}, "lessonId": {"S": "l"}})
                    | st.just({"userId": {"N": "x"}}),
                    "NewImage": junk,
                    "OldImage": junk,
                    "SequenceNumber": junk,
                },
            )
            | junk,
        }
    )
    | junk
)
def test_bad_records_are_invalid_requests_never_raw_errors(record: Any) -> None:
    outcome: object
    try:
        outcome = changes_from_event({"Records": [record]}, UserProgress)
    except InvalidRequest as err:
        outcome = str(err)
    if isinstance(outcome, str):
        assert "UserProgress stream record 0" in outcome
    else:
        assert isinstance(outcome, list)
        assert [c.key for c in outcome] == [("u", "l")]


@pytest.mark.parametrize("event", [None, {}, {"Records": {}}, {"Records": "x"}, [1, 2]])
def test_an_event_without_a_records_list_is_refused(event: Any) -> None:
    with pytest.raises(InvalidRequest, match="Records"):
        changes_from_event(event, UserProgress)


def test_changes_are_decoded_for_models_only() -> None:
    with pytest.raises(InvalidRequest, match="BaseModel"):
        changes_from_event({"Records": []}, dict)  # type: ignore[type-var]

"""Client-side field encryption on moto over HTTP, behind the fault proxy.

`Member` (tests/member_model.py) encrypts its email and name and finds members by email
through a blind index; `logins` is a plain counter.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute

from portchops_models import Transaction, read_transaction
from portchops_models.admin.encryption import reencrypt
from portchops_models.errors import ConfigurationError, InvalidRequest
from portchops_models.models import BaseModel
from portchops_models.models.encryption import (
    DESCRIPTION_ATTRIBUTE,
    SIGNATURE_ATTRIBUTE,
    BlindIndex,
    DecryptionFailed,
    encryption_of,
)
from portchops_models.models.keyring import keyring_of
from portchops_models.models.shape import shape_of
from portchops_models.settings import Settings, configure, current_settings
from portchops_models.streams import changes_from_event
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.faultproxy import FaultProxy
from portchops_models.transport.connection import current_connection
from tests.member_model import Member, MemberRepository

LOOKUP = "lookup-key-for-tests-0123"
ZERO_KEY = base64.b64encode(bytes(32)).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def members(proxy: FaultProxy) -> Iterator[MemberRepository]:
    """The members table on moto behind the proxy, with a local key `k1`."""
    configure(current_settings(), encryption_keys=f"k1={new_key()}", encryption_lookup_key=LOOKUP)
    create_table(Member)
    yield MemberRepository(cache=None)
    delete_table(Member.table_name())


def raw_item(member_id: str) -> dict[str, Any]:
    answer = current_connection().call(
        "GetItem", {"TableName": Member.table_name(), "Key": {"memberId": {"S": member_id}}}
    )
    item: dict[str, Any] = answer["Item"]
    return item


def put_raw(item: dict[str, Any]) -> None:
    current_connection().call("PutItem", {"TableName": Member.table_name(), "Item": item})


def ada() -> Member:
    return Member(member_id="m1", email="Ada@Example.com", name="Ada Lovelace")


def test_the_table_and_the_wire_hold_ciphertext_and_the_repository_plaintext(
    proxy: FaultProxy, members: MemberRepository
) -> None:
    before = len(proxy.seen)
    members.save(ada())
    sent = b"".join(r.body for r in proxy.seen[before:])
    assert b"Ada@Example.com" not in sent
    assert b"Lovelace" not in sent

    raw = raw_item("m1")
    assert set(raw["email"]) == {"B"}
    assert set(raw["name"]) == {"B"}
    assert SIGNATURE_ATTRIBUTE in raw
    assert DESCRIPTION_ATTRIBUTE in raw
    assert raw["memberId"] == {"S": "m1"}  # keys stay readable (and signed)
    assert raw["logins"] == {"N": "0"}  # so do attributes not declared encrypted

    got = members.get("m1")
    assert (got.email, got.name, got.logins) == ("Ada@Example.com", "Ada Lovelace", 0)
    assert [m.name for m in members.batch_get(["m1"])] == ["Ada Lovelace"]
    assert [m.email for m in members.scan()] == ["Ada@Example.com"]
    pair = read_transaction((Member, "m1"))
    assert pair[0] is not None
    assert pair[0].email == "Ada@Example.com"


def test_the_blind_index_finds_by_email_and_follows_a_change(members: MemberRepository) -> None:
    members.save(ada())
    members.save(Member(member_id="m2", email="bob@example.com", name="Bob"))
    found = members.get_by_email("  ada@EXAMPLE.com ")
    assert found is not None
    assert found.member_id == "m1"
    assert members.get_by_email("eve@example.com") is None

    moved = members.get("m1")
    moved.email = "ada@lovelace.org"
    members.save(moved)
    assert members.get_by_email("Ada@Example.com") is None
    again = members.get_by_email("ADA@lovelace.org")
    assert again is not None
    assert again.member_id == "m1"
    lookup = raw_item("m1")["emailLookup"]["S"]
    assert "lovelace" not in lookup
    assert len(lookup) == 43  # base64 of an HMAC-SHA256


def test_updates_keep_the_signature_or_are_refused_before_the_wire(
    proxy: FaultProxy, members: MemberRepository
) -> None:
    members.save(ada())
    assert members.update("m1", [Member.logins.add(1)]).logins == 1  # unsigned: in place
    assert members.get("m1").logins == 1  # and the item still opens

    before = len(proxy.seen)
    refused = [
        lambda: members.update("m1", [Member.email.set("x@y.z")]),
        lambda: members.update("m1", [Member.email_lookup.set("forged")]),
        lambda: members.update("m1", [Member.name.remove()]),
        lambda: members.query("m1", filter_condition=Member.name == "Ada Lovelace"),
        lambda: members.save(ada(), condition=Member.email == "Ada@Example.com"),
        lambda: members.delete("m1", condition=Member.name.exists()),
    ]
    for call in refused:
        with pytest.raises(InvalidRequest, match="encrypted"):
            call()
    with pytest.raises(InvalidRequest, match="encrypted"), Transaction() as tx:
        tx.update(Member, "m1", [Member.name.set("Eve")])
    assert len(proxy.seen) == before  # nothing was sent

    with Transaction() as tx:  # a whole item in a transaction is sealed like a save
        tx.save(Member(member_id="m3", email="cy@example.com", name="Cy"))
        tx.update(Member, "m1", [Member.logins.add(1)])
    assert members.get("m3").name == "Cy"
    assert set(raw_item("m3")["name"]) == {"B"}
    assert members.get("m1").logins == 2


@pytest.mark.parametrize("attack", ["ciphertext", "signature", "stripped", "swapped", "key"])
def test_an_altered_item_is_a_typed_error(members: MemberRepository, attack: str) -> None:
    members.save(ada())
    members.save(Member(member_id="m2", email="bob@example.com", name="Bob"))
    raw, other = raw_item("m1"), raw_item("m2")
    if attack == "ciphertext":
        data = bytearray(raw["email"]["B"])
        data[0] ^= 1
        raw["email"] = {"B": bytes(data)}
    elif attack == "signature":
        data = bytearray(raw[SIGNATURE_ATTRIBUTE]["B"])
        data[-1] ^= 1
        raw[SIGNATURE_ATTRIBUTE] = {"B": bytes(data)}
    elif attack == "stripped":  # a plaintext item slipped in without a signature
        raw = {"memberId": {"S": "m1"}, "email": {"S": "eve@evil.io"}, "name": {"S": "Eve"}}
    elif attack == "swapped":  # bob's sealed fields under ada's key
        raw = {**other, "memberId": {"S": "m1"}}
    else:  # sealed with a key these settings do not have
        configure(current_settings(), encryption_keys=f"k9={new_key()}")
    put_raw(raw)
    with pytest.raises(DecryptionFailed, match="m1"):
        members.get("m1")
    if attack != "key":
        assert members.get("m2").name == "Bob"  # the others still open


def test_rotation_keeps_old_items_readable_and_reencrypt_moves_them(
    members: MemberRepository,
) -> None:
    old = current_settings().encryption_keys
    assert old is not None
    sealed = encryption_of(Member)
    assert sealed is not None
    for n in range(5):
        members.save(Member(member_id=f"m{n}", email=f"u{n}@x.io", name=f"U{n}"))
    configure(current_settings(), encryption_keys=f"k2={new_key()},{old.get_secret_value()}")
    assert members.get("m1").name == "U1"  # an old key still decrypts
    members.update("m2", [Member.logins.add(7)])
    members.save(Member(member_id="m9", email="new@x.io", name="New"))
    assert sealed.key_id(raw_item("m9")) == "k2"  # the first key encrypts
    assert sealed.key_id(raw_item("m1")) == "k1"

    seen: list[int] = []
    report = reencrypt(Member, page_size=2, progress=lambda r: seen.append(r.scanned))
    assert (report.scanned, report.rewritten, report.current, report.changed) == (6, 5, 1, 0)
    assert seen[-1] == 6
    assert len(seen) >= 3
    assert all(sealed.key_id(raw_item(f"m{n}")) == "k2" for n in range(5))

    k2 = str(current_settings().encryption_keys.get_secret_value()).split(",")[0]  # type: ignore[union-attr]
    configure(current_settings(), encryption_keys=k2)  # the old key is gone
    assert [members.get(f"m{n}").name for n in range(5)] == [f"U{n}" for n in range(5)]
    assert members.get("m2").logins == 7  # the counter updated meanwhile survived
    found = members.get_by_email("u3@x.io")
    assert found is not None
    assert found.member_id == "m3"
    assert reencrypt(Member).rewritten == 0


def test_stream_records_hold_ciphertext_and_a_worker_sees_plaintext(
    members: MemberRepository,
) -> None:
    from portchops_models.streams import Change, StreamWorker, enable_stream

    arn = enable_stream(Member)
    members.save(ada())
    conn = current_connection()
    shards = conn.send_streams("DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"]
    iterator = conn.send_streams(
        "GetShardIterator",
        {"StreamArn": arn, "ShardId": shards[0]["ShardId"], "ShardIteratorType": "TRIM_HORIZON"},
    )["ShardIterator"]
    records = conn.send_streams("GetRecords", {"ShardIterator": iterator})["Records"]
    image = records[0]["dynamodb"]["NewImage"]
    assert "Ada" not in repr(image)
    assert "B" in image["email"]

    seen: list[Change[Member]] = []
    try:
        StreamWorker(Member, seen.extend, name="enc").run(until_idle=True)
    finally:
        delete_table(current_settings().table_name("stream-leases"))
    assert [(c.kind, c.new.email if c.new else None) for c in seen] == [
        ("insert", "Ada@Example.com")
    ]


def test_a_lambda_stream_event_decodes_to_plaintext(members: MemberRepository) -> None:
    members.save(ada())
    raw = raw_item("m1")

    def lambda_form(value: dict[str, Any]) -> dict[str, Any]:  # binaries as base64 text
        if "B" in value:
            return {"B": base64.b64encode(value["B"]).decode()}
        return value

    image = {name: lambda_form(value) for name, value in raw.items()}
    assert "Ada" not in str(image)
    event = {
        "Records": [
            {
                "eventName": "INSERT",
                "dynamodb": {"Keys": {"memberId": {"S": "m1"}}, "NewImage": image},
            }
        ]
    }
    event["Records"][0]["dynamodb"]["SequenceNumber"] = "100"  # type: ignore[index]
    (change,) = changes_from_event(event, Member)
    assert change.new is not None
    assert (change.key, change.new.email) == ("m1", "Ada@Example.com")


def test_without_keys_nothing_is_sent_and_the_error_says_what_to_set(
    proxy: FaultProxy, members: MemberRepository
) -> None:
    configure(current_settings(), encryption_keys=None)
    before = len(proxy.seen)
    with pytest.raises(ConfigurationError, match="PORTCHOPS_ENCRYPTION_KEYS"):
        members.save(ada())
    assert len(proxy.seen) == before
    configure(current_settings(), encryption_keys=f"k1={new_key()}", encryption_lookup_key=None)
    with pytest.raises(ConfigurationError, match="PORTCHOPS_ENCRYPTION_LOOKUP_KEY"):
        members.save(ada())


def test_a_wrong_declaration_is_refused_when_the_model_is_used() -> None:
    class KeyEncrypted(BaseModel):
        base_table_name: ClassVar[str] = "bad1"
        encrypted: ClassVar[tuple[str, ...]] = ("item_id",)
        item_id = UnicodeAttribute(hash_key=True)

    class Unknown(BaseModel):
        base_table_name: ClassVar[str] = "bad2"
        encrypted: ClassVar[tuple[str, ...]] = ("nope",)
        item_id = UnicodeAttribute(hash_key=True)

    class PlainLookup(BaseModel):
        base_table_name: ClassVar[str] = "bad3"
        item_id = UnicodeAttribute(hash_key=True)
        email = UnicodeAttribute()
        secret = UnicodeAttribute()
        encrypted: ClassVar[tuple[str, ...]] = ("secret",)
        email_lookup = BlindIndex("email")

    for model, words in ((KeyEncrypted, "key"), (Unknown, "nope"), (PlainLookup, "email")):
        with pytest.raises(ConfigurationError, match=words):
            shape_of(model)


@given(st.text(max_size=30), st.text(max_size=30))
def test_blind_values_are_equal_exactly_when_the_normalised_values_are(a: str, b: str) -> None:
    ring = keyring_of(Settings(encryption_keys=f"k1={ZERO_KEY}", encryption_lookup_key=LOOKUP))
    sealed = encryption_of(Member)
    assert sealed is not None
    normal = sealed.blind["emailLookup"][1]
    same = ring.lookup("members/email", normal(a)) == ring.lookup("members/email", normal(b))
    assert same == (normal(a) == normal(b))
    assert normal(f"  {a.upper()} ").casefold() == normal(a.upper())
    assert ring.lookup("members/email", "a") != ring.lookup("other/email", "a")


@given(st.text(max_size=80))
def test_bad_key_lists_are_a_clear_error(text: str) -> None:
    well_formed = all("=" in entry for entry in text.split(","))
    if well_formed:
        return  # may be valid (a key of 32 bytes) or not: the cases below say which
    with pytest.raises(ValueError, match="encryption_keys"):
        Settings(encryption_keys=text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("k1=abc", "not base64"),
        (f"k1={base64.b64encode(bytes(16)).decode()}", "16 bytes"),
        (f"k1={ZERO_KEY},k1={ZERO_KEY}", "twice"),
        (f"={ZERO_KEY}", "id=BASE64"),
    ],
)
def test_each_bad_key_list_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        configure(encryption_keys=text)


def test_an_entity_may_not_encrypt_what_feeds_its_keys_or_guards() -> None:
    from tests.school_model import Student

    class SealedStudent(Student):
        encrypted: ClassVar[tuple[str, ...]] = ("email",)  # unique: its guard holds it

    with pytest.raises(ConfigurationError, match="email is encrypted but feeds"):
        shape_of(SealedStudent)


def test_under_a_kms_key_items_are_sealed_with_data_keys(
    proxy: FaultProxy, portchops_engine: str
) -> None:
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials("local", "local")
    kms = session.create_client("kms", region_name="us-east-1", endpoint_url=portchops_engine)
    key_arn = kms.create_key(Description="members")["KeyMetadata"]["Arn"]
    configure(
        current_settings(),
        encryption_kms_key_id=key_arn,
        encryption_lookup_key=LOOKUP,
        endpoint_url=portchops_engine,  # KMS is served at the engine's endpoint
    )
    create_table(Member)
    try:
        members = MemberRepository(cache=None)
        members.save(ada())
        raw = raw_item("m1")
        assert set(raw["email"]) == {"B"}
        sealed = encryption_of(Member)
        assert sealed is not None
        assert sealed.key_id(raw) == "kms"
        assert members.get("m1").email == "Ada@Example.com"
        found = members.get_by_email("ada@example.com")
        assert found is not None
    finally:
        delete_table(Member.table_name())

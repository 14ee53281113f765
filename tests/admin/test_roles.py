"""Policies per role: every request a role's code sends is allowed, what is outside it is not.

Each test records what the role's public calls send through the fault proxy (in front
of moto) and evaluates every access against the role's policy text
(`portchops_models.testing.policy`).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from pynamodb.attributes import UnicodeAttribute
from rich.console import Console

from portchops_models import Transaction, User, UserProgress, read_transaction
from portchops_models.admin.roles import READER_METHODS, WRITER_METHODS, role_policy
from portchops_models.migrate import downgrade, status, upgrade
from portchops_models.models import BaseModel
from portchops_models.repositories import UserProgressRepository, UserRepository
from portchops_models.repository import Repository
from portchops_models.settings import Settings, configure, current_settings
from portchops_models.tables import delete_table
from portchops_models.testing.faultproxy import FaultProxy, SeenRequest
from portchops_models.testing.policy import Access, accesses, allows, denied, key_names
from portchops_models.transport.connection import current_connection
from tests.admin.test_iam import Lesson, public_methods


def builtin_keys() -> dict[tuple[str, str | None], str]:
    """The partition keys of the built-in tables under the prefix in force."""
    return key_names([User, UserProgress])


def recorded(proxy: FaultProxy, *calls: Callable[[], object]) -> tuple[SeenRequest, ...]:
    before = len(proxy.seen)
    for run in calls:
        run()
    sent = proxy.seen[before:]
    assert sent, "nothing was sent"
    return sent


@pytest.fixture
def repos(proxy: FaultProxy) -> tuple[UserRepository, UserProgressRepository]:
    users, progress = UserRepository(cache=None), UserProgressRepository(cache=None)
    users.save(User(user_id="u1", email="ada@example.com", name="Ada"))
    users.save(User(user_id="u2", email="bob@example.com", name="Bob"))
    progress.record_attempt("u1", "l-1", 90)
    progress.record_attempt("u2", "l-1", 40)
    return users, progress


def reads(users: UserRepository, progress: UserProgressRepository) -> list[Callable[[], object]]:
    return [
        lambda: users.get("u1"),
        lambda: users.find("u3"),
        lambda: users.exists("u2"),
        lambda: users.query("u1"),
        lambda: list(users.iter_query("u1")),
        lambda: users.count("u1"),
        lambda: users.batch_get(["u1", "u2"]),
        lambda: users.get_by_email("ada@example.com"),
        lambda: progress.get("u1", "l-1"),
        lambda: progress.query("u1", lesson_prefix="l-"),
        lambda: progress.completed("u1"),
        lambda: progress.batch_get([("u1", "l-1"), ("u2", "l-1")]),
        lambda: read_transaction((User, "u1"), (UserProgress, ("u1", "l-1"))),
    ]


def writes(users: UserRepository, progress: UserProgressRepository) -> list[Callable[[], object]]:
    def transaction() -> None:
        with Transaction() as tx:
            tx.update(UserProgress, ("u1", "l-1"), [UserProgress.attempts.add(1)])
            tx.check(User, "u1", User.user_id.exists())

    return [
        lambda: users.save(User(user_id="u5", email="e@x.io", name="E")),
        lambda: users.create(User(user_id="u6", email="f@x.io", name="F")),
        lambda: users.update("u5", name="E."),
        lambda: users.batch_save([User(user_id="u7", email="g@x.io", name="G")]),
        lambda: progress.record_attempt("u5", "l-2", 70),
        lambda: progress.complete_lesson("u5", "l-3", 95),
        transaction,
        lambda: users.delete("u6"),
        lambda: users.batch_delete(["u7"]),
    ]


def test_every_public_repository_method_belongs_to_a_role() -> None:
    methods = public_methods(UserRepository) | public_methods(UserProgressRepository)
    methods |= public_methods(Repository)
    assert not READER_METHODS & WRITER_METHODS
    assert methods == READER_METHODS | WRITER_METHODS


def test_a_reader_may_send_every_read_and_no_write_or_scan(
    proxy: FaultProxy, repos: tuple[UserRepository, UserProgressRepository]
) -> None:
    keys = builtin_keys()
    policy = role_policy(["reader"], [], builtin=True)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}

    sent = recorded(proxy, *reads(*repos))
    assert {r.operation for r in sent} >= {"GetItem", "BatchGetItem", "Query", "TransactGetItems"}
    assert denied(policy, sent, keys) == []

    users, progress = repos
    scans = recorded(proxy, lambda: users.scan_page(), lambda: list(progress.scan()))
    assert denied(policy, scans, keys) == accesses(scans, keys)  # every one refused
    assert denied(role_policy(["reader"], [], builtin=True, scans=True), scans, keys) == []

    written = recorded(proxy, *writes(*repos))
    refused = {a.action for a in denied(policy, written, keys)}
    assert refused == {
        f"dynamodb:{a}"
        for a in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "ConditionCheckItem")
    }


def test_a_writer_may_send_every_write_but_no_table_management(
    proxy: FaultProxy, repos: tuple[UserRepository, UserProgressRepository]
) -> None:
    keys = builtin_keys()
    policy = role_policy(["writer"], [], builtin=True)
    sent = recorded(proxy, *writes(*repos), *reads(*repos))
    assert {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"} <= {
        r.operation for r in sent
    }
    assert denied(policy, sent, keys) == []
    for action in ("DeleteTable", "CreateTable", "UpdateTable", "Scan", "GetRecords"):
        table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{User.table_name()}"
        assert not allows(policy, Access(f"dynamodb:{action}", table))


def test_only_the_models_named_and_the_package_tables_only_when_asked(
    proxy: FaultProxy, repos: tuple[UserRepository, UserProgressRepository]
) -> None:
    keys = builtin_keys()
    lessons_only = role_policy(["writer"], [Lesson])
    resources = [r for s in lessons_only["Statement"] for r in s["Resource"]]
    assert all(Lesson.table_name() in r for r in resources)
    sent = recorded(proxy, *reads(*repos))
    assert denied(lessons_only, sent, keys) == accesses(sent, keys)


def test_leading_keys_let_a_caller_touch_its_own_items_only(
    proxy: FaultProxy, repos: tuple[UserRepository, UserProgressRepository]
) -> None:
    keys = builtin_keys()
    users, progress = repos
    policy = role_policy(
        ["reader", "writer"],
        [Lesson],
        builtin=True,
        identity=[User, UserProgress],
        leading_key_variable="${aws:userid}",
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert "Condition" not in by_sid["PortChopsWriterTables"]  # lessons: keyed by course
    assert by_sid["PortChopsWriterTables"]["Resource"] == [
        f"arn:aws:dynamodb:*:*:table/{Lesson.table_name()}"
    ]
    assert "Condition" in by_sid["PortChopsWriterOwnTables"]
    me = {"aws:userid": "u1"}

    own = recorded(
        proxy,
        lambda: users.get("u1"),
        lambda: progress.query("u1"),
        lambda: progress.completed("u1"),
        lambda: progress.record_attempt("u1", "l-2", 80),
        lambda: users.update("u1", name="Ada L."),
    )
    assert denied(policy, own, keys, variables=me) == []

    others = recorded(
        proxy,
        lambda: users.get("u2"),
        lambda: progress.record_attempt("u2", "l-2", 80),
        lambda: users.batch_get(["u1", "u2"]),  # one of the keys is someone else's
        lambda: users.get_by_email("ada@example.com"),  # email-index: keyed otherwise
        lambda: users.scan_page(),
    )
    refused = denied(policy, others, keys, variables=me)
    assert refused == accesses(others, keys)


@pytest.fixture
def fresh_prefix(proxy: FaultProxy) -> Iterator[Settings]:
    """The proxy under a prefix with no tables; whatever the test creates is deleted."""
    settings = configure(current_settings(), table_prefix=f"r{uuid.uuid4().hex[:10]}-")
    yield settings
    configure(settings)
    conn = current_connection()
    for name in conn.call("ListTables", {})["TableNames"]:
        if name.startswith(settings.table_prefix):
            delete_table(name, conn=conn)


def test_a_migrator_may_run_up_status_and_down_and_a_writer_may_not(
    proxy: FaultProxy, fresh_prefix: Settings
) -> None:
    keys = builtin_keys()
    quiet = Console(file=io.StringIO(), width=120)
    sent = recorded(
        proxy,
        lambda: upgrade(console=quiet),
        lambda: status(),
        lambda: downgrade("0003", console=quiet),
    )
    assert {"CreateTable", "UpdateTimeToLive", "UpdateContinuousBackups", "Scan"} <= {
        r.operation for r in sent
    }
    migrator = role_policy(["migrator"], [], builtin=True)
    assert denied(migrator, sent, keys) == []
    refused = {a.action for a in denied(role_policy(["writer"], [], builtin=True), sent, keys)}
    assert {"dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:Scan"} <= refused


class Note(BaseModel):
    """A model with a stream of its own, for the stream worker's role."""

    class Meta:
        stream_view_type = "NEW_AND_OLD_IMAGES"

    base_table_name: ClassVar[str] = "role-notes"
    note_id = UnicodeAttribute(hash_key=True)
    text = UnicodeAttribute(default="")


class NoteRepository(Repository[Note, str]):
    model = Note


def test_a_stream_worker_may_read_the_stream_and_its_leases_only(
    proxy: FaultProxy, tables: Settings
) -> None:
    from portchops_models.streams import Change, StreamWorker, enable_stream
    from portchops_models.tables import create_table

    create_table(Note)
    try:
        enable_stream(Note)
        NoteRepository(cache=None).save(Note(note_id="n1", text="hi"))
        handled: list[Change[Note]] = []
        sent = recorded(
            proxy, lambda: StreamWorker(Note, handled.extend, name="roles").run(until_idle=True)
        )
        assert [c.key for c in handled] == ["n1"]
        keys = key_names([Note])
        worker = role_policy(["stream-worker"], [Note])
        assert denied(worker, sent, keys) == []
        writer = role_policy(["writer"], [Note])
        refused = {a.action for a in denied(writer, sent, keys)}
        assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator"} <= refused
        item = f"arn:aws:dynamodb:us-east-1:123456789012:table/{Note.table_name()}"
        assert not allows(worker, Access("dynamodb:PutItem", item))
    finally:
        delete_table(Note.table_name())
        delete_table(tables.table_name("stream-leases"))


def test_the_command_prints_a_role_policy_and_names_a_bad_role() -> None:
    from typer.testing import CliRunner

    from portchops_models.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            *("iam-policy", "--role", "reader", "--role", "stream-worker"),
            *("--model", "tests.admin.test_iam:Lesson"),
            *("--identity-model", "tests.admin.test_roles:Note"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc == role_policy(["reader", "stream-worker"], [Lesson, Note], identity=[Note])
    sids = [s["Sid"] for s in doc["Statement"]]
    assert "PortChopsReaderOwnTables" in sids
    assert "PortChopsStreams" in sids

    bad = runner.invoke(
        app, ["iam-policy", "--role", "admin", "--model", "tests.admin.test_iam:Lesson"]
    )
    assert bad.exit_code == 2
    assert "--role admin" in bad.output
    none = runner.invoke(app, ["iam-policy", "--role", "reader"])
    assert none.exit_code == 2
    assert "name the models" in none.output


@pytest.mark.parametrize(
    ("key", "resource", "condition"),
    [
        (
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
            None,
        ),
        ("1234abcd-12ab", "arn:aws:kms:*:*:key/1234abcd-12ab", None),
        (
            "alias/members",
            "arn:aws:kms:*:*:key/*",
            {"StringEquals": {"kms:RequestAlias": ["alias/members"]}},
        ),
    ],
)
def test_an_encrypted_model_under_kms_adds_only_the_kms_actions_its_role_needs(
    key: str, resource: str, condition: object
) -> None:
    from tests.member_model import Member

    settings = Settings(encryption_kms_key_id=key)
    reader = role_policy(["reader"], [Member], settings=settings)
    writer = role_policy(["writer"], [Member], settings=settings)
    (kms,) = [s for s in reader["Statement"] if s["Sid"] == "PortChopsFieldEncryption"]
    assert kms["Action"] == ["kms:Decrypt"]
    assert kms["Resource"] == [resource]
    assert kms.get("Condition") == condition
    (kms,) = [s for s in writer["Statement"] if s["Sid"] == "PortChopsFieldEncryption"]
    assert kms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    # local keys, or a model that encrypts nothing: no KMS at all
    for doc in (
        role_policy(["writer"], [Member]),
        role_policy(["writer"], [Lesson], settings=settings),
    ):
        assert not any(a.startswith("kms:") for s in doc["Statement"] for a in s["Action"])

"""Least-privilege policies per role: what each kind of process sends, on the tables named.

`role_policy(roles, models)` grants each role only the actions its code sends, on the
tables and indexes of the models given (the package's own `User` and `UserProgress`
only with ``builtin=True``):

- ``reader``: GetItem, BatchGetItem, Query (and Scan only with ``scans=True``); read
  transactions need nothing more (IAM checks each item with GetItem);
- ``writer``: a reader's actions, and PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  ConditionCheckItem (single writes, batches, transactions, unique guards);
- ``stream-worker``: the Streams API on the tables' streams, DescribeTable on the
  tables, and the lease table (`portchops_models.streams.worker`);
- ``migrator``: what ``portchops migrate up``/``down``/``work`` send: the tables'
  control plane (create, update, delete, TTL, point-in-time recovery), the data a
  backfill reads and rewrites, and the migration history table.

A model with encrypted attributes (`portchops_models.models.encryption`) under a KMS key
(``encryption_kms_key_id``) adds ``kms:Decrypt`` on that key, and ``kms:GenerateDataKey``
for the roles that write (writer, migrator); local keys need no IAM.

``identity`` names the models whose partition key is the caller's identity: only their
statements carry ``dynamodb:LeadingKeys`` (and drop Scan, and the indexes keyed
otherwise); other tables are granted without it, never as if keyed by the caller.

Example:
    >>> from portchops_models import User
    >>> doc = role_policy(["reader"], [User])
    >>> sorted(a for s in doc["Statement"] for a in s["Action"])[:2]
    ['dynamodb:BatchGetItem', 'dynamodb:GetItem']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Literal

from ..models import BaseModel, User, UserProgress
from ..settings import Settings, current_settings
from .iam import (
    DEFAULT_LEADING_KEY_VARIABLE,
    DEFAULT_TABLE_ARN_PREFIX,
    LEASE_ACTIONS,
    STREAM_ACTIONS,
    PolicyDocument,
    PolicyStatement,
    _hash_key,
)
from .tables import MIGRATION_HISTORY_TABLE as HISTORY_TABLE

__all__ = ["READER_METHODS", "ROLES", "ROLE_ACTIONS", "WRITER_METHODS", "Role", "role_policy"]

Role = Literal["reader", "writer", "stream-worker", "migrator"]
ROLES: Final[tuple[Role, ...]] = ("reader", "writer", "stream-worker", "migrator")

_READ: Final = ("BatchGetItem", "GetItem", "Query")
_WRITE: Final = ("BatchWriteItem", "ConditionCheckItem", "DeleteItem", "PutItem", "UpdateItem")
_CONTROL: Final = (
    "CreateTable",
    "DeleteTable",
    "DescribeContinuousBackups",
    "DescribeTable",
    "DescribeTimeToLive",
    "UpdateContinuousBackups",
    "UpdateTable",
    "UpdateTimeToLive",
)
#: The table actions of each role (Scan is added only where scans are declared; the
#: migrator's backfills scan by nature).
ROLE_ACTIONS: Final[dict[Role, tuple[str, ...]]] = {
    "reader": _READ,
    "writer": _READ + _WRITE,
    "stream-worker": ("DescribeTable",),
    "migrator": tuple(sorted({*_CONTROL, *_READ, *_WRITE, "Scan"})),
}
_STREAM_LEASES: Final = "stream-leases"
#: The repository methods a ``reader`` calls (those of `Repository` and of the built-in
#: repositories; `read_transaction` too). A test runs each and checks its requests
#: against the reader's policy.
READER_METHODS: Final = frozenset(
    {"find", "get", "exists", "batch_get", "query", "iter_query", "count", "scan_page", "scan"}
    | {"get_by_email", "completed"}
)
#: What a ``writer`` calls beyond a reader's (`Transaction` too).
WRITER_METHODS: Final = frozenset(
    {"save", "create", "update", "delete", "batch_save", "batch_delete"}
    | {"record_attempt", "complete_lesson"}
)


def role_policy(
    roles: Iterable[Role],
    models: Iterable[type[BaseModel]],
    *,
    builtin: bool = False,
    scans: bool = False,
    identity: Iterable[type[BaseModel]] = (),
    leading_key_variable: str = DEFAULT_LEADING_KEY_VARIABLE,
    table_arn_prefix: str = DEFAULT_TABLE_ARN_PREFIX,
    settings: Settings | None = None,
) -> PolicyDocument:
    """The policy of a process that plays `roles` over the tables of `models`.

    Raises:
        ValueError: an unknown role, no model, or an identity model not among `models`.
    """
    wanted = list(dict.fromkeys(roles))
    unknown = [r for r in wanted if r not in ROLES]
    if unknown or not wanted:
        raise ValueError(f"roles are {', '.join(ROLES)}; got {unknown or 'none'}")
    named = list(dict.fromkeys((*((User, UserProgress) if builtin else ()), *models)))
    if not named:
        raise ValueError("name the models whose tables the role uses (or builtin=True)")
    keyed = set(identity)
    if keyed - set(named):
        raise ValueError("an identity model must be one of the models")
    prefix = (settings or current_settings()).table_prefix
    statements: list[PolicyStatement] = []
    for role in wanted:
        actions = set(ROLE_ACTIONS[role])
        if scans and role in ("reader", "writer"):
            actions.add("Scan")
        groups: list[tuple[list[type[BaseModel]], str | None]] = [(named, None)]
        if role in ("reader", "writer"):  # item access can be the caller's own only
            groups = [
                ([m for m in named if m not in keyed], None),
                ([m for m in named if m in keyed], leading_key_variable),
            ]
        for chosen, condition in groups:
            if chosen:
                statements.extend(
                    _statements(role, chosen, actions, prefix, table_arn_prefix, condition)
                )
        if role == "migrator":
            statements.append(
                _statement(
                    "PortChopsMigrationHistory",
                    sorted({*_CONTROL, *_READ, *_WRITE, "Scan"} - {"DeleteTable"}),
                    [f"{table_arn_prefix}{prefix}{HISTORY_TABLE}"],
                )
            )
        if role == "stream-worker":
            arns = _table_arns(named, prefix, table_arn_prefix)
            statements.append(
                _statement(
                    "PortChopsStreams", list(STREAM_ACTIONS), [f"{a}/stream/*" for a in arns]
                )
            )
            statements.append(
                _statement(
                    "PortChopsStreamLeases",
                    list(LEASE_ACTIONS),
                    [f"{table_arn_prefix}{prefix}{_STREAM_LEASES}"],
                )
            )
    kms_key = (settings or current_settings()).encryption_kms_key_id
    if kms_key and any(getattr(m, "encrypted", ()) for m in named):
        actions = {"kms:Decrypt"}
        if {"writer", "migrator"} & set(wanted):
            actions.add("kms:GenerateDataKey")
        statements.append(_kms_statement(kms_key, sorted(actions)))
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def _kms_statement(key: str, actions: list[str]) -> PolicyStatement:
    """What sealing (``GenerateDataKey``) and opening (``Decrypt``) items takes of `key`:
    a key ARN as is, a key id in any region and account, an alias through the
    ``kms:RequestAlias`` condition (an alias is not a resource)."""
    statement = PolicyStatement(
        Sid="PortChopsFieldEncryption", Effect="Allow", Action=actions, Resource=[]
    )
    if key.startswith("arn:aws:kms:") and ":key/" in key:
        statement["Resource"] = [key]
    elif key.startswith("alias/") or ":alias/" in key:
        statement["Resource"] = ["arn:aws:kms:*:*:key/*"]
        alias = key[key.index("alias/") :]
        statement["Condition"] = {"StringEquals": {"kms:RequestAlias": [alias]}}
    else:
        statement["Resource"] = [f"arn:aws:kms:*:*:key/{key}"]
    return statement


def _table_arns(models: Sequence[type[BaseModel]], prefix: str, arn_prefix: str) -> list[str]:
    arns: list[str] = []
    for model in models:
        if not model.base_table_name:
            raise ValueError(f"{model.__name__} has no base_table_name (no table of its own)")
        arn = f"{arn_prefix}{prefix}{model.base_table_name}"
        if arn not in arns:
            arns.append(arn)
    return arns


def _statements(
    role: Role,
    models: Sequence[type[BaseModel]],
    actions: set[str],
    prefix: str,
    arn_prefix: str,
    leading_key: str | None,
) -> list[PolicyStatement]:
    if leading_key is not None:
        actions = actions - {"Scan"}  # a scan reads every caller's items
    tables = _table_arns(models, prefix, arn_prefix)
    indexes: list[str] = []
    for model in dict.fromkeys(models):
        arn = f"{arn_prefix}{prefix}{model.base_table_name}"
        schema = model._get_schema()
        table_hash = _hash_key(schema["key_schema"])
        for index in (*schema["global_secondary_indexes"], *schema["local_secondary_indexes"]):
            name = f"{arn}/index/{index['index_name']}"
            same = _hash_key(index["key_schema"]) == table_hash
            if name not in indexes and (leading_key is None or same):
                indexes.append(name)
    tag = _sid(role) + ("Own" if leading_key is not None else "")
    found = [_statement(f"{tag}Tables", sorted(actions), tables)]
    index_actions = sorted(actions & {"Query", "Scan"})
    if indexes and index_actions:
        found.append(_statement(f"{tag}Indexes", index_actions, indexes))
    if leading_key is not None:
        for statement in found:
            statement["Condition"] = {
                "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [leading_key]}
            }
    return found


def _sid(role: Role) -> str:
    return "PortChops" + "".join(part.title() for part in role.split("-"))


def _statement(sid: str, actions: Sequence[str], resources: list[str]) -> PolicyStatement:
    return PolicyStatement(
        Sid=sid, Effect="Allow", Action=[f"dynamodb:{a}" for a in actions], Resource=resources
    )

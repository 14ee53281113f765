"""The least-privilege IAM policy for the app's runtime role (``portchops iam-policy``).

Data plane only: exactly the DynamoDB actions the repositories call
(`TABLE_ACTIONS`; a test runs every repository method and compares), on
exactly the project's tables (`MODELS`, plus the app's own models passed as
``models=`` / ``--model package.module:ClassName``), plus ``Query`` and ``Scan``
(`INDEX_ACTIONS`: ``scan(index=...)``) on their indexes (global and local), whose ARNs are
``table/NAME/index/INDEX``. No table management
(CreateTable, UpdateTable, DeleteTable, DescribeTable...): migrations run with
an admin role of their own.

A model that declares a stream (PynamoDB's ``Meta.stream_view_type``; `enable_stream`
turns it on) adds what a `StreamWorker` needs: `STREAM_ACTIONS` on the table's
streams (``table/NAME/stream/*``), ``DescribeTable`` on the table (to find the live
stream), and `LEASE_ACTIONS` on the ``{prefix}stream-leases`` table, the shard leases
and checkpoints (``CreateTable`` on that one table only: a worker creates it when it is
missing). A per-user role (``leading_keys=True``) reads no streams.

With ``leading_keys=True`` every statement gets a
``ForAllValues:StringEquals`` condition on ``dynamodb:LeadingKeys``: a caller
may touch only items whose partition key (``userId`` for the built-in tables)
equals `leading_key_variable` - by default
``${cognito-identity.amazonaws.com:sub}``, the Cognito identity id, so user
ids must be those ids. Such a per-user role cannot ``Scan`` (a scan names no
partition key, and ``ForAllValues`` over no keys is true, so it would expose
every row), and gets only the indexes whose partition key is the table's own
(``completed-index``, not ``email-index``; every local index).

Example:
    >>> doc = policy_document()
    >>> sorted(doc["Statement"][0]["Action"])[:2]
    ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NotRequired, TypedDict

from ..models import BaseModel, User, UserProgress
from ..settings import Settings, current_settings

__all__ = [
    "DEFAULT_LEADING_KEY_VARIABLE",
    "DEFAULT_TABLE_ARN_PREFIX",
    "INDEX_ACTIONS",
    "LEASE_ACTIONS",
    "MODELS",
    "STREAM_ACTIONS",
    "TABLE_ACTIONS",
    "TRANSACTION_ACTIONS",
    "PolicyDocument",
    "actions_for",
    "PolicyStatement",
    "policy_document",
]

#: Every DynamoDB operation the repositories call (checked against what they send).
TABLE_ACTIONS = (
    "BatchGetItem",
    "BatchWriteItem",
    "ConditionCheckItem",
    "DeleteItem",
    "GetItem",
    "PutItem",
    "Query",
    "Scan",
    "UpdateItem",
)
#: IAM has no action of its own for a transaction: it authorises each item it touches
#: with the single-item action (a ``check`` with ConditionCheckItem).
TRANSACTION_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "TransactWriteItems": ("ConditionCheckItem", "DeleteItem", "PutItem", "UpdateItem"),
    "TransactGetItems": ("GetItem",),
}
#: The operations the repositories send to an index (``IndexName`` set).
INDEX_ACTIONS = ("Query", "Scan")
#: What a stream worker sends to a table's streams (the DynamoDB Streams API).
STREAM_ACTIONS = ("DescribeStream", "GetRecords", "GetShardIterator")
#: What a stream worker sends to the table its shard leases live in.
LEASE_ACTIONS = ("CreateTable", "DeleteItem", "DescribeTable", "Scan", "UpdateItem")
#: The stream workers' lease table (base name; `streams.worker.STREAM_LEASES`).
_LEASE_TABLE = "stream-leases"


def actions_for(operation: str) -> tuple[str, ...]:
    """The IAM actions an API operation needs (``TransactWriteItems`` -> its item actions).

    >>> actions_for("GetItem"), actions_for("TransactGetItems")
    (('GetItem',), ('GetItem',))
    """
    return TRANSACTION_ACTIONS.get(operation, (operation,))


#: The models whose tables the app uses.
MODELS: tuple[type[BaseModel], ...] = (User, UserProgress)
#: The default ARN prefix of the tables: any region, any account.
DEFAULT_TABLE_ARN_PREFIX = "arn:aws:dynamodb:*:*:table/"
#: The identity whose id must equal the partition key, with ``leading_keys=True``.
DEFAULT_LEADING_KEY_VARIABLE = "${cognito-identity.amazonaws.com:sub}"


class PolicyStatement(TypedDict):
    """One IAM statement."""

    Sid: str
    Effect: str
    Action: list[str]
    Resource: list[str]
    Condition: NotRequired[dict[str, dict[str, list[str]]]]


class PolicyDocument(TypedDict):
    """An IAM policy document (``json.dumps`` it)."""

    Version: str
    Statement: list[PolicyStatement]


def _hash_key(schema: Iterable[Mapping[str, object]]) -> str:
    return next(str(k["AttributeName"]) for k in schema if k["KeyType"] == "HASH")


def policy_document(
    *,
    table_arn_prefix: str = DEFAULT_TABLE_ARN_PREFIX,
    leading_keys: bool = False,
    leading_key_variable: str = DEFAULT_LEADING_KEY_VARIABLE,
    settings: Settings | None = None,
    models: Iterable[type[BaseModel]] = (),
) -> PolicyDocument:
    """The runtime policy for the tables under `settings` (default: those in force).

    Args:
        table_arn_prefix: prepended to table names, e.g.
            ``arn:aws:dynamodb:eu-west-1:123456789012:table/`` to pin region and account.
        leading_keys: restrict each caller to items whose partition key is its identity.
        leading_key_variable: the IAM policy variable holding that identity.
        settings: whose ``table_prefix`` names the tables.
        models: the app's own models, covered after `MODELS` (one table each, with
            its global and local secondary indexes); a model given twice counts once.

    Raises:
        ValueError: a model has no ``base_table_name``.
    """
    prefix = (settings or current_settings()).table_prefix
    tables: list[str] = []
    indexes: list[str] = []
    streamed: list[str] = []
    for model in dict.fromkeys((*MODELS, *models)):
        if not model.base_table_name:
            raise ValueError(f"{model.__name__} has no base_table_name (no table of its own)")
        arn = f"{table_arn_prefix}{prefix}{model.base_table_name}"
        if arn in tables:
            continue  # two classes over one table
        tables.append(arn)
        if getattr(model.Meta, "stream_view_type", None):
            streamed.append(arn)
        schema = model._get_schema()
        table_hash = _hash_key(schema["key_schema"])
        for index in (*schema["global_secondary_indexes"], *schema["local_secondary_indexes"]):
            if not leading_keys or _hash_key(index["key_schema"]) == table_hash:
                indexes.append(f"{arn}/index/{index['index_name']}")
    table_actions = [a for a in TABLE_ACTIONS if not (leading_keys and a == "Scan")]
    index_actions = [a for a in INDEX_ACTIONS if not (leading_keys and a == "Scan")]
    statements = [
        PolicyStatement(
            Sid="PortChopsTables",
            Effect="Allow",
            Action=[f"dynamodb:{a}" for a in table_actions],
            Resource=tables,
        ),
        PolicyStatement(
            Sid="PortChopsIndexes",
            Effect="Allow",
            Action=[f"dynamodb:{a}" for a in index_actions],
            Resource=indexes,
        ),
    ]
    if leading_keys:
        condition = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [leading_key_variable]}}
        for statement in statements:
            statement["Condition"] = condition
    elif streamed:
        statements.extend(_stream_statements(streamed, f"{table_arn_prefix}{prefix}{_LEASE_TABLE}"))
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def _stream_statements(tables: list[str], leases: str) -> list[PolicyStatement]:
    """What reading the streams of `tables` takes (see the module docstring)."""
    return [
        PolicyStatement(
            Sid="PortChopsStreams",
            Effect="Allow",
            Action=[f"dynamodb:{a}" for a in STREAM_ACTIONS],
            Resource=[f"{arn}/stream/*" for arn in tables],
        ),
        PolicyStatement(
            Sid="PortChopsStreamTables",
            Effect="Allow",
            Action=["dynamodb:DescribeTable"],
            Resource=tables,
        ),
        PolicyStatement(
            Sid="PortChopsStreamLeases",
            Effect="Allow",
            Action=[f"dynamodb:{a}" for a in LEASE_ACTIONS],
            Resource=[leases],
        ),
    ]

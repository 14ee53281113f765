"""Check recorded requests against an IAM policy document, offline.

`accesses` turns one DynamoDB request (as the fault proxy saw it, `SeenRequest`) into
what IAM authorises: an action on a resource ARN with the request's
``dynamodb:LeadingKeys`` (a batch or transaction is one access per table or item);
`denied` returns those of a run that a policy does not allow. Together they answer
"does this role's policy cover everything this code sends?" without an AWS account:

    >>> from portchops_models.admin.roles import role_policy
    >>> from portchops_models import User
    >>> policy = role_policy(["reader"], [User])
    >>> put = Access("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/port-chops-users")
    >>> allows(policy, put)
    False

The evaluator knows what these policies use: ``Allow`` statements, ``*`` in resources,
and the ``ForAllValues:StringEquals`` condition on ``dynamodb:LeadingKeys`` with policy
variables (``${...}``) filled from `variables`. Anything else in a statement (another
effect, operator or condition key) raises `ValueError` rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ..admin.iam import PolicyDocument, PolicyStatement
from ..models import BaseModel
from .faultproxy import SeenRequest

__all__ = ["Access", "KeyNames", "accesses", "allows", "denied", "key_names"]

#: ``(table name, index name or None)`` -> partition key attribute.
KeyNames = Mapping[tuple[str, str | None], str]

_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Access:
    """One authorisation IAM makes: ``action`` on ``resource`` for these partition keys."""

    action: str
    resource: str
    leading_keys: frozenset[str] = field(default_factory=frozenset)


def key_names(models: Iterable[type[BaseModel]]) -> dict[tuple[str, str | None], str]:
    """The partition key attribute of each table and index of `models` (see `accesses`)."""
    names: dict[tuple[str, str | None], str] = {}
    for model in models:
        schema = model._get_schema()
        table = model.table_name()
        names[table, None] = _hash(schema["key_schema"])
        for index in (*schema["global_secondary_indexes"], *schema["local_secondary_indexes"]):
            names[table, str(index["index_name"])] = _hash(index["key_schema"])
    return names


def _hash(schema: Iterable[Mapping[str, Any]]) -> str:
    return next(str(k["AttributeName"]) for k in schema if k["KeyType"] == "HASH")


def accesses(
    requests: Sequence[SeenRequest],
    keys: KeyNames,
    *,
    arn_prefix: str = "arn:aws:dynamodb:us-east-1:123456789012:table/",
) -> list[Access]:
    """What IAM authorises for each of `requests`, in order.

    `keys` names each table's partition key (`key_names`); a table missing from it is
    accessed without leading keys. ``GetRecords`` is charged to the stream of the last
    ``GetShardIterator`` before it (an iterator names no stream).
    """
    found: list[Access] = []
    stream = ""
    for request in requests:
        payload = request.payload or {}
        operation = request.operation
        if "StreamArn" in payload:
            stream = str(payload["StreamArn"])
            found.append(Access(f"dynamodb:{operation}", stream))
        elif operation == "GetRecords":
            found.append(Access("dynamodb:GetRecords", stream))
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for table, entries in payload["RequestItems"].items():
                if operation == "BatchGetItem":
                    items = entries["Keys"]
                else:  # [{"PutRequest": {"Item": ...}} or {"DeleteRequest": {"Key": ...}}]
                    items = [b.get("Key") or b["Item"] for e in entries for b in e.values()]
                found.append(_access(operation, arn_prefix, table, None, keys, items))
        elif operation in ("TransactWriteItems", "TransactGetItems"):
            for entry in payload["TransactItems"]:
                (kind, body), *_ = entry.items()
                action = _TRANSACT_WRITE.get(kind, "GetItem")
                item = body.get("Key") or body.get("Item") or {}
                found.append(_access(action, arn_prefix, body["TableName"], None, keys, [item]))
        elif "TableName" in payload:
            table = str(payload["TableName"])
            index = payload.get("IndexName")
            item = payload.get("Key") or payload.get("Item")
            if item is not None:
                found.append(_access(operation, arn_prefix, table, None, keys, [item]))
            elif operation == "Query":
                values = _query_keys(payload, keys.get((table, index)))
                resource = f"{arn_prefix}{table}" + (f"/index/{index}" if index else "")
                found.append(Access("dynamodb:Query", resource, values))
            else:
                resource = f"{arn_prefix}{table}" + (f"/index/{index}" if index else "")
                found.append(Access(f"dynamodb:{operation}", resource))
        else:
            found.append(Access(f"dynamodb:{operation}", "*"))
    return found


def _access(
    operation: str,
    arn_prefix: str,
    table: str,
    index: str | None,
    keys: KeyNames,
    items: Iterable[Mapping[str, Any]],
) -> Access:
    name = keys.get((table, index))
    values = frozenset(_scalar(item[name]) for item in items if name and name in item)
    return Access(f"dynamodb:{operation}", f"{arn_prefix}{table}", values)


def _scalar(value: Mapping[str, Any]) -> str:
    (_, inner), *_ = value.items()
    return str(inner)


def _query_keys(payload: Mapping[str, Any], name: str | None) -> frozenset[str]:
    """The partition key values a Query's key condition names (``#n = :v``)."""
    if name is None:
        return frozenset()
    names = payload.get("ExpressionAttributeNames", {})
    values = payload.get("ExpressionAttributeValues", {})
    found = set()
    for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", payload["KeyConditionExpression"]):
        if names.get(left, left) == name:
            found.add(_scalar(values[right]))
    return frozenset(found)


def allows(
    policy: PolicyDocument, access: Access, *, variables: Mapping[str, str] | None = None
) -> bool:
    """Whether some statement of `policy` allows `access` (there are no Deny statements)."""
    return any(_allows(s, access, variables or {}) for s in policy["Statement"])


def _allows(statement: PolicyStatement, access: Access, variables: Mapping[str, str]) -> bool:
    if statement["Effect"] != "Allow":
        raise ValueError(f"statement {statement['Sid']}: only Allow statements are evaluated")
    if access.action not in statement["Action"]:
        return False
    if not any(fnmatchcase(access.resource, pattern) for pattern in statement["Resource"]):
        return False
    for operator, conditions in statement.get("Condition", {}).items():
        if operator != "ForAllValues:StringEquals" or set(conditions) != {"dynamodb:LeadingKeys"}:
            raise ValueError(f"statement {statement['Sid']}: condition {operator} not evaluated")
        allowed = {_fill(v, variables) for v in conditions["dynamodb:LeadingKeys"]}
        # ForAllValues over no keys is true: IAM's rule (why per-user roles drop Scan).
        if not access.leading_keys <= allowed:
            return False
    return True


def _fill(value: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) not in variables:
            raise ValueError(f"policy variable ${{{match.group(1)}}} has no value")
        return variables[match.group(1)]

    return _VARIABLE.sub(one, value)


def denied(
    policy: PolicyDocument,
    requests: Sequence[SeenRequest],
    keys: KeyNames,
    *,
    variables: Mapping[str, str] | None = None,
) -> list[Access]:
    """The accesses of `requests` that `policy` does not allow (empty: all covered)."""
    return [a for a in accesses(requests, keys) if not allows(policy, a, variables=variables)]

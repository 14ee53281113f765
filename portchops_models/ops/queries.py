"""Queries, counts and scans, written once for both APIs.

`build_query` and `build_scan` make the request (pure, `portchops_models.ops.requests`);
`fetch_page` sends one and decodes its page; the public methods page through
them lazily (`iter_query`, `scan`) or once (`query`, `scan_page`).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.indexes import Index

from ..dynamo.cursor import decode_cursor, encode_cursor
from ..models.projections import Projection
from ..models.shape import TableShape
from . import requests
from .context import Bound
from .page import Page, Pending

__all__ = ["IndexRef", "build_query", "build_scan", "count", "fetch_page", "fetch_pending"]

T = TypeVar("T")

#: An index given as the model's index attribute or by name.
IndexRef = Index[Any] | str


def build_query(
    shape: TableShape,
    table: str,
    hash_key: object,
    range_key_condition: Condition | None,
    filter_condition: Condition | None,
    index: IndexRef | None,
    limit: int | None,
    newest_first: bool,
    consistent: bool,
    projection: type[Projection[Any]] | None,
    count: bool = False,
) -> requests.QueryRequest:
    """The Query request (and its cursor scope) for these arguments."""
    return requests.query(
        shape,
        table,
        hash_key,
        range_key_condition,
        filter_condition,
        index=shape.index(index),
        limit=limit,
        newest_first=newest_first,
        consistent=consistent,
        projection=projection,
        count=count,
    )


def build_scan(
    shape: TableShape,
    table: str,
    *,
    segment: int,
    total_segments: int,
    limit: int | None = None,
    filter_condition: Condition | None = None,
    projection: type[Projection[Any]] | None = None,
    index: IndexRef | None = None,
) -> requests.QueryRequest:
    """The Scan request (and its cursor scope) of one segment, of the table or of `index`.

    Raises:
        InvalidRequest: an unknown index (named, with the model's indexes).
    """
    return requests.scan(
        shape,
        table,
        segment=segment,
        total_segments=total_segments,
        limit=limit,
        filter_condition=filter_condition,
        projection=projection,
        index=shape.index(index),
    )


async def fetch_page(
    ctx: Bound[Any],
    built: requests.QueryRequest,
    operation: str,
    cursor: str | None,
    projection: type[Projection[Any]] | None,
    limit: int | None = None,
) -> Page[Any]:
    """Send one Query or Scan page from `cursor`; decode its unexpired items."""
    pending = await fetch_pending(ctx, built, operation, cursor, projection, limit)
    return pending.decoded()


async def fetch_pending(
    ctx: Bound[Any],
    built: requests.QueryRequest,
    operation: str,
    cursor: str | None,
    projection: type[Projection[Any]] | None,
    limit: int | None = None,
) -> Pending:
    """Send one Query or Scan page from `cursor`: its unexpired items, to decode.

    `limit`, when given, is this page's ``Limit`` instead of the built one (the last
    page of a capped `iter_query`); the cursor scope does not depend on it.
    """
    params = built.params
    secret = ctx.conn.settings.cursor_secret
    signing = secret.get_secret_value() if secret is not None else None
    if cursor is not None:
        params["ExclusiveStartKey"] = decode_cursor(cursor, scope=built.scope, secret=signing)
    if limit is not None:
        params["Limit"] = limit
    response = await ctx.send(operation, params)
    now = time.time()
    decode = ctx.decoders.of(params.get("IndexName")) if projection is None else projection.from_raw
    items = ctx.shape.unexpired(response.get("Items", []), now)
    last = response.get("LastEvaluatedKey")
    next_cursor = encode_cursor(last, scope=built.scope, secret=signing) if last else None
    return Pending(items, next_cursor, decode)


async def count(
    ctx: Bound[Any],
    hash_key: object,
    range_key_condition: Condition | None,
    filter_condition: Condition | None,
    index: IndexRef | None,
    consistent: bool,
) -> int:
    """How many unexpired items a query matches, page by page.

    With a TTL attribute the keys and TTL of each match are read (and expired
    ones left out) instead of DynamoDB's ``Select=COUNT``.
    """
    shape = ctx.shape
    ttl = shape.ttl_name is not None
    built = build_query(
        ctx.shape,
        ctx.table,
        hash_key,
        range_key_condition,
        filter_condition,
        index,
        None,
        False,
        consistent,
        None,
        count=True,
    )
    params = built.params
    total = 0
    now = time.time()
    while True:
        response = await ctx.send("Query", params)
        if ttl:
            total += sum(1 for i in response.get("Items", []) if not shape.expired(i, now))
        else:
            total += int(response.get("Count", 0))
        last = response.get("LastEvaluatedKey")
        if not last:
            return total
        params["ExclusiveStartKey"] = last

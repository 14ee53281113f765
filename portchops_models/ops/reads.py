"""Reads by key, written once for both APIs: `find`, `get`, `batch_get`.

Each is a coroutine over one call's `Bound` context; its runtime decides whether
the steps block (sync) or await (async).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Hashable, Iterable, Sequence
from typing import Any

from ..dynamo.limits import BATCH_GET_MAX
from ..errors import CallTimeout, ItemNotFound, ThrottledError
from ..models.projections import Projection
from ..models.shape import RawItem
from ..observe import tracing
from . import requests
from .context import Bound

__all__ = ["batch_get", "find", "get", "rounds"]


async def load(
    ctx: Bound[Any],
    key: Hashable,
    consistent: bool,
    projection: type[Projection[Any]] | None,
) -> RawItem | None:
    """The raw item with this key, an expired one counted as absent (the miss path).

    A GetItem, or with ``coalesce=True`` a key of the batch its runtime forms from the
    point reads issued with it (`portchops_models.ops.coalesce`), read by `_read_many`:
    the same answer, with one request for many reads.
    """
    if ctx.coalesce is None:
        return await _get_item(ctx, key, consistent, projection)
    canonical = ctx.shape.canonical(key)  # a bad key is refused here, failing no other read

    async def flush(keys: list[Hashable]) -> dict[Hashable, RawItem | BaseException | None]:
        return await _read_many(ctx, keys, consistent, projection)

    group = (ctx.conn.generation, ctx.table, projection, consistent)
    return await ctx.coalesce.submit(group, canonical, flush, table=ctx.table)


async def _get_item(
    ctx: Bound[Any],
    key: Hashable,
    consistent: bool,
    projection: type[Projection[Any]] | None,
) -> RawItem | None:
    """GetItem, with an expired item counted as absent."""
    params = requests.get_item(
        ctx.shape, ctx.table, key, consistent=consistent, projection=projection
    )
    item: RawItem | None = (await ctx.send("GetItem", params)).get("Item")
    return None if item is None or ctx.shape.expired(item) else item


async def _read_many(
    ctx: Bound[Any],
    keys: list[Hashable],
    consistent: bool,
    projection: type[Projection[Any]] | None,
) -> dict[Hashable, RawItem | BaseException | None]:
    """Each key's unexpired raw item (or ``None``), or the error of the request that
    carried it: a coalesced batch's flush.

    One key is a GetItem. More are BatchGetItem chunks of 100, concurrently, each with
    its own rounds (`rounds`: unprocessed keys resubmitted), so a chunk that fails (its
    throttling past the retry policy, its deadline) fails only its own keys, and of those
    only the keys no response had settled yet.
    """
    if len(keys) == 1:
        try:
            return {keys[0]: await _get_item(ctx, keys[0], consistent, projection)}
        except Exception as err:
            return {keys[0]: err}
    raw: dict[Hashable, RawItem] = {}
    answered: set[Hashable] = set()

    async def read(chunk: list[Hashable]) -> dict[str, Any]:
        await _batch_read(ctx, chunk, projection, None, raw, consistent, answered)
        return {}

    chunks = [keys[i : i + BATCH_GET_MAX] for i in range(0, len(keys), BATCH_GET_MAX)]
    outcomes = await ctx.runtime.fan_out(ctx.conn, read, chunks)
    now = time.time()
    expired = ctx.shape.expired
    result: dict[Hashable, RawItem | BaseException | None] = {}
    for chunk, outcome in zip(chunks, outcomes, strict=True):
        for key in chunk:
            if isinstance(outcome, BaseException) and key not in answered:
                result[key] = outcome
            else:
                item = raw.get(key)
                result[key] = None if item is None or expired(item, now) else item
    return result


async def find(ctx: Bound[Any], key: Hashable, consistent: bool, projection: object) -> Any:
    """The decoded item or projection with this key, or ``None``; cached unless consistent."""
    shape = ctx.shape
    proj = requests.check_projection(shape, projection)
    cache = ctx.cache
    if cache is None or consistent:
        item = await load(ctx, key, consistent, proj)
    else:
        canonical = shape.canonical(key)
        item = await ctx.runtime.get_or_load(
            cache, canonical, proj, lambda: load(ctx, key, False, proj)
        )
        if item is not None and shape.expired(item):
            item = None
    return None if item is None else ctx.decode(item, proj)


async def get(ctx: Bound[Any], key: Hashable, consistent: bool, projection: object) -> Any:
    """`find`, raising `ItemNotFound` when there is no (unexpired) item."""
    found = await find(ctx, key, consistent, projection)
    if found is None:
        raise ItemNotFound(f"{ctx.table}: no item with key {key!r}", table=ctx.table, key=key)
    return found


async def batch_get(
    ctx: Bound[Any],
    keys: Iterable[Hashable],
    projection: object,
    consistent: bool = False,
) -> list[Any]:
    """Decoded items for `keys` in their order (missing and expired ones left out).

    Cached keys come from the cache; the rest go out 100 a request, chunks
    concurrently, unprocessed keys resubmitted (`rounds`). Without a cache only
    the decoded items are kept, never the raw answers beside them. A `consistent`
    read bypasses the cache (as `find` does): every key is read with
    ``ConsistentRead`` and nothing is cached from it.
    """
    ordered = ctx.keys(keys, "batch_get")
    shape = ctx.shape
    proj = requests.check_projection(shape, projection)
    cache = ctx.cache
    decoded: dict[Hashable, Any] = {}
    if cache is None or consistent:
        await _batch_read(ctx, ordered, proj, decoded, None, consistent)
        return [found for found in map(decoded.get, ordered) if found is not None]
    found, wanted = cache.get_many(ordered, proj) if ordered else ({}, [])
    if wanted:
        fetched: dict[Hashable, RawItem] = {}
        with cache.begin(wanted) as token:
            await _batch_read(ctx, wanted, proj, decoded, fetched)
            missing = [k for k in wanted if k not in fetched]
            cache.put_many(fetched, proj, missing=missing, token=token)
    now = time.time()
    out: list[Any] = []
    for key in ordered:
        obj = decoded.get(key)
        if obj is not None:
            out.append(obj)
            continue
        item = found.get(key)
        if item is not None and not shape.expired(item, now):
            out.append(ctx.decode(item, proj))
    return out


async def _batch_read(
    ctx: Bound[Any],
    keys: Sequence[Hashable],
    projection: type[Projection[Any]] | None,
    decoded: dict[Hashable, Any] | None,
    raw: dict[Hashable, RawItem] | None,
    consistent: bool = False,
    answered: set[Hashable] | None = None,
) -> None:
    """Fetch `keys` into `decoded` (unexpired items only), if given, and `raw`, if given;
    into `answered`, if given, every key a response has settled (found or not).

    Items are decoded as each chunk arrives, while other chunks are still on the wire.
    """
    shape, table = ctx.shape, ctx.table
    proj = requests.projection_params(shape, projection)

    def collect(response: dict[str, Any]) -> list[Hashable]:
        left = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        return [shape.key_of(key) for key in left]

    # Keys stay Python keys until their chunk is sent: 10,000 raw key maps built up
    # front would outweigh the chunks on the wire.
    async def send(chunk: list[Hashable]) -> dict[str, Any]:
        request = requests.batch_get_chunk(table, shape.raw_keys(chunk), proj, consistent)
        response = await ctx.send("BatchGetItem", request)
        items: list[RawItem] = response.get("Responses", {}).get(table, [])
        key_of = shape.key_of
        if raw is not None:
            for item in items:
                raw[key_of(item)] = item
        if decoded is not None and items:
            decode = ctx.decoder(projection)
            for item in shape.live(items, time.time()):
                decoded[key_of(item)] = decode(item)
        if answered is not None:
            answered.update(chunk)
            answered.difference_update(collect(response))
        # Keep only what the round needs: the raw answers of every chunk would otherwise
        # stay alive beside the decoded items until the whole call returns.
        return {"UnprocessedKeys": response.get("UnprocessedKeys", {})}

    await rounds(ctx, "BatchGetItem", list(keys), BATCH_GET_MAX, send, collect)


async def rounds(
    ctx: Bound[Any],
    operation: str,
    pending: list[Any],
    chunk_size: int,
    send: Callable[[list[Any]], Coroutine[Any, Any, dict[str, Any]]],
    collect: Callable[[dict[str, Any]], list[Any]],
) -> None:
    """Send `pending` in concurrent chunks, round after round (`RetryPolicy.rounds`)."""
    table = ctx.table
    last = {"outstanding": 0, "chunk_failed": 0}  # for the records of retries and give-ups

    async def send_round(batch: list[Any]) -> list[Any]:
        chunks = [batch[i : i + chunk_size] for i in range(0, len(batch), chunk_size)]
        leftover: list[Any] = []
        failed: list[tuple[list[Any], BaseException]] = []
        outcomes = await ctx.runtime.fan_out(ctx.conn, send, chunks)
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed.append((chunk, outcome))
            else:
                leftover.extend(collect(outcome))
        if failed:
            chunk, error = failed[0]
            if isinstance(error, ThrottledError):
                error.outstanding = len(leftover) + sum(len(c) for c, _ in failed)
            last["chunk_failed"] = 1  # the request that failed has said so
            raise error
        last["outstanding"] = len(leftover)
        return leftover

    def on_retry(round_no: int, delay: float) -> None:
        ctx.metrics.record_retry(operation, table=table)
        tracing.batch_retry(operation, table, round_no, delay, last["outstanding"])

    try:
        await ctx.retry.rounds(
            pending,
            send_round,
            table=table,
            operation=operation,
            on_retry=on_retry,
            wait=ctx.runtime.wait(ctx.retry),
        )
    except (ThrottledError, CallTimeout) as err:
        if not last["chunk_failed"]:
            tracing.batch_gave_up(operation, table, err)
        raise

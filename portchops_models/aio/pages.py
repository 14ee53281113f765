"""Paging for the async API: pages as an async iterator, scan segments as tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ..batching import check_segments
from ..ops.queries import Page, Paging

__all__ = ["iter_pages", "merge_segments"]

T = TypeVar("T")
_DONE = object()


async def iter_pages(
    page: Callable[[str | None, int | None], Awaitable[Page[T]]],
    cursor: str | None = None,
    paging: Paging | None = None,
) -> AsyncIterator[T]:
    """Every item of every page from `cursor` on, one page in memory at a time.

    With a ``paging.total``, at most that many items: no page is requested once they
    were yielded, and a page asks for no more than are still wanted when that is
    safe (`Paging.limit`). `page` takes the cursor and that page's ``Limit``
    (``None``: the one built).
    """
    total = None if paging is None else paging.total
    if paging is None or total is None:
        while True:
            current = await page(cursor, None)
            for item in current.items:
                yield item
            if current.cursor is None:
                return
            cursor = current.cursor
    remaining = total
    while True:
        current = await page(cursor, paging.limit(remaining))
        items = current.items
        if len(items) >= remaining:
            for item in items[:remaining]:
                yield item
            return
        for item in items:
            yield item
        remaining -= len(items)
        if current.cursor is None:
            return
        cursor = current.cursor


async def merge_segments(
    segments: int, page: Callable[[int, str | None], Awaitable[Page[T]]]
) -> AsyncIterator[T]:
    """One task per scan segment; items as pages arrive (a few pages in memory)."""
    check_segments(segments)
    pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=segments * 2)

    async def worker(segment: int) -> None:
        cursor: str | None = None
        try:
            while True:
                result = await page(segment, cursor)
                await pages.put(result.items)
                if result.cursor is None:
                    break
                cursor = result.cursor
        except Exception as err:
            await pages.put(err)
        finally:
            await pages.put(_DONE)

    tasks = [asyncio.create_task(worker(s)) for s in range(segments)]
    finished = 0
    try:
        while finished < segments:
            got = await pages.get()
            if got is _DONE:
                finished += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                for item in got:
                    yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

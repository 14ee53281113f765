"""Paging through a query's pages: every item, one page in memory at a time.

Written once, for the async API; the sync twin, `portchops_models.ops.paging`, is
generated from this file (``tools/unasync.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .aio_runtime import Fetch
from .page import Paging

__all__ = ["iter_pages"]


async def iter_pages(
    page: Fetch, cursor: str | None = None, paging: Paging | None = None
) -> AsyncIterator[Any]:
    """Every item of every page from `cursor` on, one page in memory at a time, each
    item decoded as it is yielded.

    With a ``paging.total``, at most that many items: no page is requested once they
    were yielded, and a page asks for no more than are still wanted when that is
    safe (`Paging.limit`). `page` takes the cursor and that page's ``Limit``
    (``None``: the one built).
    """
    total = None if paging is None else paging.total
    if paging is None or total is None:
        while True:
            current = await page(cursor, None)
            for item in map(current.decode, current.raw):
                yield item
            if current.cursor is None:
                return
            cursor = current.cursor
    remaining = total
    while True:
        current = await page(cursor, paging.limit(remaining))
        items = current.raw
        if len(items) >= remaining:
            for item in map(current.decode, items[:remaining]):
                yield item
            return
        for item in map(current.decode, items):
            yield item
        remaining -= len(items)
        if current.cursor is None:
            return
        cursor = current.cursor

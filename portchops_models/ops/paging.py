"""Paging through a query's pages: every item, one page in memory at a time."""

# Generated from portchops_models/ops/aio_paging.py by tools/unasync.py: do not edit.
# Change the async source, then run `make generate`.

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .page import Paging
from .sync_runtime import Fetch

__all__ = ["iter_pages"]


def iter_pages(
    page: Fetch, cursor: str | None = None, paging: Paging | None = None
) -> Iterator[Any]:
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
            current = page(cursor, None)
            for item in map(current.decode, current.raw):
                yield item
            if current.cursor is None:
                return
            cursor = current.cursor
    remaining = total
    while True:
        current = page(cursor, paging.limit(remaining))
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

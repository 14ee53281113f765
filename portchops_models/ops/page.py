"""A page of a query or scan, how `iter_query` pages, and the checks of paging arguments.

Leaves of the operations layer: the runtimes (`ops.sync_runtime`, `ops.aio_runtime`)
and the queries use them; they import nothing of the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.expressions.condition import Condition

from ..errors import InvalidRequest

__all__ = ["Page", "Paging", "Pending", "check_segments", "paging"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query or scan.

    Attributes:
        items: the page's items (models or projections).
        cursor: pass it back as ``cursor=`` for the next page; ``None`` on the last page.
    """

    items: list[T]
    cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class Pending:
    """A page as fetched, its items not decoded yet: `iter_query` decodes each as it is
    yielded, so a page's models never all exist at once (nor outlive the caller's use).

    Attributes:
        raw: the page's unexpired raw items.
        cursor: as `Page.cursor`.
        decode: a raw item's model or projection.
    """

    raw: list[dict[str, Any]]
    cursor: str | None
    decode: Callable[[dict[str, Any]], Any]

    def decoded(self) -> Page[Any]:
        """The `Page`: every item decoded."""
        return Page(list(map(self.decode, self.raw)), self.cursor)


@dataclass(frozen=True, slots=True)
class Paging:
    """How `iter_query` pages: the ``Limit`` of each request and the total it yields.

    Attributes:
        page_size: the ``Limit`` of each Query (``None``: DynamoDB's pages of up to 1 MB).
        total: at most this many (unexpired) items yielded in all; ``None``: every item.
        shrink: whether a page may ask for fewer than `page_size`: ``Limit`` =
            ``min(page_size, items still wanted)``, so nothing past the total is read.
            Only without a filter expression: DynamoDB's ``Limit`` counts the items
            *evaluated*, before the filter, so with one a smaller page would not read
            less per item found, only cost more round trips.
    """

    page_size: int | None
    total: int | None
    shrink: bool

    def limit(self, remaining: int) -> int | None:
        """The ``Limit`` of the next page while `remaining` items are still wanted."""
        size = self.page_size
        if self.shrink and (size is None or remaining < size):
            return remaining
        return size


def paging(limit: int | None, page_size: int | None, filter_condition: Condition | None) -> Paging:
    """The `Paging` of ``iter_query(limit=..., page_size=...)``, both checked.

    Raises:
        InvalidRequest: `limit` or `page_size` is not a positive int.
    """
    for name, value in (("limit", limit), ("page_size", page_size)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise InvalidRequest(f"{name} must be a positive int, got {value!r}")
    return Paging(page_size, limit, shrink=limit is not None and filter_condition is None)


def check_segments(segments: object) -> None:
    """Raise `InvalidRequest` unless `segments` is an int from 1 to 1000."""
    if isinstance(segments, bool) or not (isinstance(segments, int) and 1 <= segments <= 1000):
        raise InvalidRequest("segments must be an int from 1 to 1000")

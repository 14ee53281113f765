"""A rate limit shared by every worker of a backfill, kept in the plan's header.

The plan's header (in the history table) holds ``tat``, the time (epoch seconds)
at which the work paid for so far is allowed to have finished (the generic cell
rate algorithm). Before a page that will cost at most ``c`` (its row limit, or for
a capacity rate what the previous page cost), a worker reserves the next slot with
a conditional write, ``begins = max(tat, now)``, ``tat = begins + c / rate``, and
waits until ``begins`` before it reads the page. Whatever the number of workers,
the slots follow one another, so in any window the pages begun cost at most the
limit plus the one page begun last; an idle spell earns no credit (a slot never
begins before now), so nothing bursts after it. Skewed clocks only slow it down:
a worker behind waits for slots its clock reaches late, one ahead pushes ``tat``
on from its own later now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ...errors import ConditionFailed
from ..errors import MigrationError
from .lease import LeaseTable

__all__ = ["Rate", "SharedRate"]


@dataclass(frozen=True, kw_only=True)
class Rate:
    """How fast every worker of a backfill together may go: give exactly one.

    Attributes:
        items_per_second: rows scanned per second.
        capacity_per_second: capacity units (read and write) consumed per second.
    """

    items_per_second: float | None = None
    capacity_per_second: float | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.items_per_second, self.capacity_per_second) if v is not None]
        if len(given) != 1 or not given[0] > 0:
            raise MigrationError(
                "Rate takes one of items_per_second or capacity_per_second, above 0"
            )

    @property
    def per_second(self) -> float:
        """The limit, in its unit."""
        return self.items_per_second or self.capacity_per_second or 0.0

    @property
    def unit(self) -> Literal["items", "capacity"]:
        """``"items"`` or ``"capacity"``."""
        return "items" if self.items_per_second is not None else "capacity"


class SharedRate:
    """Pays for pages against the schedule in a plan's header (see the module docstring).

    Args:
        table: the leases (`LeaseTable`).
        plan: the plan whose header holds the schedule.
        rate: the limit.
        sleep: how to wait (injectable); the clock is the leases'.
    """

    def __init__(
        self,
        table: LeaseTable,
        plan: str,
        rate: Rate,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.plan = plan
        self.rate = rate
        self.sleep = sleep

    def pay(self, cost: float, *, stop: threading.Event | None = None) -> float:
        """Reserve the next slot of `cost` and wait for it to begin, before the work it
        pays for (a page paid this way cannot overrun the limit by more than itself);
        returns the seconds waited. Returns early when `stop` is set."""
        if cost <= 0:
            return 0.0
        key = {"id": {"S": self.plan}}
        while True:
            item = self.table.call(
                "GetItem",
                {
                    "Key": key,
                    "ConsistentRead": True,
                    "ProjectionExpression": "#t",
                    "ExpressionAttributeNames": {"#t": "tat"},
                },
            ).get("Item")
            if item is None:
                return 0.0  # the plan is finished and gone
            old = item.get("tat", {}).get("N")
            begins = max(float(old) if old else 0.0, self.table.clock())
            condition = "attribute_exists(#id) AND " + (
                "attribute_not_exists(#t)" if old is None else "#t = :old"
            )
            values = {":t": {"N": f"{begins + cost / self.rate.per_second:.6f}"}}
            if old is not None:
                values[":old"] = {"N": old}
            try:
                self.table.call(
                    "UpdateItem",
                    {
                        "Key": key,
                        "UpdateExpression": "SET #t = :t",
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#t": "tat", "#id": "id"},
                        "ExpressionAttributeValues": values,
                    },
                )
                break
            except ConditionFailed:
                continue  # another worker paid meanwhile: read its schedule and try again
        wait = begins - self.table.clock()
        if wait <= 0:
            return 0.0
        if stop is not None:
            stop.wait(wait)
        else:
            self.sleep(wait)
        return wait

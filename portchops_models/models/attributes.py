"""Attribute types with the checks DynamoDB itself would not make for us."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import TTLAttribute

from ..errors import InvalidRequest

__all__ = ["ExpiryAttribute"]


class ExpiryAttribute(TTLAttribute):
    """A TTL attribute stored as a Number of epoch seconds.

    Accepts a timezone-aware `datetime`, a non-negative `timedelta` (from now) or
    non-negative epoch seconds; reads back as a UTC `datetime`. A naive datetime,
    a negative value or a date before 1970 raises `InvalidRequest` naming the
    attribute, because DynamoDB would silently never expire such an item.
    """

    def _normalize(self, value: Any) -> datetime | None:
        if value is None:
            return None
        name = self.attr_name
        if isinstance(value, bool):
            raise InvalidRequest(f"{name}: expected a datetime, timedelta or epoch seconds")
        if isinstance(value, int | float):
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(f"{name}: epoch seconds must be a non-negative number")
            return datetime.fromtimestamp(int(value), tz=UTC)
        if isinstance(value, timedelta):
            if value < timedelta(0):
                raise InvalidRequest(f"{name}: a negative timedelta ({value}) is not allowed")
            return datetime.fromtimestamp(
                int(datetime.now(UTC).timestamp() + value.total_seconds()), tz=UTC
            )
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise InvalidRequest(
                    f"{name}: naive datetime {value.isoformat()} has no timezone; "
                    "use e.g. datetime.now(timezone.utc)"
                )
            if value < datetime(1970, 1, 1, tzinfo=UTC):
                raise InvalidRequest(f"{name}: {value.isoformat()} is before the epoch")
            return datetime.fromtimestamp(int(value.timestamp()), tz=UTC)
        raise InvalidRequest(
            f"{name}: expected a datetime, timedelta or epoch seconds, got {type(value).__name__}"
        )

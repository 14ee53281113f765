"""Attribute types with the checks DynamoDB itself would not make for us."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import TTLAttribute, UTCDateTimeAttribute

from ..errors import InvalidRequest

__all__ = ["ExpiryAttribute", "UpdatedAtAttribute"]

#: The largest epoch second a `datetime` can hold (9999-12-31T23:59:59Z).
_MAX_EPOCH = 253402300799


class ExpiryAttribute(TTLAttribute):
    """A TTL attribute stored as a Number of epoch seconds.

    Accepts a timezone-aware `datetime`, a non-negative `timedelta` (from now) or
    non-negative epoch seconds; reads back as a UTC `datetime`. A naive datetime,
    a negative value, a date before 1970 or after 9999 raises `InvalidRequest`
    naming the attribute, because DynamoDB would silently never expire such an item.

    By default a write keeps whatever the caller set. ``sliding=`` opts in to
    sliding expiry: every write through a repository sets the attribute to
    ``sliding()`` (a callable returning the new expiry) or to now + ``sliding``
    (a `timedelta`)::

        class Session(BaseModel):
            base_table_name = "sessions"
            session_id = UnicodeAttribute(hash_key=True)
            expires = ExpiryAttribute(sliding=timedelta(hours=1))
    """

    def __init__(
        self,
        *args: Any,
        sliding: Callable[[], datetime] | timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(sliding, timedelta) and sliding <= timedelta(0):
            raise InvalidRequest(f"sliding expiry must be a positive timedelta, got {sliding}")
        self.sliding = sliding

    def next_expiry(self) -> datetime | None:
        """The value a write sets under sliding expiry, or ``None`` when it is off."""
        sliding = self.sliding
        if sliding is None:
            return None
        if isinstance(sliding, timedelta):
            return datetime.fromtimestamp(
                int(datetime.now(UTC).timestamp() + sliding.total_seconds()), tz=UTC
            )
        return self._normalize(sliding())

    def _normalize(self, value: Any) -> datetime | None:
        if value is None:
            return None
        name = self.attr_name
        if isinstance(value, bool):
            raise InvalidRequest(f"{name}: expected a datetime, timedelta or epoch seconds")
        if isinstance(value, int | float):
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(f"{name}: epoch seconds must be a non-negative number")
            if value > _MAX_EPOCH:
                raise InvalidRequest(f"{name}: {value} epoch seconds is after the year 9999")
            return datetime.fromtimestamp(int(value), tz=UTC)
        if isinstance(value, timedelta):
            if value < timedelta(0):
                raise InvalidRequest(f"{name}: a negative timedelta ({value}) is not allowed")
            seconds = datetime.now(UTC).timestamp() + value.total_seconds()
            if seconds > _MAX_EPOCH:
                raise InvalidRequest(f"{name}: now + {value} is after the year 9999")
            return datetime.fromtimestamp(int(seconds), tz=UTC)
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


class UpdatedAtAttribute(UTCDateTimeAttribute):
    """A UTC timestamp that every write through a repository sets to now.

    Defaults to now for a new item too::

        updated_at = UpdatedAtAttribute(attr_name="updatedAt")
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "default" not in kwargs:
            kwargs.setdefault("default_for_new", _utc_now)
        super().__init__(*args, **kwargs)


def _utc_now() -> datetime:
    return datetime.now(UTC)

"""`User`: table ``{prefix}users``, hash key ``userId``, GSI ``email-index``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from .attributes import UpdatedAtAttribute
from .base import BaseModel

__all__ = ["EmailIndex", "User"]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class EmailIndex(GlobalSecondaryIndex["User"]):  # type: ignore[no-untyped-call]
    """GSI ``email-index``: look a user up by email."""

    class Meta:
        index_name = "email-index"
        projection = AllProjection()

    email = UnicodeAttribute(hash_key=True)


class User(BaseModel):
    """A learner.

    Examples:
        >>> user = User(user_id="u1", email="ada@example.com", name="Ada")
        >>> user.user_id
        'u1'
    """

    base_table_name: ClassVar[str] = "users"

    user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(attr_name="createdAt", default_for_new=utc_now)
    updated_at = UpdatedAtAttribute(attr_name="updatedAt")
    version = VersionAttribute()
    #: lessons completed, counted once each by `UserProgressRepository.complete_lesson`
    #: (in one transaction with the progress row); absent until the first.
    completed_lessons = NumberAttribute(null=True, attr_name="completedLessons")

    email_index = EmailIndex()

"""`UserProgress`: table ``{prefix}user-progress``, keys ``userId`` / ``lessonId``.

``completedAt`` is only set once a lesson is completed, which makes the
``completed-index`` GSI sparse: it holds completed lessons only. ``ttl`` is the
TTL attribute (epoch seconds), now + ``progress_ttl_hours`` by default and again on
every write (sliding expiry).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from ..settings import current_settings
from .attributes import ExpiryAttribute, UpdatedAtAttribute
from .base import BaseModel
from .user import utc_now

__all__ = ["STATUSES", "CompletedIndex", "ProgressStatus", "UserProgress", "default_expiry"]

ProgressStatus = Literal["started", "completed"]
STATUSES: tuple[ProgressStatus, ...] = ("started", "completed")


def default_expiry() -> datetime:
    """Now + ``progress_ttl_hours`` (from the settings in force), whole seconds, UTC."""
    hours = current_settings().progress_ttl_hours
    return datetime.fromtimestamp(
        int((datetime.now(UTC) + timedelta(hours=hours)).timestamp()), tz=UTC
    )


class CompletedIndex(GlobalSecondaryIndex["UserProgress"]):  # type: ignore[no-untyped-call]
    """Sparse GSI ``completed-index``: a user's completed lessons by completion time."""

    class Meta:
        index_name = "completed-index"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    completed_at = UTCDateTimeAttribute(range_key=True, attr_name="completedAt")


class UserProgress(BaseModel):
    """One learner's progress on one lesson.

    Examples:
        >>> row = UserProgress(user_id="u1", lesson_id="l-001", status="started")
        >>> row.attempts
        0
    """

    base_table_name: ClassVar[str] = "user-progress"

    user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    lesson_id = UnicodeAttribute(range_key=True, attr_name="lessonId")
    status = UnicodeAttribute(default="started")
    score = NumberAttribute(default=0)
    attempts = NumberAttribute(default=0)
    completed_at = UTCDateTimeAttribute(null=True, attr_name="completedAt")
    updated_at = UpdatedAtAttribute(attr_name="updatedAt", default=utc_now)
    ttl = ExpiryAttribute(default=default_expiry, sliding=default_expiry)

    completed_index = CompletedIndex()

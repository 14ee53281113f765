"""Declarative PynamoDB models sharing one configured connection."""

from .attributes import ExpiryAttribute, UpdatedAtAttribute
from .base import BaseModel
from .user import User
from .user_progress import STATUSES, ProgressStatus, UserProgress

__all__ = [
    "STATUSES",
    "BaseModel",
    "ExpiryAttribute",
    "ProgressStatus",
    "User",
    "UpdatedAtAttribute",
    "UserProgress",
]

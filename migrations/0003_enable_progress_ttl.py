"""Turn on TTL for user progress (attribute ttl).

DynamoDB deletes expired rows lazily; the repositories hide them meanwhile.
AWS allows one TTL change per table per hour, so ``down`` right after ``up``
fails there (moto has no such limit). dynalite has no TTL: skipped.
"""

from __future__ import annotations

from portchops_models.migrate import MigrationContext
from portchops_models.models import UserProgress


def up(ctx: MigrationContext) -> None:
    """Enable TTL on the model's TTL attribute."""
    ctx.enable_ttl(UserProgress)


def down(ctx: MigrationContext) -> None:
    """Disable TTL (the ttl values stay on the rows)."""
    ctx.disable_ttl(UserProgress)

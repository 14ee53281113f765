"""Create the user-progress table with its completed-index.

PAY_PER_REQUEST, encrypted, point-in-time recovery where the engine has it
(AWS and moto; dynalite has none). TTL is turned on by 0003.
"""

from __future__ import annotations

from portchops_models.migrate import MigrationContext
from portchops_models.models import UserProgress


def up(ctx: MigrationContext) -> None:
    """Create ``{prefix}user-progress`` and its sparse GSI; wait until ACTIVE."""
    ctx.create_table(UserProgress, ttl=False)


def down(ctx: MigrationContext) -> None:
    """Delete ``{prefix}user-progress`` and its data."""
    ctx.drop_table(UserProgress)

"""Create the users table (its email-index comes in 0004).

PAY_PER_REQUEST, encrypted, point-in-time recovery where the engine has it
(AWS and moto; dynalite has none). The keys come from the `User` model.
"""

from __future__ import annotations

from portchops_models.migrate import MigrationContext
from portchops_models.models import User


def up(ctx: MigrationContext) -> None:
    """Create ``{prefix}users`` without its GSI and wait until it is ACTIVE."""
    ctx.create_table(User, indexes=False)


def down(ctx: MigrationContext) -> None:
    """Delete ``{prefix}users`` and its data."""
    ctx.drop_table(User)

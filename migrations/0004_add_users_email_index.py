"""Add the email-index GSI to the users table.

UpdateTable with a ``GlobalSecondaryIndexUpdates`` Create and the attribute
definitions the index needs, both from the `User` model; waits until the
index is ACTIVE (on AWS this backfills the index and can take minutes).
"""

from __future__ import annotations

from portchops_models.migrate import MigrationContext
from portchops_models.models import User

INDEX = "email-index"


def up(ctx: MigrationContext) -> None:
    """Create the index and wait until it is ACTIVE."""
    ctx.add_index(User, INDEX)


def down(ctx: MigrationContext) -> None:
    """Delete the index and wait until it is gone."""
    ctx.remove_index(User, INDEX)

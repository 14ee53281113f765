"""Fixtures of the migration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portchops_models.settings import Settings
from portchops_models.tables import delete_table
from portchops_models.transport.connection import current_connection


@pytest.fixture
def history(tables: Settings) -> Iterator[Settings]:
    """The `tables` settings; the history table the runs create is deleted after."""
    yield tables
    delete_table(tables.table_name("schema-migrations"), conn=current_connection())

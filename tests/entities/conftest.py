"""The `school` table (three entities, one table) on each engine, or on moto only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from portchops_models.settings import Settings, configure
from portchops_models.tables import create_table, delete_table
from portchops_models.transport.connection import current_connection
from tests.school_model import Mark, School, Student


def school_on(endpoint_url: str, *also: str) -> Iterator[Settings]:
    """Settings on `endpoint_url` under a fresh prefix with the school table; on exit the
    table (and the tables named in `also`) are deleted."""
    configured = configure(endpoint_url=endpoint_url, table_prefix=f"e{uuid.uuid4().hex[:10]}-")
    create_table(Student)
    create_table(Mark)  # the same table: nothing more to create
    yield configured
    configure(configured)
    conn = current_connection()
    for table in (School.base_table_name, *also):
        delete_table(configured.table_name(table), conn=conn)


@pytest.fixture
def school(engine_url: str) -> Iterator[Settings]:
    """A fresh `school` table (one for all three entities), on each engine."""
    yield from school_on(engine_url)


@pytest.fixture
def moto_school(portchops_engine: str) -> Iterator[Settings]:
    """The same on moto only: a `Student` (unique email) is saved in a transaction,
    which dynalite does not have."""
    yield from school_on(portchops_engine)

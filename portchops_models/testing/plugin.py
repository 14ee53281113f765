"""The pytest plugin: fixtures for an app's own tests, on a real engine over HTTP.

Installed with the package and registered by entry point (``pytest11``), so the
fixtures are there in every test suite of an environment where
``portchops-models[engine]`` is installed, with no conftest to copy:

``portchops_engine`` (session)
    The URL of a running embedded engine, moto's DynamoDB server on a free
    loopback port (`LocalEngine`; ``portchops_local_engine`` is the object).
``portchops_tables``
    The layer configured against that engine with a fresh table prefix, and the
    tables of ``portchops_table_models`` (by default the package's, `User` and
    `UserProgress`) created; the `Settings` in force is the value. Afterwards
    the tables are deleted and the settings that were in force before are
    restored.
``portchops_fault_proxy``
    A `FaultProxy` (seeded, healthy until told otherwise) in front of the engine,
    with the settings pointed at it, over the same tables as ``portchops_tables``.

To create the app's own tables too, override ``portchops_table_models`` in a
conftest::

    @pytest.fixture
    def portchops_table_models() -> tuple[type[BaseModel], ...]:
        return (User, UserProgress, Lesson)

Nothing in the runtime package imports this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest

from ..admin.tables import create_table, delete_table
from ..models import BaseModel, User, UserProgress
from ..settings import Settings, configure, current_settings
from ..transport.connection import Connection, current_connection
from .engine import LocalEngine
from .faultproxy import FaultProxy

__all__ = [
    "PROXY_SEED",
    "configured_tables",
    "portchops_engine",
    "portchops_fault_proxy",
    "portchops_local_engine",
    "portchops_table_models",
    "portchops_tables",
]

#: The seed of ``portchops_fault_proxy``'s draws: a sequential test is reproducible.
PROXY_SEED = 7


@contextmanager
def configured_tables(
    endpoint_url: str, models: Iterable[type[BaseModel]] = (User, UserProgress)
) -> Iterator[Settings]:
    """Settings on `endpoint_url` under a fresh table prefix, with the models' tables.

    On exit the tables are deleted, with any other table under the prefix (a stream
    worker's lease table, say), on the same endpoint and prefix whatever the code
    inside configured meanwhile, and the settings in force before are back.

    Example:
        >>> with LocalEngine() as engine, configured_tables(engine.endpoint_url) as s:
        ...     assert User.exists() and s.table_prefix.startswith("t")
    """
    before = current_settings()
    models = tuple(models)
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    settings = configure(endpoint_url=endpoint_url, table_prefix=prefix)
    try:
        for model in models:
            create_table(model)
        yield settings
    finally:
        configure(settings)
        try:
            conn = current_connection()
            for name in _tables_under(conn, prefix):  # the models' and any made inside
                delete_table(name, conn=conn)
        finally:
            configure(before)


def _tables_under(conn: Connection, prefix: str) -> list[str]:
    """Every table on `conn`'s engine whose name starts with `prefix`."""
    names: list[str] = []
    params: dict[str, object] = {}
    while True:
        answer = conn.call("ListTables", params)
        names.extend(name for name in answer.get("TableNames", []) if name.startswith(prefix))
        last = answer.get("LastEvaluatedTableName")
        if not last:
            return names
        params = {"ExclusiveStartTableName": last}


@pytest.fixture(scope="session")
def portchops_local_engine() -> Iterator[LocalEngine]:
    """moto's DynamoDB server, in-process on a free loopback port, for the whole session."""
    with LocalEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def portchops_engine(portchops_local_engine: LocalEngine) -> str:
    """The URL (``http://127.0.0.1:PORT``) of a running embedded engine, for the session."""
    return portchops_local_engine.endpoint_url


@pytest.fixture
def portchops_table_models() -> tuple[type[BaseModel], ...]:
    """The models whose tables `portchops_tables` creates; override it to add the app's."""
    return (User, UserProgress)


@pytest.fixture
def portchops_tables(
    portchops_engine: str, portchops_table_models: tuple[type[BaseModel], ...]
) -> Iterator[Settings]:
    """The layer configured on the engine with a fresh table prefix and fresh tables.

    Yields the `Settings` in force; the tables are deleted and the previous
    settings restored after the test.
    """
    with configured_tables(portchops_engine, portchops_table_models) as settings:
        yield settings


@pytest.fixture
def portchops_fault_proxy(
    portchops_tables: Settings, portchops_engine: str
) -> Iterator[FaultProxy]:
    """A fault proxy in front of the engine, the settings pointed at it (same tables).

    It starts healthy: set ``proxy.faults = Faults(...)`` to throttle, fail, drop or
    lose answers; ``proxy.seen`` logs the requests and ``proxy.stats`` counts.
    """
    with FaultProxy(upstream=portchops_engine, seed=PROXY_SEED) as running:
        configure(portchops_tables, endpoint_url=running.endpoint_url)
        yield running

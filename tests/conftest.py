"""Shared fixtures: real engines over HTTP, one table prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from portchops_models.connection import current_connection
from portchops_models.models import User, UserProgress
from portchops_models.retry import RetryPolicy
from portchops_models.settings import Settings, configure
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.engine import DynaliteEngine, LocalEngine
from portchops_models.testing.faultproxy import FaultProxy

MODELS = (User, UserProgress)


@pytest.fixture(scope="session")
def moto_engine() -> Iterator[LocalEngine]:
    """moto's server in-process on a free loopback port, for the whole session."""
    with LocalEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def dynalite_engine() -> Iterator[DynaliteEngine]:
    """dynalite in a child process (installed by `make test` into .npm)."""
    with DynaliteEngine() as engine:
        yield engine


@pytest.fixture(scope="session", params=["moto", "dynalite"])
def engine_url(request: pytest.FixtureRequest) -> str:
    """The endpoint of each engine in turn: data-plane tests run on both."""
    name = "moto_engine" if request.param == "moto" else "dynalite_engine"
    engine: LocalEngine | DynaliteEngine = request.getfixturevalue(name)
    return engine.endpoint_url


def _configure_with_tables(endpoint_url: str) -> Iterator[Settings]:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    settings = configure(endpoint_url=endpoint_url, table_prefix=prefix)
    for model in MODELS:
        create_table(model)
    yield settings
    configure(endpoint_url=endpoint_url, table_prefix=prefix)
    for model in MODELS:
        delete_table(settings.table_name(model.base_table_name), conn=current_connection())


@pytest.fixture
def tables(moto_engine: LocalEngine) -> Iterator[Settings]:
    """Fresh, empty User and UserProgress tables on moto; settings pointing at them."""
    yield from _configure_with_tables(moto_engine.endpoint_url)


@pytest.fixture
def any_tables(engine_url: str) -> Iterator[Settings]:
    """Like `tables`, once on moto and once on dynalite."""
    yield from _configure_with_tables(engine_url)


@pytest.fixture(autouse=True)
def _restore_settings() -> Iterator[None]:
    """Each test starts and ends with default settings (no state leaks between tests)."""
    configure(Settings())
    yield
    configure(Settings())


@pytest.fixture
def proxy(tables: Settings, moto_engine: LocalEngine) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto; settings point at the proxy (same tables)."""
    with FaultProxy(upstream=moto_engine.endpoint_url, seed=7) as running:
        configure(tables, endpoint_url=running.endpoint_url)
        yield running


def no_sleep(seconds: float) -> None:
    """Stands in for time.sleep in retry policies, so backoff never waits in tests."""


def fast_retry(**changes: object) -> RetryPolicy:
    """The default retry policy with backoff sleeps skipped."""
    return RetryPolicy(sleep=no_sleep).with_(**changes)  # type: ignore[arg-type]

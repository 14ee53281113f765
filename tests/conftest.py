"""Shared fixtures: real engines over HTTP, one table prefix per test.

The moto engine, the tables on it and the fault proxy are the package's pytest
plugin's (`portchops_models.testing.plugin`, registered by entry point), as an
app's suite uses them; `moto_engine`, `tables` and `proxy` are thin aliases kept
for this suite's tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portchops_models.cache import bus
from portchops_models.models import User, UserProgress
from portchops_models.retry import RetryPolicy
from portchops_models.settings import Settings, configure
from portchops_models.testing.engine import DynaliteEngine, LocalEngine
from portchops_models.testing.faultproxy import FaultProxy
from portchops_models.testing.plugin import configured_tables
from portchops_models.testing.redis import RedisServer
from tests.bus_agent import WAIT, Agent

MODELS = (User, UserProgress)


@pytest.fixture(scope="session")
def moto_engine(portchops_local_engine: LocalEngine) -> LocalEngine:
    """moto's server in-process on a free loopback port, for the whole session (the plugin's)."""
    return portchops_local_engine


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
    with configured_tables(endpoint_url, MODELS) as settings:
        yield settings


@pytest.fixture
def tables(portchops_tables: Settings) -> Settings:
    """Fresh, empty User and UserProgress tables on moto; settings pointing at them."""
    return portchops_tables


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
def proxy(portchops_fault_proxy: FaultProxy) -> FaultProxy:
    """A fault proxy in front of moto; settings point at the proxy (same tables as `tables`)."""
    return portchops_fault_proxy


def no_sleep(seconds: float) -> None:
    """Stands in for time.sleep in retry policies, so backoff never waits in tests."""


def fast_retry(**changes: object) -> RetryPolicy:
    """The default retry policy with backoff sleeps skipped."""
    return RetryPolicy(sleep=no_sleep).with_(**changes)  # type: ignore[arg-type]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, stopped (and the process's bus closed) afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        bus.shutdown()
        server.stop()


@pytest.fixture
def bus_tables(tables: Settings, redis_server: RedisServer) -> Settings:
    """The `tables` settings plus the bus; this process's bus is subscribed."""
    settings = configure(tables, cache_bus_url=redis_server.url)
    live = bus.current()
    assert live is not None
    assert live.wait_serving(timeout=WAIT)
    return settings


@pytest.fixture
def agent(bus_tables: Settings) -> Iterator[Agent]:
    started = Agent(bus_tables)
    try:
        yield started
    finally:
        started.close()

"""The pytest plugin, as an app's test suite sees it: a throwaway test file that uses only
the plugin's fixtures, run by pytest in a child process, outside this project's conftest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

from portchops_models.settings import ENV_PREFIX

APP_TESTS = '''
"""An app's tests: no conftest, only the plugin's fixtures."""

from typing import ClassVar

import pytest
from pynamodb.attributes import UnicodeAttribute

from portchops_models import BaseModel, Metrics, RetryPolicy, Settings, User, UserRepository
from portchops_models.transport.connection import current_connection
from portchops_models.settings import current_settings
from portchops_models.testing.faultproxy import FaultProxy, Faults

SEEN: dict[str, str] = {}


class Course(BaseModel):
    base_table_name: ClassVar[str] = "courses"

    course_id = UnicodeAttribute(hash_key=True, attr_name="courseId")


def test_the_engine_is_a_url(portchops_engine: str) -> None:
    assert portchops_engine.startswith("http://127.0.0.1:")


def test_tables_are_fresh_and_configured(portchops_engine: str, portchops_tables: Settings) -> None:
    assert current_settings() is portchops_tables
    assert portchops_tables.endpoint_url == portchops_engine
    users = UserRepository()
    assert users.find("u-1") is None
    users.save(User(user_id="u-1", email="one@example.com", name="One"))
    assert users.get("u-1", consistent=True).name == "One"
    SEEN["prefix"] = portchops_tables.table_prefix


def test_each_test_gets_its_own_prefix_and_the_last_ones_are_gone(
    portchops_tables: Settings,
) -> None:
    assert portchops_tables.table_prefix != SEEN["prefix"]
    names = current_connection().call("ListTables", {})["TableNames"]
    assert not [name for name in names if name.startswith(SEEN["prefix"])]
    assert UserRepository().find("u-1") is None


def test_settings_are_restored_after_a_test() -> None:
    assert current_settings().endpoint_url is None  # the environment's: real AWS here


def test_the_fault_proxy_sits_in_front(
    portchops_fault_proxy: FaultProxy, portchops_tables: Settings
) -> None:
    assert current_settings().endpoint_url == portchops_fault_proxy.endpoint_url
    metrics = Metrics()
    users = UserRepository(metrics=metrics, retry=RetryPolicy(sleep=lambda seconds: None))
    users.save(User(user_id="u-2", email="two@example.com", name="Two"))
    portchops_fault_proxy.faults = Faults(throttle=1.0, operations=frozenset({"GetItem"}))
    with pytest.raises(Exception, match="gave up"):
        users.get("u-2", consistent=True)
    portchops_fault_proxy.faults = Faults()
    assert users.get("u-2", consistent=True).name == "Two"
    assert metrics.snapshot()["throttled_requests"] == 8
    assert [r.operation for r in portchops_fault_proxy.seen].count("GetItem") == 9


@pytest.fixture
def portchops_table_models() -> tuple[type[BaseModel], ...]:
    return (User, Course)


def test_the_apps_own_tables_by_overriding_the_models(portchops_tables: Settings) -> None:
    Course(course_id="c-1").save()
    assert Course.get("c-1").course_id == "c-1"
    assert Course.exists() and User.exists()
'''


def test_the_plugin_is_registered_by_entry_point() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("portchops") == "portchops_models.testing.plugin"


def test_a_throwaway_suite_on_the_plugins_fixtures_passes(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(textwrap.dedent(APP_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout

"""Modules that moved into the layer folders keep their old import paths (the same objects)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from portchops_models._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_gives_the_module_at_its_new_place(old: str) -> None:
    moved = importlib.import_module(old)
    assert moved is importlib.import_module(MOVED[old])
    assert moved.__spec__ is not None
    assert moved.__spec__.name == MOVED[old]  # its own spec, not the old path's


def test_old_from_imports_work_in_a_fresh_process() -> None:
    script = (
        "from portchops_models.shape import shape_of\n"
        "from portchops_models.connection import current_connection\n"
        "from portchops_models import tracing, bus\n"
        "from portchops_models.migrate.backfill import Backfill\n"
        "import portchops_models.models.shape as new\n"
        "assert shape_of is new.shape_of\n"
        "print(tracing.__name__, bus.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["portchops_models.observe.tracing", "portchops_models.cache.bus"]


def test_the_documented_policy_paths_are_modules_of_their_own() -> None:
    from portchops_models import metrics, retry, tables
    from portchops_models.admin.tables import create_table
    from portchops_models.observe.metrics import Metrics
    from portchops_models.transport.retry import RetryPolicy

    assert (retry.RetryPolicy, metrics.Metrics, tables.create_table) == (
        RetryPolicy,
        Metrics,
        create_table,
    )

"""The log records of the layer (caplog), for both APIs: what is logged, at which
level, with which structured fields, and never a key value or a secret."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from portchops_models import ThrottledError, User, UserRepository, configure
from portchops_models.migrate import downgrade, upgrade
from portchops_models.retry import RetryPolicy
from portchops_models.settings import Settings, current_settings
from portchops_models.tables import delete_table
from portchops_models.testing.faultproxy import FaultProxy, Faults
from tests.conftest import fast_retry
from tests.observability_kit import SECRET_ID, Api, seed, throttle_always, throttle_once

CURSOR_SECRET = "a-cursor-secret-not-to-be-logged"


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Api:
    return Api(request.param)


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the package's loggers, DEBUG and up."""
    caplog.set_level(logging.DEBUG, logger="portchops_models")
    return caplog


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    got = [r for r in caplog.records if r.name.startswith("portchops_models")]
    for record in got:  # never a key value or a secret, in the message or the fields
        assert SECRET_ID not in record.getMessage()
        assert CURSOR_SECRET not in record.getMessage()
        assert SECRET_ID not in repr(vars(record))
        assert CURSOR_SECRET not in repr(vars(record))
    return got


def _event(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in _ours(caplog) if getattr(r, "portchops_event", None) == event]


def test_a_get_logs_nothing_unless_it_is_slow(
    tables: Settings, records: pytest.LogCaptureFixture, api: Api
) -> None:
    configure(tables, slow_call_seconds=0, cursor_secret=CURSOR_SECRET)
    seed(1)
    users = api.users()
    api.run(lambda: users.get(SECRET_ID))
    assert _ours(records) == []

    configure(tables, slow_call_seconds=1e-9, cursor_secret=CURSOR_SECRET)
    users = api.users()
    api.run(lambda: users.get(SECRET_ID))
    (slow,) = _ours(records)
    assert (slow.name, slow.levelno) == ("portchops_models.calls", logging.WARNING)
    assert slow.portchops_event == "slow_call"
    assert slow.db_call == f"{api.repository}.get"
    assert slow.db_table == f"{tables.table_prefix}users"
    assert slow.requests == 1
    assert slow.duration_seconds > 0
    assert f"{api.repository}.get {tables.table_prefix}users: took" in slow.getMessage()


def test_a_batch_get_logs_each_round_with_unprocessed_keys(
    proxy: FaultProxy, records: pytest.LogCaptureFixture, api: Api
) -> None:
    ids = seed(10)

    def backoff(seconds: float) -> None:
        proxy.faults = Faults()

    users = api.users(cache=None, retry=RetryPolicy(sleep=backoff, budget=None))
    proxy.faults = Faults(unprocessed=1.0, operations=frozenset({"BatchGetItem"}))
    assert len(api.run(lambda: users.batch_get(ids))) == 10
    (round_,) = _event(records, "batch_retry")  # a slow seed may add a slow_call record
    assert (round_.name, round_.levelno) == ("portchops_models.requests", logging.DEBUG)
    assert round_.portchops_event == "batch_retry"
    assert round_.db_operation == "BatchGetItem"
    assert round_.db_call == f"{api.repository}.batch_get"
    assert round_.reason == "UnprocessedKeys"
    assert (round_.attempt, round_.outstanding) == (1, 10)


def test_a_retried_call_logs_the_retry_at_debug(
    proxy: FaultProxy, records: pytest.LogCaptureFixture, api: Api
) -> None:
    seed(1)
    users = api.users(cache=None, retry=throttle_once(proxy))
    api.run(lambda: users.get(SECRET_ID))
    (retry,) = _event(records, "retry")
    assert (retry.name, retry.levelno) == ("portchops_models.requests", logging.DEBUG)
    assert retry.portchops_event == "retry"
    assert retry.db_operation == "GetItem"
    assert retry.db_table == f"{current_settings().table_prefix}users"
    assert retry.db_call == f"{api.repository}.get"
    assert retry.attempt == 1
    assert retry.reason == "ProvisionedThroughputExceededException"
    assert retry.delay_seconds >= 0


def test_a_give_up_logs_a_warning_naming_operation_table_and_attempts(
    proxy: FaultProxy, records: pytest.LogCaptureFixture, api: Api
) -> None:
    users = api.users(cache=None, retry=throttle_always(proxy, attempts=3))
    with pytest.raises(ThrottledError):
        api.run(lambda: users.get(SECRET_ID))
    assert [r.attempt for r in _event(records, "retry")] == [1, 2]
    (gave_up,) = _event(records, "gave_up")
    assert (gave_up.name, gave_up.levelno) == ("portchops_models.requests", logging.WARNING)
    assert gave_up.db_operation == "GetItem"
    assert gave_up.db_table == f"{current_settings().table_prefix}users"
    assert gave_up.attempts == 3
    assert gave_up.reason == "ProvisionedThroughputExceededException"
    assert gave_up.error_type == "ThrottledError"
    assert "gave up after 3 attempt(s)" in gave_up.getMessage()


def test_batch_rounds_that_give_up_warn_once(
    proxy: FaultProxy, records: pytest.LogCaptureFixture
) -> None:
    ids = seed(10)
    users = UserRepository(cache=None, retry=fast_retry(max_attempts=3))
    proxy.faults = Faults(unprocessed=1.0, operations=frozenset({"BatchGetItem"}))
    with pytest.raises(ThrottledError):
        users.batch_get(ids)
    assert len(_event(records, "batch_retry")) == 2
    (gave_up,) = _event(records, "gave_up")
    assert gave_up.db_operation == "BatchGetItem"
    assert gave_up.outstanding == 10


def test_a_slow_request_outside_a_call_names_its_operation(
    tables: Settings, records: pytest.LogCaptureFixture
) -> None:
    configure(tables, slow_call_seconds=1e-9)
    assert User.exists()  # the model's own method: a GetItem, no repository call around it
    (slow,) = _event(records, "slow_call")
    assert slow.db_call is None
    assert slow.db_operation == "GetItem"
    assert slow.db_table == f"{tables.table_prefix}users"


def test_silent_below_the_levels_asked_for(
    proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="portchops_models")
    seed(1)
    caplog.clear()  # a seed slowed past slow_call_seconds by a loaded machine is not the get
    users = Api("sync").users(cache=None, retry=throttle_once(proxy))
    users.get(SECRET_ID)
    assert _ours(caplog) == []


def test_migrations_log_each_step_applied_and_reverted(
    tables: Settings, records: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    folder = tmp_path / "app_steps"
    folder.mkdir()
    (folder / "0001_first.py").write_text(
        '"""First."""\n\ndef up(ctx):\n    pass\n\ndef down(ctx):\n    pass\n'
    )
    console = Console(file=io.StringIO())
    try:
        upgrade(path=folder, console=console)
        downgrade("0000", path=folder, console=console)
    finally:
        delete_table(f"{tables.table_prefix}schema-migrations")
    steps = _event(records, "migration")
    assert [(r.levelno, r.migration_action) for r in steps] == [
        (logging.INFO, "applied"),
        (logging.INFO, "reverted"),
    ]
    assert all(r.name == "portchops_models.migrate" for r in steps)
    assert steps[0].migration_id.endswith("0001")

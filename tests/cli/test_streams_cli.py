"""``portchops streams run`` and ``portchops streams evict`` on moto's Streams API."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from portchops_models import UserProgress, UserProgressRepository, configure
from portchops_models.cli.main import app
from portchops_models.settings import Settings
from portchops_models.streams import Change, enable_stream

runner = CliRunner()
HANDLED: list[tuple[str, str]] = []


def remember(changes: list[Change[UserProgress]]) -> None:
    """The handler the CLI is pointed at (``tests.cli.test_streams_cli:remember``)."""
    HANDLED.extend((c.kind, c.sequence_number) for c in changes)


def test_streams_run_hands_every_change_to_the_handler(tables: Settings) -> None:
    HANDLED.clear()
    enable_stream(UserProgress)
    UserProgressRepository(cache=None).batch_save(
        [UserProgress(user_id=f"u{n}", lesson_id="l1") for n in range(7)]
    )
    args = ["streams", "run", "--model", "portchops_models:UserProgress", "--handler",
            f"{__name__}:remember", "--name", "cli", "--batch-size", "3",
            "--until-idle"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [kind for kind, _ in HANDLED] == ["insert"] * 7
    assert "cli: 7 records in 3 batches" in result.output
    again = runner.invoke(app, args)  # checkpointed: nothing the second time
    assert again.exit_code == 0, again.output
    assert len(HANDLED) == 7


@pytest.mark.parametrize(
    ("handler", "says"),
    [("nowhere", "expected package.module:function"), (f"{__name__}:HANDLED", "not callable")],
)
def test_a_bad_handler_exits_2_with_one_line(tables: Settings, handler: str, says: str) -> None:
    result = runner.invoke(
        app,
        ["streams", "run", "--model", "portchops_models:UserProgress", "--handler", handler,
         "--name", "x"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert says in result.output


def test_a_table_without_a_stream_and_a_missing_bus_are_one_line_errors(tables: Settings) -> None:
    args = ["streams", "run", "--model", "portchops_models:UserProgress", "--handler",
            f"{__name__}:remember", "--name", "x", "--until-idle"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "enable_stream(UserProgress)" in result.output
    configure(tables, cache_bus_url=None)
    evict = runner.invoke(app, ["streams", "evict", "--model", "portchops_models:UserProgress"])
    assert evict.exit_code == 1
    assert "PORTCHOPS_CACHE_BUS_URL" in evict.output

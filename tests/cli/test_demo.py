"""The demo job reads back what it wrote, and survives its fault-proxy storm."""

from __future__ import annotations

import io

from rich.console import Console

from portchops_models.cli.demo import LESSONS, USERS, run_demo


def test_run_demo_reports_what_it_did() -> None:
    buffer = io.StringIO()
    result = run_demo(Console(file=buffer, width=120), table_prefix="demo-test-")
    assert result.users == len(USERS)
    assert result.progress_rows == len(USERS) * LESSONS
    assert result.completed == 1 + 2 + 3 + 4  # user i passes lessons scored >= 70
    assert result.pages == 3  # 12 lessons, 5 a page
    assert result.cache_hits >= 2
    assert result.stormed_rows == 500
    assert result.throttles > 0
    assert result.retries >= result.throttles
    text = buffer.getvalue()
    assert "applied 0005" in text
    assert "users and their progress" in text
    assert "throttled_requests" in text

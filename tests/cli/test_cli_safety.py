"""The ``portchops`` command without surprises: busy and bad ports, confirmation before
reverting off loopback, answers from something that is not DynamoDB, an empty folder."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portchops_models import UserRepository
from portchops_models.cli import app
from portchops_models.cli.guard import is_loopback
from portchops_models.errors import NotDynamoDB, is_retryable, not_dynamodb
from portchops_models.settings import configure
from portchops_models.tables import delete_table
from portchops_models.testing.engine import LocalEngine
from portchops_models.transport.connection import current_connection

runner = CliRunner()


@pytest.fixture
def prefix(moto_engine: LocalEngine) -> Iterator[str]:
    """Settings on moto with a fresh table prefix; its tables deleted afterwards."""
    name = f"s{uuid.uuid4().hex[:10]}-"
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    yield name
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix=name)
    for table in current_connection().call("ListTables", {})["TableNames"]:
        if table.startswith(name):
            delete_table(table)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test listens on, so it is busy for anyone else."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


# --------------------------------------------------------------------------- portchops engine


def test_engine_on_a_busy_port_exits_2_at_once(held_port: int) -> None:
    result = runner.invoke(app, ["engine", "--port", str(held_port)])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: --port {held_port}: 127.0.0.1:{held_port} is already in use by another "
        "program (pick another port, or 0 for a free one)"
    ]


def test_engine_on_a_busy_port_does_not_hang_as_a_process(held_port: int) -> None:
    """The console script itself, in a child process: it ends by itself, status 2."""
    command = [sys.executable, "-c", "from portchops_models.cli import main; main()"]
    done = subprocess.run(
        [*command, "engine", "--port", str(held_port)],
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails here instead of blocking the suite
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: --port {held_port}: 127.0.0.1:{held_port} is already in use by another "
        "program (pick another port, or 0 for a free one)"
    ]


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_engine_on_an_invalid_port_exits_2_with_one_line(port: str) -> None:
    result = runner.invoke(app, ["engine", "--port", port])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: --port {port}: port {port} is not a TCP port (0 to 65535)"
    ]


def test_local_engine_refuses_a_busy_port_with_os_error(held_port: int) -> None:
    with pytest.raises(OSError, match="already in use") as info:
        LocalEngine(port=held_port).start()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- migrate down --yes


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.255.0.9:8000", True),
        ("http://[::1]:8000", True),
        ("http://localhost:8000", True),
        ("https://LOCALHOST.", True),
        (None, False),
        ("https://dynamodb.eu-west-1.amazonaws.com", False),
        ("http://10.0.0.5:8000", False),
        ("http://128.0.0.1:8000", False),
        ("http://127.0.0.1.example.com:8000", False),
        ("http://localhost.example.com:8000", False),
        ("http://[::2]:8000", False),
    ],
)
def test_what_counts_as_loopback(url: str | None, loopback: bool) -> None:
    assert is_loopback(url) is loopback


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"endpoint_url": None, "region": "eu-west-1"}, "AWS (eu-west-1)"),
        ({"endpoint_url": "http://192.0.2.7:8000"}, "http://192.0.2.7:8000"),
    ],
)
def test_down_off_loopback_needs_yes_and_sends_nothing(
    settings: dict[str, str | None], where: str
) -> None:
    # Nothing answers at either address: the refusal comes before any request.
    configure(**settings, retry_max_attempts=1, connect_timeout=0.1)

    result = runner.invoke(app, ["migrate", "down", "--to", "0000"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: migrate down --to 0000 drops tables or data on {where}, not a loopback "
        "endpoint: add --yes to confirm (--dry-run shows what would be undone)"
    ]


def test_down_on_loopback_runs_without_yes_and_with_it(prefix: str) -> None:
    assert runner.invoke(app, ["migrate", "up", "--to", "0002"]).exit_code == 0

    first = runner.invoke(app, ["migrate", "down", "--to", "0001"])
    assert first.exit_code == 0, first.output
    assert "reverted 0002" in first.stdout

    everything = runner.invoke(app, ["migrate", "down", "--to", "0000", "--yes"])
    assert everything.exit_code == 0, everything.output
    assert "reverted 0001" in everything.stdout


# --------------------------------------------------------------------------- not DynamoDB


class _Silent(http.server.BaseHTTPRequestHandler):
    """The standard library's handler: no do_POST, so every API call gets its 501 page."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain HTTP server on loopback that is not DynamoDB (HTML 501 for every POST)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _one_line(url: str) -> str:
    return (
        f"{url} answered HTTP 501 with text/html: not a DynamoDB endpoint "
        "(is PORTCHOPS_ENDPOINT_URL right?)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "status"],
        ["migrate", "up"],
        ["migrate", "down", "--to", "0000"],
        ["seed", "--users", "1"],
    ],
)
def test_a_web_server_is_reported_as_not_dynamodb_in_one_line(
    web_server: str, args: list[str]
) -> None:
    configure(endpoint_url=web_server)

    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {_one_line(web_server)}"]
    assert "<html" not in result.output.lower()


def test_not_dynamodb_is_not_retried_and_keeps_its_facts(web_server: str) -> None:
    configure(endpoint_url=web_server)  # the default policy: 8 attempts if it retried

    with pytest.raises(NotDynamoDB) as info:
        UserRepository(cache=None).get("u-1")

    err = info.value
    assert str(err) == _one_line(web_server)
    assert (err.endpoint, err.status, err.content_type) == (web_server, 501, "text/html")
    assert err.attempts == 1
    cause = err.__cause__
    assert cause is not None
    assert not is_retryable(cause)
    assert not_dynamodb(cause) is not None


class _Welcome(http.server.BaseHTTPRequestHandler):
    """A web server that answers every POST with 200 and an HTML page."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        page = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_200_html_page_is_not_dynamodb_either() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Welcome)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        configure(endpoint_url=url)
        with pytest.raises(NotDynamoDB) as info:
            UserRepository(cache=None).get("u-1")  # never "no such item"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert str(info.value) == _one_line(url).replace("HTTP 501", "HTTP 200")
    assert info.value.attempts == 1


def test_answers_from_the_engines_are_dynamodb_ones(prefix: str) -> None:
    """moto's errors carry a request id: they stay ordinary DynamoDB errors."""
    with pytest.raises(Exception, match="not found") as info:
        current_connection().call("GetItem", {"TableName": "nope", "Key": {"k": {"S": "v"}}})
    assert not_dynamodb(info.value) is None


# --------------------------------------------------------------------------- migrate up --path


def test_up_from_an_empty_folder_says_there_is_nothing_to_apply(
    prefix: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["migrate", "up", "--path", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert " ".join(result.stdout.split()) == (
        f"nothing to apply: no migrations (NNNN_*.py) in {tmp_path}"
    )

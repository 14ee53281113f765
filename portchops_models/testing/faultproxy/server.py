"""`FaultProxy`: the listening server, its lifecycle, random draws and counting."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import selectors
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit

from .batches import BatchPlan, plan_batch
from .connection import ClientConnection
from .faults import Faults, Outcome
from .http import Request
from .seen import Fault, RequestLog, SeenRequest
from .stats import Counters, ProxyStats

__all__ = ["FaultProxy"]

_log = logging.getLogger(__package__)  # the package's logger, "portchops_models.testing.faultproxy"


class FaultProxy:
    """A fault-injecting HTTP proxy on loopback in front of a DynamoDB-compatible engine.

    A context manager: ``with FaultProxy(upstream=url, faults=Faults(...), seed=1) as p:``
    then point clients at ``p.endpoint_url``.

    Args:
        upstream: the engine's ``http://host:port`` URL.
        faults: the initial faults (none by default); see `faults`.
        seed: seeds the proxy's random draws (None: unseeded).
        host: the address to bind; loopback by default.
        port: the port to bind; 0 (the default) picks a free one.
        upstream_timeout: socket timeout, in seconds, towards the engine.
        request_log_size: how many of the latest requests `seen` keeps
            (0: none).
    """

    def __init__(
        self,
        upstream: str,
        *,
        faults: Faults | None = None,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 60.0,
        request_log_size: int = 10_000,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"upstream must not have a path or query, got {upstream!r}")
        self.upstream = upstream
        """The engine's URL, as given."""
        self.upstream_timeout = upstream_timeout
        """Socket timeout, in seconds, towards the engine."""
        self.host = host
        """The bound address."""
        self.port = port
        """The bound port (the real one once started)."""
        self._requested_port = port
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_netloc = parts.netloc
        self._faults = faults if faults is not None else Faults()
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._counters = Counters()
        self._seen = RequestLog(request_log_size)
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._running = False
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[ClientConnection] = set()
        self._accepted = 0
        #: requests faults applied to since they were set (for `Faults.html_error_every`).
        self._applied = 0

    # -- public API --------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running proxy."""
        if not self._running:
            raise RuntimeError("the proxy is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the proxy is accepting connections."""
        return self._running

    @property
    def faults(self) -> Faults:
        """The faults in force; assign a new `Faults` to change them (thread-safe)."""
        with self._random_lock:
            return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, got {type(faults).__name__}")
        with self._random_lock:
            self._faults = faults
            self._applied = 0

    @property
    def stats(self) -> ProxyStats:
        """A consistent snapshot of the counters."""
        with self._counters.lock:
            return self._counters.snapshot()

    @property
    def seen(self) -> tuple[SeenRequest, ...]:
        """A snapshot of the latest requests (``request_log_size`` at most), oldest first.

        Every request is there, faulted or not, in the order the proxy handled
        it (after any latency), with its operation, headers and raw body.
        """
        return self._seen.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and empty `seen`.

        ``open_connections`` stays; ``peak_connections`` restarts from it.
        """
        with self._counters.lock:
            self._counters.reset()
        self._seen.clear()

    def start(self) -> FaultProxy:
        """Bind and start serving (idempotent); returns self."""
        with self._lifecycle:
            if self._running:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.host, self._requested_port))
                listener.listen(256)
                listener.setblocking(False)
            except BaseException:
                listener.close()
                raise
            self.host, self.port = listener.getsockname()[:2]
            self._listener = listener
            self._wake = socket.socketpair()
            self._stopping.clear()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"faultproxy-{self.port}-accept", daemon=True
            )
            self._running = True
            self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and join every thread (idempotent)."""
        with self._lifecycle:
            if not self._running:
                return
            self._running = False
            self._stopping.set()
            assert self._wake is not None
            assert self._listener is not None
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
            if self._accept_thread is not None:
                self._accept_thread.join()
                self._accept_thread = None
            self._listener.close()
            self._listener = None
            for sock in self._wake:
                sock.close()
            self._wake = None
            with self._counters.lock:
                connections = list(self._connections)
            for connection in connections:
                connection.interrupt()
            for connection in connections:
                connection.thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on {self.host}:{self.port}" if self._running else "stopped"
        return f"<FaultProxy {state} -> {self.upstream} {self._faults!r}>"

    # -- internals ---------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake
        assert listener is not None
        assert wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake[0]:
                        return
                    try:
                        sock, _addr = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        if self._stopping.is_set():
                            return
                        _log.warning("fault proxy: accept failed", exc_info=True)
                        continue
                    self._start_connection(sock)

    def _start_connection(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._accepted += 1
        connection = ClientConnection(self, sock, self._accepted)
        counters = self._counters
        with counters.lock:
            counters.connections_opened += 1
            counters.open_connections += 1
            counters.peak_connections = max(counters.peak_connections, counters.open_connections)
            self._connections.add(connection)
        connection.thread.start()

    def _connection_closed(self, connection: ClientConnection) -> None:
        counters = self._counters
        with counters.lock:
            if connection in self._connections:
                self._connections.discard(connection)
                counters.open_connections -= 1

    def _draw_delay(self, faults: Faults) -> float:
        if faults.latency_jitter > 0:
            with self._random_lock:
                return faults.latency + self._random.uniform(0.0, faults.latency_jitter)
        return faults.latency

    def _take_html_error(self, faults: Faults) -> bool:
        """Count one request that faults apply to; whether it is an Nth (an HTML error)."""
        with self._random_lock:
            self._applied += 1
            every = faults.html_error_every
            return every > 0 and self._applied % every == 0

    def _draw_outcome(self, faults: Faults) -> Outcome:
        if not faults.draws_outcomes:
            return "forward"
        with self._random_lock:
            draw = self._random.random()
        return faults.outcome(draw)

    def _record(self, request: Request, outcome: Outcome | Fault) -> None:
        fault = None if outcome == "forward" else outcome
        headers = tuple(request.headers)
        self._seen.add(
            SeenRequest(
                request.operation, request.method, request.target, headers, request.body, fault
            )
        )

    def _plan_batch(self, operation: str, body: bytes, fraction: float) -> BatchPlan | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        with self._random_lock:
            rng = self._random
            return plan_batch(operation, payload, lambda: rng.random() < fraction)

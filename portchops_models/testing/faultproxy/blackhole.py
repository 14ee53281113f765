"""`DroppedSyns`: a loopback port where connecting never completes, as behind a dropping firewall.

A peer whose SYNs are dropped (a firewall's DROP rule, a host that is down, a
security group that does not allow the port) never completes the TCP handshake:
``connect()`` waits until its timeout, with no answer and no refusal. On Linux
that needs no root and no network namespace: a listening socket with a backlog
of 0 that is never accepted holds one connection in its accept queue; with that
queue full the kernel drops every further SYN (``tcp_abort_on_overflow`` is off
by default: it drops rather than resets). `DroppedSyns` fills the queue itself
and checks that a further connection does hang before it hands out its URL.

Example:
    >>> import socket
    >>> with DroppedSyns() as silent:
    ...     probe = socket.create_connection((silent.host, silent.port), timeout=0.2)
    Traceback (most recent call last):
    ...
    TimeoutError: timed out
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from types import TracebackType

__all__ = ["DroppedSyns"]

#: How long a probe connection may take before it counts as hung (loopback completes in µs).
_HUNG = 0.1
#: The most connections the kernel may complete before the accept queue is full.
_MOST_QUEUED = 16


class DroppedSyns:
    """A loopback port that drops every SYN: connections to it never complete.

    A context manager: ``with DroppedSyns() as silent:`` then point a client at
    ``silent.endpoint_url``; on exit every socket is closed.

    Args:
        host: the address to bind; loopback by default.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        """The bound address."""
        self.port = 0
        """The bound port (once started)."""
        self._listener: socket.socket | None = None
        self._queued: list[socket.socket] = []

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: connecting to it times out."""
        if self._listener is None:
            raise RuntimeError("DroppedSyns is not started; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    def start(self) -> DroppedSyns:
        """Listen, fill the accept queue, and check that the next connection hangs.

        Raises:
            RuntimeError: the kernel kept completing connections (not Linux's behaviour).
        """
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(0)
            self.host, self.port = listener.getsockname()[:2]
            for _ in range(_MOST_QUEUED):
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probe.setblocking(False)
                probe.connect_ex((self.host, self.port))
                with selectors.DefaultSelector() as selector:
                    selector.register(probe, selectors.EVENT_WRITE)
                    connected = bool(selector.select(_HUNG))
                if not connected:  # its SYN was dropped: the queue is full
                    probe.close()
                    break
                self._queued.append(probe)
            else:
                raise RuntimeError(
                    f"{_MOST_QUEUED} connections to a never-accepting port all completed: "
                    "this kernel does not drop SYNs when the accept queue is full"
                )
        except BaseException:
            for sock in self._queued:
                sock.close()
            self._queued.clear()
            listener.close()
            raise
        self._listener = listener
        return self

    def stop(self) -> None:
        """Close the listener and the queued connections (idempotent)."""
        for sock in self._queued:
            with contextlib.suppress(OSError):
                sock.close()
        self._queued.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> DroppedSyns:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on {self.host}:{self.port}" if self._listener is not None else "stopped"
        return f"<DroppedSyns {state}>"

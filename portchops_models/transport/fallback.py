"""botocore's own request path under the call's deadline, as far as botocore allows.

Calls go through the connection's botocore client instead of the lean path when
botocore would use an HTTP proxy (`Transport.fallback`), and ``conn.client`` is
there for code that wants botocore itself. `bound` makes that client honour the
deadline in force (`portchops_models.transport.deadline`), per attempt:

- **the read timeout** is cut to the time left, through botocore's own per-request
  override (``request.context["read_timeout"]``, read by its HTTP session); a
  request is not sent at all once the deadline has passed (`CallTimeout`);
- **connecting** gets the time left: botocore has no per-request connect timeout,
  so the client's urllib3 connection classes are botocore's own, subclassed to cut
  their timeout before they connect;
- **the answer as a whole** (headers and body, however slowly they come) is read by
  the deadline: those connections read through `BoundedResponse`, as the lean
  path does;
- **waiting for a pooled connection** (the pool blocks when every connection is
  busy) stops at the deadline instead of waiting without bound.

The last three replace the connection-pool classes of the client's HTTP session
(``_pool_classes_by_scheme``, private to botocore, in place since botocore 1.11):
when a botocore version no longer has them, `bound` says so by returning False and
only the read timeout is cut (each read, not the answer as a whole, is bounded then).
A TLS handshake is bounded by the time left when it starts, per read.
"""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from . import deadline
from .bounded import BoundedResponse

__all__ = ["bound"]

#: The smallest timeout given to a socket: urllib3 treats 0 as "non-blocking".
_TINY = 0.001


def bound(client: Any) -> bool:
    """Make `client` (a botocore client) honour the deadline in force; see the module.

    Returns:
        Whether connecting, the answer as a whole and pool waits are bounded too
        (False: botocore's internals are not the expected ones, only the read
        timeout is cut).
    """
    client.meta.events.register(
        "before-send.dynamodb", _cut_read_timeout, unique_id="portchops-deadline"
    )
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(session, "_pool_classes_by_scheme", None)
    manager = getattr(session, "_manager", None)
    if not isinstance(classes, dict) or classes.get("http") not in (
        AWSHTTPConnectionPool,
        BoundedHTTPConnectionPool,
    ):
        return False
    # The session's pool manager and its proxy managers (made later) share this dict.
    classes["http"] = BoundedHTTPConnectionPool
    classes["https"] = BoundedHTTPSConnectionPool
    if manager is not None and getattr(manager, "pool_classes_by_scheme", None) is not classes:
        manager.pool_classes_by_scheme = classes
    return True


def _cut_read_timeout(request: Any, **_: Any) -> None:
    """Cut this attempt's read timeout to the time left before the call's deadline."""
    left = deadline.remaining()
    if left is None:
        return
    if left <= 0:
        raise deadline.timeout_error("answer")
    configured = request.context.get("client_config")
    read_timeout = getattr(configured, "read_timeout", None) or left
    if left < read_timeout:
        request.context["read_timeout"] = max(left, _TINY)


def _cut_connect_timeout(connection: Any) -> None:
    """Cut a connection's timeout (about to connect) to the time left."""
    left = deadline.remaining()
    if left is not None:
        timeout = connection.timeout
        if not isinstance(timeout, int | float) or timeout > left:
            connection.timeout = max(left, _TINY)


def _pool_wait(timeout: float | None) -> float | None:
    """How long a pool may wait for a busy connection: at most the time left."""
    left = deadline.remaining()
    if left is None:
        return timeout
    left = max(left, _TINY)
    return left if timeout is None else min(timeout, left)


class BoundedHTTPConnection(AWSHTTPConnection):
    """botocore's HTTP connection: connects within the time left, reads by the deadline."""

    # botocore-stubs type it as botocore's AWSHTTPResponse; at run time it is http.client's.
    response_class = BoundedResponse  # type: ignore[assignment]

    def connect(self) -> None:
        """Connect, within the connect timeout and the time left."""
        _cut_connect_timeout(self)
        super().connect()


class BoundedHTTPSConnection(AWSHTTPSConnection):
    """botocore's HTTPS connection: connects within the time left, reads by the deadline."""

    response_class = BoundedResponse  # type: ignore[assignment]

    def connect(self) -> None:
        """Connect (TLS handshake included), within the connect timeout and the time left."""
        _cut_connect_timeout(self)
        super().connect()


class BoundedHTTPConnectionPool(AWSHTTPConnectionPool):
    """botocore's HTTP connection pool: `BoundedHTTPConnection`, waits bounded."""

    ConnectionCls = BoundedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return super()._get_conn(_pool_wait(timeout))


class BoundedHTTPSConnectionPool(AWSHTTPSConnectionPool):
    """botocore's HTTPS connection pool: `BoundedHTTPSConnection`, waits bounded."""

    ConnectionCls = BoundedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return super()._get_conn(_pool_wait(timeout))

"""The lean request path: serialise, sign, send on a kept-alive connection, parse.

botocore's per-call path (event hooks, the serializer's shape walk, endpoint
rules, urllib3) costs about 1,100 µs of CPU per GetItem; this path makes the
same request (same URL, headers, SigV4 signature and body bytes: pinned by
tests/transport/test_transport.py) and returns the same answer, or raises the same
botocore exception, for about a quarter of that. Every `Connection.call` goes
through it; the botocore client stays for anything that asks for
``conn.client`` itself. See docs/transport.md for what was measured.

Parts, one concept a module:

- `codec`: pure, no I/O. ``encode_request(operation, params, *, endpoint,
  region, credentials, now=None) -> HttpRequest`` and
  ``decode_response(operation, status, headers, body, *, service=None) -> dict``
  (``x-amz-crc32`` checked; errors raised as botocore's ``ClientError``).
- `signing`: SigV4 with a signing key cached per (secret, day, region).
- `http11`: the request in one piece, an answer's head split by hand, how its
  body ends; `assembler`: `Assembler`, one answer from its bytes as they arrive
  (both pools read answers with it).
- `pool`: `HttpPool`, kept-alive ``http.client`` connections for threads.
- `bounded`: `BoundedResponse`, ``http.client``'s answer read by the call's
  deadline as a whole (headers and body), not per socket read.
- `link`: `Link`, one kept-alive connection for coroutines (an asyncio
  protocol): the request in one write, the answer assembled as it arrives.
- `aio`: `AsyncPool`, a set of `Link`s per running event loop.
- `gate`: `FairGate`, the async pool's connection slots, handed out in the
  order the calls began (no newcomer takes a connection a waiter is owed).
- `client`: `Transport`, the above bound to one connection's botocore client.
- `fallback`: botocore's own path (behind an HTTP proxy, or ``conn.client``)
  under the same deadline, as far as botocore allows.

The async API (for `portchops_models.aio`)::

    conn = current_connection()
    response = await conn.transport.call_async("GetItem", params)

``Transport.call_async(operation, params) -> dict`` is `Transport.call` for
coroutines: the same request and answer, the same exceptions (botocore's
``ClientError``, ``EndpointConnectionError``, ``ConnectTimeoutError``,
``ReadTimeoutError``, ``ConnectionClosedError``, ``ChecksumError``). Under the
`portchops_models.transport.deadline` in force, on both sides, the wait for a connection
and connecting end by it (`CallTimeout` with ``waited_for="connection"``, async),
and the answer, headers and body, is read by it as a whole (``ReadTimeoutError``
once it passes, however slowly the bytes come).
It works under any event loop; ``await conn.transport.aclose()`` closes the
running loop's connections, which otherwise close when its loop shuts down.
Retries, metrics and translation stay with the caller (`Connection.send_async`).
"""

from __future__ import annotations

from .client import Transport
from .codec import LEAN_OPERATIONS, HttpRequest, Service, decode_response, encode_request
from .pool import HttpPool

__all__ = [
    "LEAN_OPERATIONS",
    "HttpPool",
    "HttpRequest",
    "Service",
    "Transport",
    "decode_response",
    "encode_request",
]

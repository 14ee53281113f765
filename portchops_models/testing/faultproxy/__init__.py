"""A fault-injecting loopback HTTP proxy for DynamoDB-compatible engines.

`FaultProxy` listens on ``127.0.0.1`` (a free port by default) and forwards
every request to an upstream engine (moto's server, dynalite, ...). On the
way it can add latency, answer throttling or server errors itself, drop
connections, lose the engine's answer after a write has landed, hang without
answering, send answers a byte at a time (headers or body), answer every Nth
request with a load balancer's HTML 5xx page (no request id), and turn parts
of ``BatchGetItem``/``BatchWriteItem`` requests into
``UnprocessedKeys``/``UnprocessedItems`` - the faults real DynamoDB (and what
stands in front of it) produces and local engines never do. It counts what it did (`ProxyStats`),
including client connections, so connection-pool reuse can be measured, and
keeps the latest requests it saw (`FaultProxy.seen`, `SeenRequest`).

Standard library only; one thread per client connection, HTTP/1.1 keep-alive
towards the client whatever the upstream does (moto closes every
connection, dynalite keeps them open: both work). Draws come from one seeded
`random.Random`, so a sequential run is reproducible.

Examples:
    >>> import botocore.session
    >>> from portchops_models.testing.engine import LocalEngine
    >>> from portchops_models.testing.faultproxy import FaultProxy, Faults
    >>> with LocalEngine() as engine, FaultProxy(
    ...     upstream=engine.endpoint_url, faults=Faults(throttle=0.2, latency=0.005), seed=1
    ... ) as proxy:
    ...     client = botocore.session.get_session().create_client(
    ...         "dynamodb", region_name="us-east-1", endpoint_url=proxy.endpoint_url,
    ...         aws_access_key_id="x", aws_secret_access_key="x",
    ...     )
    ...     names = client.list_tables()["TableNames"]  # retried by botocore if throttled
    ...     proxy.faults = Faults(unprocessed=0.5, operations=frozenset({"BatchWriteItem"}))
    ...     throttled = proxy.stats.throttled

For a peer that never completes the TCP handshake (SYNs dropped), `DroppedSyns`
is a loopback port that does just that, with no root.

Notes:
    * Requests without an ``X-Amz-Target`` header (e.g. moto's
      ``/moto-api/reset``) are always forwarded untouched.
    * A request whose body the proxy rewrites (partial batches) no longer
      matches its SigV4 signature; local engines do not check signatures.
    * Batches over DynamoDB's limits (100 keys, 25 write requests) are
      forwarded whole, so the engine answers with its own validation error.
"""

from .blackhole import DroppedSyns
from .faults import Faults, ThrottleCode
from .seen import SeenRequest
from .server import FaultProxy
from .stats import ProxyStats

__all__ = ["DroppedSyns", "FaultProxy", "Faults", "ProxyStats", "SeenRequest", "ThrottleCode"]

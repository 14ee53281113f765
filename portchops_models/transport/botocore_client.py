"""The botocore client of a configuration: built once per `Settings`, tuned for the layer.

SDK retries are off (one attempt: `portchops_models.transport.retry` owns retries,
so the two layers cannot multiply); parameter validation is off (the layer checks
before the wire); the urllib3 pool blocks instead of overflowing, so open
connections never exceed ``max_pool_connections``; reads are parsed with one
``json.loads`` (`wire`); and under a deadline botocore's own path connects within
the time left and reads each answer by it (`fallback`).
"""

from __future__ import annotations

from typing import Any, cast

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials

from ..settings import Settings
from . import fallback
from .wire import install as install_parser

__all__ = ["build_client"]

# Credentials used only against a local engine (endpoint_url set) when none are found.
_LOCAL_CREDENTIALS = Credentials("local", "local")


def build_client(settings: Settings, service: str = "dynamodb") -> BaseClient:
    """The botocore client for `settings` (see the module docstring): DynamoDB's, or
    with ``service="dynamodbstreams"`` its Streams API's (same endpoint when
    ``endpoint_url`` is set, the regional streams endpoint otherwise)."""
    session = botocore.session.get_session()
    if settings.endpoint_url is not None and session.get_credentials() is None:
        session.set_credentials(_LOCAL_CREDENTIALS.access_key, _LOCAL_CREDENTIALS.secret_key)
    config = Config(
        region_name=settings.region,
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=False,  # we validate before the wire; botocore's walk is slow
        tcp_keepalive=True,
    )
    client = session.create_client(
        service,
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=config,
    )
    # botocore exposes no pool_block option: set it on the pool manager so that
    # pools created from now on block instead of overflowing.
    manager = cast(Any, client)._endpoint.http_session._manager
    manager.connection_pool_kw["block"] = True
    install_parser(client)
    # Under a deadline, botocore's own path (a proxy's, or ``conn.client``'s) connects
    # within the time left and reads each answer by the deadline, as the lean path does.
    fallback.bound(client)
    return client

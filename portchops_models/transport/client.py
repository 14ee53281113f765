"""`Transport`: one connection's request path, sync and async, beside its botocore client."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectTimeoutError

from ..errors import RELAYED
from . import deadline
from .bounded import SLACK
from .codec import HttpRequest, Service, decode_response, encode_request
from .pool import HttpPool, default_ssl

if TYPE_CHECKING:
    from .aio import AsyncPool

__all__ = ["Transport"]


class Transport:
    """Sign, send on a kept-alive connection, parse: botocore's answers at a quarter of the CPU.

    Built from the connection's botocore client (`for_client`), so the endpoint,
    region, credentials (botocore's chain, refreshed by botocore), certificate
    verification and error classes are the client's own. When botocore would go
    through an HTTP proxy (``HTTPS_PROXY`` or the client's ``proxies``), calls
    go through the client instead: this path speaks to the endpoint directly.

    Args:
        endpoint: the endpoint URL.
        region: the region signed for.
        credentials: botocore credentials (``None``: every call raises ``NoCredentialsError``).
        connect_timeout: seconds to open a connection (cut to a deadline's time left).
        read_timeout: seconds to wait for each read of an answer (a deadline bounds the
            whole answer).
        max_connections: connections kept (sync) and open per event loop (async).
        service: botocore's DynamoDB model and exception classes (default: the process's).
        ssl_context: for ``https`` (default: botocore's certificate bundle).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        credentials: Credentials | None,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        service: Service | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.service = service or Service.default()
        self._ssl = ssl_context
        self.pool = HttpPool(
            endpoint,
            maxsize=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            ssl_context=ssl_context,
        )
        self._aio: AsyncPool | None = None
        #: botocore's own call, used instead when botocore would go through a proxy.
        self.fallback: Any = None
        #: whether the endpoint has answered as DynamoDB (with a request id) yet: from
        #: then on an answer without one is a relayed error, not `NotDynamoDB`.
        self.answered = False

    @classmethod
    def for_client(cls, client: Any, *, max_connections: int) -> Transport:
        """The transport for a botocore DynamoDB client: its endpoint, credentials and config."""
        from botocore.utils import get_environ_proxies

        config = client.meta.config
        endpoint: str = client.meta.endpoint_url
        transport = cls(
            endpoint=endpoint,
            region=client.meta.region_name,
            credentials=client._request_signer._credentials,
            connect_timeout=float(config.connect_timeout),
            read_timeout=float(config.read_timeout),
            max_connections=max_connections,
            service=Service.of(client),
            ssl_context=_ssl_for(getattr(client._endpoint.http_session, "_verify", True), endpoint),
        )
        if config.proxies or get_environ_proxies(endpoint):
            transport.fallback = client._make_api_call
        return transport

    def encode(self, operation: str, params: dict[str, Any]) -> HttpRequest:
        """The signed request for one call (pure but for the clock and credentials)."""
        return encode_request(
            operation,
            params,
            endpoint=self.endpoint,
            region=self.region,
            credentials=self.credentials,
            target_prefix=self.service.target_prefix,
        )

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One API call, answered as botocore's ``client._make_api_call`` answers it.

        Under the deadline in force, connecting gets the time left and the answer
        (headers and body) is read by the deadline, as a whole.

        Raises:
            CallTimeout: the deadline had passed before the request was sent.
            botocore.exceptions.ClientError: DynamoDB answered an error (or something
                between: see `answered`).
            botocore.exceptions.ConnectionError: connecting or reading failed, or the
                deadline passed meanwhile (``ConnectTimeoutError``, ``ReadTimeoutError``).
        """
        if self.fallback is not None:
            return self._call_botocore(operation, params)
        if deadline.expired():
            raise deadline.timeout_error(
                "answer", table=params.get("TableName"), operation=operation
            )
        status, headers, body = self.pool.send(self.encode(operation, params))
        if not self.answered and "x-amzn-requestid" in headers:
            self.answered = True
        try:
            return decode_response(operation, status, headers, body, service=self.service)
        except ClientError as err:
            self._relayed(err)
            raise

    async def call_async(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`call` for coroutines, on the running loop's connections (any loop).

        Under the deadline in force, the wait for a connection, connecting, and
        reading the answer (as a whole) all end by it.

        Raises:
            CallTimeout: the deadline passed before the request was sent, or while
                waiting for a connection (``waited_for="connection"``).
        """
        if self.fallback is not None:
            return await self._call_botocore_async(operation, params)
        if deadline.expired():
            raise deadline.timeout_error(
                "answer", table=params.get("TableName"), operation=operation
            )
        request = self.encode(operation, params)
        try:
            status, headers, body = await self.aio.send(request)
        except ConnectTimeoutError:
            if deadline.expired():  # every connection busy, or none opened, until the deadline
                raise deadline.timeout_error(
                    "connection", table=params.get("TableName"), operation=operation
                ) from None
            raise
        if not self.answered and "x-amzn-requestid" in headers:
            self.answered = True
        try:
            return decode_response(operation, status, headers, body, service=self.service)
        except ClientError as err:
            self._relayed(err)
            raise

    def _call_botocore(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The call through botocore's client (`fallback`), bounded as botocore allows.

        See `portchops_models.transport.fallback` for what is bounded there.
        """
        try:
            response: dict[str, Any] = self.fallback(operation, params)
        except ClientError as err:
            self._relayed(err)
            raise
        if not self.answered:
            self.answered = "RequestId" in response.get("ResponseMetadata", {})
        return response

    async def _call_botocore_async(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`_call_botocore` on a thread; the awaiting task stops at the deadline.

        A thread cannot be stopped: one still waiting for a worker or an answer
        at the deadline is left to end by itself (its socket reads are bounded by the
        same deadline, and it sends nothing once that has passed).
        """
        call = deadline.propagate(self._call_botocore)
        left = deadline.remaining()
        work = asyncio.to_thread(call, operation, params)
        if left is None:
            return await work
        try:
            return await asyncio.wait_for(work, max(left, 0.001) + SLACK)
        except TimeoutError:
            raise deadline.timeout_error(
                "answer", table=params.get("TableName"), operation=operation
            ) from None

    def _relayed(self, err: ClientError) -> None:
        """Note whether an error answer came from DynamoDB, or from something between.

        An answer with a request id is DynamoDB's (the endpoint has answered as
        DynamoDB). One without, from an endpoint that has, came from a proxy or a
        load balancer in front of it (an HTML 503 page): it is marked relayed
        (`errors.RELAYED`), so that it is a server error (retried when 5xx)
        instead of `NotDynamoDB`, which stays for endpoints that never answered.
        """
        meta = err.response.get("ResponseMetadata")
        if not isinstance(meta, dict):
            return
        headers = meta.get("HTTPHeaders") or {}
        if "x-amzn-requestid" in headers or "RequestId" in meta:
            self.answered = True
        elif self.answered:
            meta[RELAYED] = True

    @property
    def aio(self) -> AsyncPool:
        """The async pool (made on first use)."""
        if self._aio is None:
            from .aio import AsyncPool

            self._aio = AsyncPool(
                self.endpoint,
                limit=self.max_connections,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                ssl_context=self._ssl,
            )
        return self._aio

    async def aclose(self) -> None:
        """Close the running loop's async connections (the sync pool stays)."""
        if self._aio is not None:
            await self._aio.aclose()

    def close(self) -> None:
        """Close the idle connections and every loop's async connections (each on its own loop)."""
        self.pool.close()
        if self._aio is not None:
            self._aio.close()


def _ssl_for(verify: object, endpoint: str) -> ssl.SSLContext | None:
    """The TLS context matching botocore's ``verify`` (True, False or a bundle's path)."""
    if not endpoint.startswith("https:"):
        return None
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return default_ssl()

"""HTTPS, as against DynamoDB itself: both pools verify the certificate and speak TLS.

A `TlsFront` ends TLS on loopback with its own certificate and pipes the bytes to
moto. The certificate is trusted the way botocore is told to trust one
(``AWS_CA_BUNDLE``); without it, neither API sends a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from portchops_models import ConfigurationError, User, UserRepository, configure
from portchops_models.aio import AsyncUserRepository
from portchops_models.settings import Settings
from portchops_models.testing.tls import TlsFront
from portchops_models.transport.connection import current_connection


@pytest.fixture
def front(tables: Settings) -> Iterator[TlsFront]:
    assert tables.endpoint_url is not None
    with TlsFront(tables.endpoint_url) as tls:
        yield tls


def test_both_apis_speak_tls_to_a_trusted_endpoint(
    tables: Settings, front: TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", front.ca_file)
    configure(tables, endpoint_url=front.endpoint_url)
    UserRepository(cache=None).save(User(user_id="tls1", email="t@example.com", name="T"))

    async def main() -> str:
        users = AsyncUserRepository(cache=None)
        await users.save(User(user_id="tls2", email="u@example.com", name="U"))
        return (await users.get("tls1")).name

    assert asyncio.run(main()) == "T"
    assert UserRepository(cache=None).get("tls2").name == "U"
    assert current_connection().transport.aio.opened >= 1  # through the async pool's own TLS


def test_an_untrusted_certificate_is_a_typed_error_and_nothing_is_sent(
    tables: Settings, front: TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    configure(tables, endpoint_url=front.endpoint_url, retry_max_attempts=1)
    with pytest.raises(ConfigurationError, match="TLS certificate is not trusted"):
        UserRepository(cache=None).save(User(user_id="tls3", email="t@example.com", name="T"))

    async def main() -> None:
        await AsyncUserRepository(cache=None).save(
            User(user_id="tls4", email="u@example.com", name="U")
        )

    with pytest.raises(ConfigurationError, match="TLS certificate is not trusted"):
        asyncio.run(main())
    configure(tables)
    assert UserRepository(cache=None).find("tls3") is None
    assert UserRepository(cache=None).find("tls4") is None

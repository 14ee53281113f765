"""The exception tree and the translation of botocore errors."""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

import portchops_models
from portchops_models import UserRepository
from portchops_models.errors import (
    ConditionFailed,
    ConfigurationError,
    EndpointUnreachable,
    InvalidRequest,
    ItemNotFound,
    NoCredentials,
    PortChopsError,
    ServiceError,
    TableNotFound,
    ThrottledError,
    translate,
)
from portchops_models.settings import configure
from tests.conftest import fast_retry


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetItem",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ConditionalCheckFailedException", 400, ConditionFailed),
        ("ResourceNotFoundException", 400, TableNotFound),
        ("ValidationException", 400, InvalidRequest),
        ("ProvisionedThroughputExceededException", 400, ThrottledError),
        ("ThrottlingException", 400, ThrottledError),
        ("InternalServerError", 500, ThrottledError),
        ("AccessDeniedException", 400, ServiceError),
    ],
)
def test_codes_map_to_the_tree(code: str, status: int, expected: type[PortChopsError]) -> None:
    err = translate(_client_error(code, status), table="t")
    assert type(err) is expected
    assert err.code == code
    assert err.table == "t"


def test_every_error_is_a_portchops_error_and_exported() -> None:
    for cls in (
        ConditionFailed,
        ConfigurationError,
        EndpointUnreachable,
        InvalidRequest,
        ItemNotFound,
        NoCredentials,
        ServiceError,
        TableNotFound,
        ThrottledError,
    ):
        assert issubclass(cls, PortChopsError)
        assert getattr(portchops_models, cls.__name__) is cls
    assert issubclass(InvalidRequest, ValueError)
    assert issubclass(EndpointUnreachable, ThrottledError)


def test_missing_credentials_get_a_hint() -> None:
    err = translate(NoCredentialsError())
    assert isinstance(err, NoCredentials)
    assert "PORTCHOPS_ENDPOINT_URL" in str(err)


def test_unreachable_endpoint_is_retried_then_named() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(EndpointUnreachable) as info:
        UserRepository(cache=None, retry=fast_retry(max_attempts=3)).get("u1")
    assert info.value.attempts == 3
    assert f"127.0.0.1:{port}" in str(info.value)
    assert isinstance(info.value.__cause__, EndpointConnectionError)

"""`MigrationError`, and turning setup failures (no credentials, no endpoint) into hints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import EndpointUnreachable, PortChopsError, error_chain, no_credentials
from ..settings import current_settings


class MigrationError(PortChopsError):
    """A migration could not be planned, applied or undone; the message is one line."""


def _setup_error(err: BaseException) -> PortChopsError | None:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import NoCredentialsError

    for cause in error_chain(err):
        if isinstance(cause, NoCredentialsError):
            return no_credentials()
        if isinstance(cause, BotoConnectionError):
            settings = current_settings()
            where = settings.endpoint_url or f"AWS ({settings.region})"
            return EndpointUnreachable(
                f"cannot reach DynamoDB at {where}: start the engine (`portchops engine`), "
                "or set PORTCHOPS_ENDPOINT_URL or AWS credentials"
            )
    return None


@contextmanager
def connection_errors() -> Iterator[None]:
    """Turn missing credentials and an unreachable endpoint into `NoCredentials` /
    `EndpointUnreachable` (with a hint), wherever in the cause chain they are."""
    try:
        yield
    except Exception as err:
        converted = _setup_error(err)
        if converted is None:
            raise
        raise converted from err


def _one_line(err: BaseException) -> str:
    text = err.message if isinstance(err, PortChopsError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())

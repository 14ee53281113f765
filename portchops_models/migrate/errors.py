"""`MigrationError`, and turning setup failures (no credentials, no endpoint) into hints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import EndpointUnreachable, NoCredentials, PortChopsError
from ..settings import current_settings


class MigrationError(PortChopsError):
    """A migration could not be planned, applied or undone; the message is one line."""


def _setup_error(err: BaseException) -> PortChopsError | None:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import NoCredentialsError

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NoCredentialsError):
            return NoCredentials(
                "no AWS credentials found: set PORTCHOPS_ENDPOINT_URL for a local engine, "
                "or AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(cause, BotoConnectionError):
            settings = current_settings()
            where = settings.endpoint_url or f"AWS ({settings.region})"
            return EndpointUnreachable(
                f"cannot reach DynamoDB at {where}: start the engine (`portchops engine`), "
                "or set PORTCHOPS_ENDPOINT_URL or AWS credentials"
            )
        nxt = cause.__cause__ or getattr(cause, "cause", None)
        cause = nxt if isinstance(nxt, BaseException) else None
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

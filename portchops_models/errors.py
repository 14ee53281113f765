"""The exception tree, and the translation from botocore and PynamoDB errors.

Every error that crosses the public API is a `PortChopsError`::

    PortChopsError
     ├── ConfigurationError      bad settings (also a ValueError)
     │    └── NoCredentials      no AWS credentials and no local endpoint
     ├── ItemNotFound            get() of a key that is not stored
     ├── TableNotFound           the table does not exist (says how to create it)
     ├── ConditionFailed         a condition or an optimistic-lock version check failed
     ├── InvalidRequest          bad key, item too large, bad cursor... (a ValueError)
     │    └── IdempotentParameterMismatch   a transaction token reused for other operations
     ├── TransactionCanceled     a transaction was canceled, nothing applied (``.reasons``)
     └── ServiceError            DynamoDB could not serve the request
          ├── CallTimeout        the call ran past ``call_timeout`` (says what it waited for)
          ├── NotDynamoDB        the endpoint never answered as DynamoDB (an HTML page...)
          └── ThrottledError     retries exhausted on throttling, 5xx or dropped connections
               ├── EndpointUnreachable   ... because the endpoint never answered
               └── TransactionInProgress ... because an earlier attempt of the transaction still ran

Each class takes its context as keyword-only arguments (`table=`, `key=`, `attempts=`,
`code=`), and keeps the AWS error code reachable as `.code` when there is one.
Translation happens at the repository boundary with `raise ... from err`, so the
original botocore exception is still there as `__cause__` for debugging.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "CallTimeout",
    "CancellationReason",
    "ConditionFailed",
    "ConfigurationError",
    "EndpointUnreachable",
    "IdempotentParameterMismatch",
    "InvalidRequest",
    "ItemNotFound",
    "NotDynamoDB",
    "NoCredentials",
    "PortChopsError",
    "RELAYED",
    "ServiceError",
    "TableNotFound",
    "ThrottledError",
    "TransactionCanceled",
    "TransactionInProgress",
    "UniqueViolation",
    "RETRYABLE_CODES",
    "cancellation_reasons",
    "error_chain",
    "error_code",
    "gave_up",
    "http_status",
    "is_retryable",
    "is_transaction_conflict",
    "never_answered",
    "no_credentials",
    "not_dynamodb",
    "relayed",
    "translate",
]

#: AWS error codes that mean "try again later".
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
    }
)
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)


#: The ``ResponseMetadata`` key that marks an error answer without a request id from an
#: endpoint that has answered as DynamoDB before: a proxy's or load balancer's page (an
#: HTML 503), relayed from between the client and DynamoDB. The transport sets it
#: (`portchops_models.transport.Transport`); see `relayed` and `not_dynamodb`.
RELAYED = "PortChopsRelayed"

#: Cancellation reason codes that mean "nothing was wrong with this operation; try again".
TRANSIENT_CANCELLATION_CODES = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)

_M = TypeVar("_M")


class PortChopsError(Exception):
    """Base class of every error raised by portchops_models.

    Attributes:
        table: the DynamoDB table involved, when known.
        code: the AWS error code (e.g. ``"ValidationException"``), when there was one.
    """

    def __init__(self, message: str, *, table: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.table = table
        self.code = code


class ConfigurationError(PortChopsError, ValueError):
    """A setting is invalid; the message names the environment variable."""


class NoCredentials(ConfigurationError):
    """No AWS credentials were found (and no local endpoint is configured)."""


class ItemNotFound(PortChopsError, LookupError):
    """`get()` found no item under the key (use `find()` to get ``None`` instead)."""

    def __init__(self, message: str, *, table: str | None = None, key: object = None) -> None:
        super().__init__(message, table=table)
        self.key = key


class TableNotFound(PortChopsError):
    """The table does not exist; the message says how to create it."""


class ConditionFailed(PortChopsError):
    """A write's condition was false, including optimistic-locking version conflicts."""

    def __init__(
        self, message: str, *, table: str | None = None, code: str | None = None, key: object = None
    ) -> None:
        super().__init__(message, table=table, code=code)
        self.key = key


class UniqueViolation(ConditionFailed):
    """A write would give a unique attribute a value another item already holds.

    Nothing was written. ``attribute`` and ``value`` name the clash::

        try:
            students.save(Student(student_id="s2", email="ada@example.com"))
        except UniqueViolation as taken:
            print(f"{taken.attribute} {taken.value!r} is taken")
    """

    def __init__(
        self,
        message: str,
        *,
        attribute: str,
        value: object,
        table: str | None = None,
        key: object = None,
    ) -> None:
        super().__init__(message, table=table, code="ConditionalCheckFailed", key=key)
        self.attribute = attribute
        self.value = value


class InvalidRequest(PortChopsError, ValueError):
    """The request is malformed: bad key, item too large, bad cursor, bad projection..."""


class IdempotentParameterMismatch(InvalidRequest):
    """A transaction's ``client_request_token`` was already used for other operations.

    DynamoDB remembers a token for 10 minutes; within them the same token must
    carry the same request. Build a new `Transaction` (a new token) instead.
    """


@dataclass(frozen=True, slots=True)
class CancellationReason:
    """Why DynamoDB canceled one operation of a transaction.

    Attributes:
        code: DynamoDB's reason, e.g. ``"ConditionalCheckFailed"``,
            ``"TransactionConflict"``, ``"ValidationError"``.
        message: DynamoDB's message, when it gave one.
        item: the item as stored when its condition failed, decoded as the
            operation's model (a `Transaction` asks for it with
            ``ReturnValuesOnConditionCheckFailure=ALL_OLD``); ``None`` when
            DynamoDB returned none (e.g. the item does not exist).
    """

    code: str
    message: str | None = None
    item: object | None = None
    raw_item: Mapping[str, object] | None = field(default=None, repr=False, compare=False)

    def item_as(self, model: type[_M]) -> _M | None:
        """`item` if it is a `model`, else ``None`` (a typed view for type checkers).

        For example:

            user = reason.item_as(User)  # User | None
        """
        return self.item if isinstance(self.item, model) else None


class TransactionCanceled(PortChopsError):
    """DynamoDB canceled a transaction: none of its operations was applied.

    Attributes:
        reasons: one entry per operation, in the order they were added: ``None``
            for an operation that was not the cause, else a `CancellationReason`
            with its ``.code`` (``"ConditionalCheckFailed"`` at the index of the
            failed condition or version check).
        attempts: how many times the transaction was sent (conflicts are retried).
    """

    def __init__(
        self,
        message: str,
        *,
        reasons: Sequence[CancellationReason | None] = (),
        table: str | None = None,
        code: str | None = "TransactionCanceledException",
        attempts: int = 1,
    ) -> None:
        super().__init__(message, table=table, code=code)
        self.reasons: list[CancellationReason | None] = list(reasons)
        self.attempts = attempts

    @property
    def failed(self) -> list[int]:
        """The indexes of the operations that caused the cancellation."""
        return [i for i, reason in enumerate(self.reasons) if reason is not None]


class ServiceError(PortChopsError):
    """DynamoDB (or the network in between) failed to serve the request."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        code: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, table=table, code=code)
        self.attempts = attempts


class CallTimeout(ServiceError):
    """The public call ran past ``call_timeout`` seconds (attempts, backoff and pool waits).

    The message says what the call was waiting for when its time ran out: an answer
    from DynamoDB, a backoff before another attempt, or a pooled connection. A write
    that timed out may or may not have been applied; retrying it through the same
    repository method is safe (see the retries guide).

    Attributes:
        attempts: how many attempts were made.
        waited_for: ``"answer"``, ``"backoff"`` or ``"connection"``.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        code: str | None = None,
        attempts: int = 1,
        waited_for: str = "answer",
    ) -> None:
        super().__init__(message, table=table, code=code, attempts=attempts)
        self.waited_for = waited_for


class ThrottledError(ServiceError):
    """Retries were exhausted on throttling, 5xx or connection errors.

    Attributes:
        attempts: how many attempts (or batch rounds) were made.
        outstanding: for batch calls, how many keys or items were still unprocessed.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        code: str | None = None,
        attempts: int = 1,
        outstanding: int = 0,
    ) -> None:
        super().__init__(message, table=table, code=code, attempts=attempts)
        self.outstanding = outstanding


class EndpointUnreachable(ThrottledError):
    """Retries were exhausted because the endpoint never answered (down, wrong URL, no network)."""


class NotDynamoDB(ServiceError):
    """The endpoint answered, but never as DynamoDB does: no ``x-amzn-RequestId`` header.

    Every DynamoDB answer (and every local engine's) carries a request id; a web
    server, a proxy's error page or another service on the port does not. Such an
    answer is not retried, and its body (often a whole HTML page) is not repeated:
    the one-line message says who answered what, e.g. ``http://127.0.0.1:8080
    answered HTTP 501 with text/html: not a DynamoDB endpoint``.

    Only for an endpoint that has never answered as DynamoDB: once it has, an answer
    without a request id came from something in front of it (a load balancer's or a
    sidecar's 503 page), and is a server error instead (`relayed`): a 5xx is retried,
    and past the retry budget is a `ThrottledError` naming the HTTP status.

    Attributes:
        endpoint: the URL that answered, when known.
        status: the HTTP status of the answer.
        content_type: its ``Content-Type`` without parameters (``""`` if none).
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        endpoint: str | None = None,
        status: int = 0,
        content_type: str = "",
    ) -> None:
        super().__init__(message, table=table, code=None, attempts=1)
        self.endpoint = endpoint
        self.status = status
        self.content_type = content_type


class TransactionInProgress(ThrottledError):
    """DynamoDB was still running an earlier attempt of the same transaction (same token).

    Its outcome is unknown: calling `Transaction.commit` again within 10 minutes
    sends the same token, so the transaction is applied at most once.
    """


def error_chain(err: BaseException) -> list[BaseException]:
    """`err` and its causes (``__cause__`` and PynamoDB's ``.cause``), without cycles."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        nxt = current.__cause__ or getattr(current, "cause", None)
        current = nxt if isinstance(nxt, BaseException) else None
    return seen


def _response_field(err: BaseException, section: str, name: str) -> object:
    """``err.response[section][name]`` of a botocore error, following the cause chain."""
    for current in error_chain(err):
        response = getattr(current, "response", None)
        if isinstance(response, Mapping):
            part = response.get(section)
            if isinstance(part, Mapping) and part.get(name) is not None:
                return part.get(name)
    return None


def error_code(err: BaseException) -> str | None:
    """The AWS error code carried by a botocore or PynamoDB exception, if any."""
    code = _response_field(err, "Error", "Code")
    return code.rsplit("#", 1)[-1] if isinstance(code, str) else None


def http_status(err: BaseException) -> int | None:
    """The HTTP status of the failed response, if there was one."""
    status = _response_field(err, "ResponseMetadata", "HTTPStatusCode")
    return status if isinstance(status, int) else None


def _is_connection_error(err: BaseException) -> bool:
    # Imported lazily: errors.py stays importable without botocore's heavier modules.
    from botocore.exceptions import ChecksumError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    # A damaged answer (its x-amz-crc32 does not match) is retried like a dropped one,
    # as botocore retries it.
    return any(
        isinstance(e, BotoConnectionError | HTTPClientError | ConnectionError | ChecksumError)
        for e in error_chain(err)
    )


def untrusted_certificate(err: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed when connecting over TLS, if `err` is one."""
    for e in error_chain(err):
        if isinstance(e, ssl.SSLCertVerificationError):
            return e
    return None


def never_answered(err: BaseException) -> bool:
    """Whether `err` means no connection was made: refused, unreachable, connect timeout."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    return any(
        isinstance(e, EndpointConnectionError | ConnectTimeoutError) for e in error_chain(err)
    )


def gave_up(
    last: BaseException, *, table: str | None, attempts: int, reason: str
) -> ThrottledError:
    """The error for a retry loop that stopped: `EndpointUnreachable` or `ThrottledError`."""
    code = error_code(last)
    if code == "TransactionInProgressException":
        return TransactionInProgress(
            f"{table or 'transaction'}: still in progress after {attempts} attempt(s) ({reason});"
            " commit again to learn its outcome (the same token applies it at most once)",
            table=table,
            code=code,
            attempts=attempts,
        )
    if never_answered(last):
        return EndpointUnreachable(
            f"{table or 'request'}: cannot reach DynamoDB after {attempts} attempt(s) ({reason}):"
            f" {_message(last)}; is the engine running (`portchops engine`) and"
            " PORTCHOPS_ENDPOINT_URL right?",
            table=table,
            code=code,
            attempts=attempts,
        )
    return ThrottledError(
        f"{table or 'request'}: gave up after {attempts} attempt(s): {reason}; "
        f"last error: {_relayed_status(last) or code or type(last).__name__}",
        table=table,
        code=code,
        attempts=attempts,
    )


def is_retryable(err: BaseException) -> bool:
    """True for throttling, 5xx and dropped-connection errors; False for everything else
    (an answer from something that is not DynamoDB included: `not_dynamodb`)."""
    if isinstance(err, ThrottledError) or not_dynamodb(err) is not None:
        return False
    if untrusted_certificate(err) is not None:  # the same certificate every time
        return False
    code = error_code(err)
    if code in RETRYABLE_CODES:
        return True
    status = http_status(err)
    if status is not None and status >= 500:
        return True
    return code is None and _is_connection_error(err)


def cancellation_reasons(err: BaseException) -> list[CancellationReason | None] | None:
    """The ``CancellationReasons`` of a canceled transaction (``None`` for "None" codes),
    in the order of its operations; ``None`` if `err` is no cancellation. Items stay raw
    (`CancellationReason.raw_item`): the transaction decodes them with its models."""
    for current in error_chain(err):
        response = getattr(current, "response", None)
        raw = response.get("CancellationReasons") if isinstance(response, Mapping) else None
        if isinstance(raw, list):
            reasons: list[CancellationReason | None] = []
            for entry in raw:
                code = entry.get("Code") if isinstance(entry, Mapping) else None
                if not isinstance(code, str) or code == "None":
                    reasons.append(None)
                    continue
                message = entry.get("Message")
                item = entry.get("Item")
                reasons.append(
                    CancellationReason(
                        code=code,
                        message=message if isinstance(message, str) else None,
                        raw_item=item if isinstance(item, Mapping) else None,
                    )
                )
            return reasons
    return None


def is_transaction_conflict(err: BaseException) -> bool:
    """True for a transaction canceled only by conflicts or throttling (safe to resend).

    A cancellation with any other reason (a failed condition, a validation error)
    is final: resending it would fail the same way.
    """
    if error_code(err) != "TransactionCanceledException":
        return False
    reasons = cancellation_reasons(err)
    if not reasons or all(reason is None for reason in reasons):
        return False
    return all(r is None or r.code in TRANSIENT_CANCELLATION_CODES for r in reasons)


def translate(
    err: BaseException,
    *,
    table: str | None = None,
    key: object = None,
    attempts: int = 1,
    endpoint: str | None = None,
) -> PortChopsError:
    """Map a botocore/PynamoDB exception to the matching `PortChopsError`.

    `endpoint` (the URL the client sent to) is named in the message of a
    `NotDynamoDB`, when the answer came from something else than DynamoDB.
    """
    if isinstance(err, PortChopsError):
        return err
    foreign = not_dynamodb(err, table=table, endpoint=endpoint)
    if foreign is not None:
        return foreign
    from botocore.exceptions import NoCredentialsError

    if any(isinstance(e, NoCredentialsError) for e in error_chain(err)):
        return no_credentials(table=table)
    refused = untrusted_certificate(err)
    if refused is not None:
        return ConfigurationError(
            f"{endpoint or table or 'request'}: the endpoint's TLS certificate is not trusted"
            f" ({refused.verify_message or refused.reason}); nothing was sent. Trust its"
            " authority with AWS_CA_BUNDLE=/path/to/ca.pem, or check PORTCHOPS_ENDPOINT_URL",
            table=table,
        )
    code = error_code(err)
    detail = _message(err)
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(
            f"condition failed on {table}" + (f" for key {key!r}" if key is not None else ""),
            table=table,
            code=code,
            key=key,
        )
    if code == "ResourceNotFoundException":
        return table_not_found(table, code=code)
    if code == "TransactionCanceledException":
        reasons = cancellation_reasons(err) or []
        codes = ", ".join(str(r.code if r else None) for r in reasons)
        return TransactionCanceled(
            f"transaction canceled, nothing applied (reasons: [{codes}])",
            reasons=reasons,
            table=table,
            code=code,
            attempts=attempts,
        )
    if code == "IdempotentParameterMismatchException":
        return IdempotentParameterMismatch(
            f"{table or 'transaction'}: this client_request_token was used for other "
            f"operations: {detail}",
            table=table,
            code=code,
        )
    if code == "TransactionInProgressException":
        return gave_up(err, table=table, attempts=attempts, reason="not retried")
    if code in THROTTLING_CODES:
        return ThrottledError(
            f"{table}: throttled after {attempts} attempt(s) ({code})",
            table=table,
            code=code,
            attempts=attempts,
        )
    status_line = _relayed_status(err)
    if is_retryable(err):
        return ThrottledError(
            f"{table}: service unavailable after {attempts} attempt(s): "
            + (f"{status_line}: {detail}" if status_line else detail),
            table=table,
            code=code,
            attempts=attempts,
        )
    if status_line:
        return ServiceError(f"{table}: {status_line}: {detail}", table=table, code=code)
    if code in {"ValidationException", "SerializationException"} or isinstance(err, ValueError):
        return InvalidRequest(f"{table}: {detail}", table=table, code=code)
    return ServiceError(f"{table}: {code or type(err).__name__}: {detail}", table=table, code=code)


def relayed(err: BaseException) -> bool:
    """Whether `err` is an answer without a request id from an endpoint that has answered
    as DynamoDB before (marked `RELAYED` by the transport): a proxy's or load balancer's
    page from between the client and DynamoDB, a server error rather than `NotDynamoDB`."""
    for current in error_chain(err):
        response = getattr(current, "response", None)
        meta = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
        if isinstance(meta, Mapping):
            return meta.get(RELAYED) is True
    return False


def _relayed_status(err: BaseException) -> str:
    """``"HTTP 503 without a request id (text/html)"`` for a `relayed` error, else ``""``."""
    if not relayed(err):
        return ""
    status = http_status(err)
    headers = _response_field(err, "ResponseMetadata", "HTTPHeaders")
    content_type = ""
    if isinstance(headers, Mapping):
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    return (
        f"HTTP {status} without a request id ({content_type or 'no content type'}), "
        "from a proxy or load balancer in front of DynamoDB"
    )


def not_dynamodb(
    err: BaseException, *, table: str | None = None, endpoint: str | None = None
) -> NotDynamoDB | None:
    """A `NotDynamoDB` if `err` carries an HTTP answer without ``x-amzn-RequestId``, else None.

    DynamoDB and the local engines put a request id on every answer, errors
    included; an answer without one came from something else on that URL (a web
    server's 501 page, a proxy's 502...), whatever its status code says. Unless
    the endpoint has answered as DynamoDB before (`relayed`): then it is None.
    """
    for current in error_chain(err):
        response = getattr(current, "response", None)
        meta = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
        if not isinstance(meta, Mapping):
            continue
        if meta.get(RELAYED) is True:
            return None
        headers, status = meta.get("HTTPHeaders"), meta.get("HTTPStatusCode")
        if not isinstance(headers, Mapping) or not isinstance(status, int):
            continue
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        if "x-amzn-requestid" in lowered:
            return None
        content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
        return NotDynamoDB(
            f"{endpoint or 'the endpoint'} answered HTTP {status} with "
            f"{content_type or 'no content type'}: not a DynamoDB endpoint "
            "(is PORTCHOPS_ENDPOINT_URL right?)",
            table=table,
            endpoint=endpoint,
            status=status,
            content_type=content_type,
        )
    return None


def no_credentials(*, table: str | None = None) -> NoCredentials:
    """A `NoCredentials` that says how to point at a local engine or provide credentials."""
    return NoCredentials(
        "no AWS credentials found: set PORTCHOPS_ENDPOINT_URL for a local engine, "
        "or AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
        table=table,
    )


def table_not_found(table: str | None, *, code: str | None = None) -> TableNotFound:
    """A `TableNotFound` that says which table and how to create it."""
    return TableNotFound(
        f"table {table!r} does not exist: create it with `portchops migrate up`",
        table=table,
        code=code,
    )


def _message(err: BaseException) -> str:
    message = _response_field(err, "Error", "Message")
    return message if isinstance(message, str) else (str(err) or type(err).__name__)

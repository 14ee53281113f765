"""Typed transactions across tables: `Transaction` and `read_transaction`.

::

    with Transaction() as tx:                      # commits on a clean exit
        tx.save(user)                              # version checked and bumped
        tx.update(UserProgress, (uid, lid), [UserProgress.attempts.add(1)])
        tx.delete(User, other_id)
        tx.check(User, uid, User.user_id.exists())

    user, row = read_transaction((User, uid), (UserProgress, (uid, lid)))

Every operation is built and checked when it is added (keys, items, limits: see
`portchops_models.ops.transaction_plan`), so a bad one raises `InvalidRequest` inside
the ``with`` block and nothing is sent. The payload keeps the caller's order, so
`TransactionCanceled.reasons[i]` is operation ``i``'s reason.

Exactly once: a transaction has one ``client_request_token`` (a uuid4), sent with
every attempt. DynamoDB applies a TransactWriteItems at most once per token for 10
minutes, so an attempt whose answer was lost (a reset connection, a read timeout,
a 5xx) is resent safely, and so is a second `Transaction.commit` after a commit
that raised a `ServiceError` (outcome unknown). Attempts are retried on
throttling, 5xx, connection errors and `TransactionConflict` cancellations, with
the connection's backoff; a failed condition is never retried.

A commit (and a commit whose outcome is unknown) invalidates the keys it wrote in
every cache of the process (`portchops_models.cache.coherence`). dynalite has no
transactions: use moto or DynamoDB.
"""

# Generated from portchops_models/aio/transactions.py by tools/unasync.py: do not edit.
# Change the async source, then run `make generate`.

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Self, TypeVar, overload

from .models.base import BaseModel
from .observe.metrics import Metrics
from .ops.sync_runtime import RUNTIME, run
from .ops.transactions import IDEMPOTENCY_WINDOW_SECONDS, TransactionCore, read_items
from .transport.retry import RetryPolicy

__all__ = [
    "IDEMPOTENCY_WINDOW_SECONDS",
    "Transaction",
    "TransactionCore",
    "read_items",
    "read_transaction",
]

M1 = TypeVar("M1", bound=BaseModel)
M2 = TypeVar("M2", bound=BaseModel)
M3 = TypeVar("M3", bound=BaseModel)
M4 = TypeVar("M4", bound=BaseModel)
M5 = TypeVar("M5", bound=BaseModel)


class Transaction(TransactionCore):
    """Writes to several items, in several tables, that succeed or fail together.

    Use it as a context manager (``with``): a clean exit commits, an
    exception inside the block sends nothing. Or call `commit` yourself.
    Operations are added with the same (synchronous) methods: ``tx.save``,
    ``tx.update``, ``tx.delete``, ``tx.check``; nothing is sent until the commit.
    Arguments as for `TransactionCore`.

    For example:

        with Transaction() as tx:
            tx.save(User(user_id="u1", email="ada@example.com", name="Ada"))
            tx.check(User, "admin", User.user_id.exists())
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._discard(exc_type is not None):
            self.commit()

    def commit(self) -> None:
        """Send the transaction; return once DynamoDB applied all of it.

        A transaction with no operations sends nothing. After a commit that
        raised a `ServiceError` (outcome unknown), calling `commit` again
        resends it with the same token within DynamoDB's 10-minute window.

        Raises:
            TransactionCanceled: nothing was applied; ``reasons`` says why, per operation.
            IdempotentParameterMismatch: the token was used for other operations.
            ServiceError: throttled, timed out or unreachable: the outcome is unknown.
            InvalidRequest: already committed, canceled or discarded.
        """
        run(self._commit(RUNTIME))


# ---------------------------------------------------------------------- read transactions


@overload
def read_transaction(
    g1: tuple[type[M1], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None]: ...
@overload
def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None]: ...
@overload
def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    g3: tuple[type[M3], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None, M3 | None]: ...
@overload
def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    g3: tuple[type[M3], Hashable],
    g4: tuple[type[M4], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None, M3 | None, M4 | None]: ...
@overload
def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    g3: tuple[type[M3], Hashable],
    g4: tuple[type[M4], Hashable],
    g5: tuple[type[M5], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None, M3 | None, M4 | None, M5 | None]: ...
@overload
def read_transaction(
    *gets: tuple[type[M1], Hashable],
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, ...]: ...
def read_transaction(
    *gets: tuple[type[BaseModel], Hashable],
    retry: RetryPolicy | None = None,
    metrics: Metrics | None = None,
) -> tuple[BaseModel | None, ...]:
    """Read up to 100 items, from any tables, as of one moment (TransactGetItems).

    Each argument is a ``(Model, key)`` pair; the result holds one model (or
    ``None`` for a missing or expired item) per pair, in the same order, typed
    per position for up to five pairs. Caches are not consulted: the point is a
    consistent view. Cancellations caused only by conflicting writes are retried.

    For example:

        user, row = read_transaction((User, "u1"), (UserProgress, ("u1", "l1")))

    Raises:
        InvalidRequest: no pair, a bad key, or over 100 distinct items.
        TransactionCanceled: DynamoDB canceled the read (e.g. conflicts past the retries).
    """
    return run(read_items(gets, retry, metrics, RUNTIME))

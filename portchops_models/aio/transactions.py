"""`AsyncTransaction` and `read_transaction` for async code.

The same operations, limits, token, retries, cancellation reasons and cache
invalidation as `portchops_models.transactions` (they share `TransactionCore`
and `read_items`); only the request is awaited::

    async with AsyncTransaction() as tx:        # commits on a clean exit
        tx.save(user)
        tx.update(UserProgress, (uid, lid), [UserProgress.attempts.add(1)])

    user, row = await read_transaction((User, uid), (UserProgress, (uid, lid)))
"""

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Self, TypeVar, overload

from ..metrics import Metrics
from ..models.base import BaseModel
from ..retry import RetryPolicy
from ..transactions import TransactionCore, read_items
from .runtime import ASYNC

__all__ = ["AsyncTransaction", "read_transaction"]

M1 = TypeVar("M1", bound=BaseModel)
M2 = TypeVar("M2", bound=BaseModel)
M3 = TypeVar("M3", bound=BaseModel)
M4 = TypeVar("M4", bound=BaseModel)
M5 = TypeVar("M5", bound=BaseModel)


class AsyncTransaction(TransactionCore):
    """`Transaction` for async code: ``async with``, and ``await tx.commit()``.

    Operations are added with the same (synchronous) methods: ``tx.save``,
    ``tx.update``, ``tx.delete``, ``tx.check``; nothing is sent until the commit.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._discard(exc_type is not None):
            await self.commit()

    async def commit(self) -> None:
        """Send the transaction; return once DynamoDB applied all of it (see `Transaction.commit`).

        Raises:
            TransactionCanceled: nothing was applied; ``reasons`` says why, per operation.
            IdempotentParameterMismatch: the token was used for other operations.
            ServiceError: throttled, timed out or unreachable: the outcome is unknown.
            InvalidRequest: already committed, canceled or discarded.
        """
        await self._commit(ASYNC)


@overload
async def read_transaction(
    g1: tuple[type[M1], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None]: ...
@overload
async def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None]: ...
@overload
async def read_transaction(
    g1: tuple[type[M1], Hashable],
    g2: tuple[type[M2], Hashable],
    g3: tuple[type[M3], Hashable],
    /,
    *,
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, M2 | None, M3 | None]: ...
@overload
async def read_transaction(
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
async def read_transaction(
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
async def read_transaction(
    *gets: tuple[type[M1], Hashable],
    retry: RetryPolicy | None = ...,
    metrics: Metrics | None = ...,
) -> tuple[M1 | None, ...]: ...
async def read_transaction(
    *gets: tuple[type[BaseModel], Hashable],
    retry: RetryPolicy | None = None,
    metrics: Metrics | None = None,
) -> tuple[BaseModel | None, ...]:
    """Read up to 100 items as of one moment (see `portchops_models.read_transaction`)."""
    return await read_items(gets, retry, metrics, ASYNC)

"""What a transaction is, whatever API sends it: `TransactionCore` and `read_items`.

The faces, `AsyncTransaction` / `aio.read_transaction` and the generated
`Transaction` / `read_transaction`, add only how the commit is run (awaited, or
to completion in the calling thread). Every operation is built and checked when
it is added (`portchops_models.ops.transaction_plan`), the commit is one
TransactWriteItems with the transaction's ``client_request_token``, retried with
the connection's backoff, and its outcome invalidates the touched keys in every
cache of the process.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Hashable, Sequence
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ..cache import coherence
from ..errors import (
    ConditionFailed,
    InvalidRequest,
    PortChopsError,
    ServiceError,
    TransactionCanceled,
    cancellation_reasons,
)
from ..models.base import BaseModel
from ..models.shape import shape_of
from ..observe import tracing
from ..observe.metrics import Metrics
from ..settings import current_settings
from ..transport import deadline
from ..transport.connection import Connection, current_connection
from ..transport.retry import RetryPolicy
from . import transaction_plan as plan
from .base import default_metrics
from .requests import TRANSACT_TOKEN_MAX
from .runtime import Runtime

__all__ = ["IDEMPOTENCY_WINDOW_SECONDS", "TransactionCore", "read_items"]

#: DynamoDB keeps a ClientRequestToken for 10 minutes; a commit resent later could apply twice.
IDEMPOTENCY_WINDOW_SECONDS = 600.0
_RESEND_MARGIN_SECONDS = 60.0


class _State(enum.Enum):
    OPEN = "open"
    UNKNOWN = "unknown"  # a commit raised a ServiceError: it may or may not have applied
    COMMITTED = "committed"
    FAILED = "failed"  # canceled or refused: nothing applied
    DISCARDED = "discarded"  # the with block raised: nothing sent


def _table(model: type[BaseModel]) -> str:
    return current_settings().table_name(model.base_table_name)


class TransactionCore:
    """What a write transaction is, whatever sends it: its operations, token and state.

    `Transaction` (`portchops_models.transactions`) and `AsyncTransaction` (`.aio`) share
    everything, the commit (`_commit`) included; they differ only in the
    runtime that sends it (blocking, or awaited on the event loop).

    Args:
        client_request_token: the idempotency token (1-36 characters); a fresh
            uuid4 by default. Give your own only to resume a transaction whose
            outcome is unknown from another process, with the same operations.
        retry: the `RetryPolicy` (default: the connection's).
        metrics: where requests, capacity and cancellations are counted
            (default: the repositories' process-wide `Metrics`).
    """

    def __init__(
        self,
        *,
        client_request_token: str | None = None,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        token = plan.new_token() if client_request_token is None else client_request_token
        if not (isinstance(token, str) and 0 < len(token) <= TRANSACT_TOKEN_MAX):
            raise InvalidRequest(
                f"client_request_token must be a str of 1 to {TRANSACT_TOKEN_MAX} characters"
            )
        self._token = token
        self._retry = retry
        self.metrics = metrics if metrics is not None else default_metrics()
        self._plan = plan.WritePlan()
        self._state = _State.OPEN
        self._first_sent: float | None = None

    @property
    def client_request_token(self) -> str:
        """The token sent with every attempt of this transaction."""
        return self._token

    @property
    def operations(self) -> Sequence[plan.Operation]:
        """The operations added so far, in order (what ``reasons[i]`` refers to)."""
        return tuple(self._plan.operations)

    def __len__(self) -> int:
        return len(self._plan)

    # ------------------------------------------------------------------ building

    def _add(self, operation: plan.Operation) -> None:
        if self._state is not _State.OPEN:
            raise InvalidRequest(f"this transaction is {self._state.value}: start a new one")
        self._plan.add(operation)

    def save(self, item: BaseModel, *, condition: Condition | None = None) -> None:
        """Write the whole item (a Put), like `Repository.save`.

        With a version attribute the stored version must still be the item's,
        and goes up by one (set on `item` once the transaction commits).
        Timestamps and a sliding TTL are stamped now.

        Raises:
            InvalidRequest: bad key or item, over 400 KB, or a transaction limit.
        """
        if not isinstance(item, BaseModel):
            raise InvalidRequest(f"save takes a model instance, got {type(item).__name__}")
        shape = shape_of(type(item))
        shape.refuse_unguarded("a transaction's save")
        shape.stamp(item)
        self._add(plan.put_operation(shape, _table(type(item)), item, condition=condition))

    def update(
        self,
        model: type[BaseModel],
        key: Hashable,
        actions: Sequence[Action],
        *,
        condition: Condition | None = None,
    ) -> None:
        """Change an item with PynamoDB update actions, like `Repository.update`.

        The version goes up by one, timestamps and a sliding TTL are refreshed;
        an expired item is not revived (the operation fails its condition).
        Creates the item if absent unless `condition` says otherwise.
        """
        shape = shape_of(model)
        self._add(plan.update_operation(shape, _table(model), key, actions, condition=condition))

    def delete(
        self, model: type[BaseModel], key: Hashable, *, condition: Condition | None = None
    ) -> None:
        """Delete the item under `key` (no error if absent, unless `condition` fails)."""
        shape = shape_of(model)
        shape.refuse_unguarded("a transaction's delete")
        self._add(plan.delete_operation(shape, _table(model), key, condition=condition))

    def check(self, model: type[BaseModel], key: Hashable, condition: Condition) -> None:
        """Apply the transaction only if `condition` holds for the item under `key`."""
        shape = shape_of(model)
        self._add(plan.check_operation(shape, _table(model), key, condition))

    # ------------------------------------------------------------------ the commit's states

    def _discard(self, raised: bool) -> bool:
        """On leaving a ``with`` block: True if it should commit (clean exit, still open)."""
        if self._state is not _State.OPEN:
            return False
        if raised:
            self._state = _State.DISCARDED
            return False
        return True

    def _retry_policy(self, default: RetryPolicy) -> RetryPolicy:
        return plan.transaction_policy(self._retry or default)

    def _prepare(self) -> dict[str, Any] | None:
        """The TransactWriteItems payload to send, or ``None`` when there is nothing to send.

        Raises:
            InvalidRequest: already committed, canceled or discarded, or first sent
                so long ago that the token may no longer protect a resend.
        """
        if self._state not in (_State.OPEN, _State.UNKNOWN):
            raise InvalidRequest(f"this transaction is {self._state.value}: start a new one")
        if not self._plan.operations:
            self._state = _State.COMMITTED
            return None
        now = time.monotonic()
        if self._first_sent is None:
            self._first_sent = now
        elif now - self._first_sent > IDEMPOTENCY_WINDOW_SECONDS - _RESEND_MARGIN_SECONDS:
            raise InvalidRequest(
                "this transaction was first sent over 9 minutes ago: its token may no longer "
                "protect a resend; read the items back to learn whether it applied"
            )
        return self._plan.payload(self._token)

    def _succeeded(self) -> None:
        self._state = _State.COMMITTED
        self._plan.committed()
        self._invalidate()

    def _failed(self, err: BaseException, endpoint: str | None) -> BaseException:
        """Record what a failed send means; the exception to raise (`err` itself or a
        clearer one). A cancellation or a refusal applied nothing; anything else may
        have applied (a `ServiceError`: commit again), so the touched keys are evicted."""
        if isinstance(err, PortChopsError):
            if isinstance(err, TransactionCanceled) or cancellation_reasons(err) is not None:
                self._state = _State.FAILED
                self.metrics.record_cancellation()
                return self._plan.canceled(err, attempts=getattr(err, "attempts", 1))
            clearer = plan.unsupported(err, endpoint, "TransactWriteItems")
            if clearer is not None or not isinstance(err, ServiceError):
                self._state = _State.FAILED
                return clearer or err
        self._state = _State.UNKNOWN
        self._invalidate()
        return err

    async def _commit(self, runtime: Runtime) -> None:
        """The commit of both APIs: one TransactWriteItems, retried, its outcome recorded."""
        payload = self._prepare()
        if payload is None:
            return
        settings = current_settings()
        call = tracing.Call(type(self), "commit", settings.slow_call_seconds)
        with deadline.bounded(settings.call_timeout), call:
            call.set_attribute("portchops.transaction.size", len(payload["TransactItems"]))
            conn = current_connection()
            for attempt in (1, 2):
                try:
                    await runtime.send(
                        conn,
                        "TransactWriteItems",
                        payload,
                        table=None,
                        retry=self._retry_policy(conn.retry),
                        metrics=self.metrics,
                    )
                    break
                except BaseException as err:
                    if attempt == 1 and await self._converge(runtime, conn, err):
                        # Canceled, so nothing applied: a new commit with a token of its own.
                        self._token = plan.new_token()
                        payload = self._plan.payload(self._token)
                        continue
                    failure = self._failed(err, conn.settings.endpoint_url)
                    if failure is err:
                        raise
                    raise failure from err
        self._succeeded()

    async def _converge(self, runtime: Runtime, conn: Connection, err: BaseException) -> bool:
        """After a cancellation: rewrite the items whose update failed because they are in
        an older schema version (`WritePlan.convergences`), so the commit can be sent
        again; whether there were any."""
        if not isinstance(err, PortChopsError):
            return False
        rewrites = self._plan.convergences(err)
        for op, params in rewrites:
            try:
                await runtime.send(
                    conn, "PutItem", params, table=op.table, retry=conn.retry, metrics=self.metrics
                )
            except ConditionFailed:
                pass  # written meanwhile: the item is current, or the commit fails for good
            finally:
                coherence.invalidate(op.table, [op.key])
        return bool(rewrites)

    def _invalidate(self) -> None:
        for table, keys in self._plan.touched().items():
            coherence.invalidate(table, keys)


async def read_items(
    gets: Sequence[tuple[type[BaseModel], Hashable]],
    retry: RetryPolicy | None,
    metrics: Metrics | None,
    runtime: Runtime,
) -> tuple[BaseModel | None, ...]:
    """The read transaction of both APIs: one TransactGetItems, decoded in order."""
    operations = plan.read_operations(gets, _table)
    payload, positions = plan.read_payload(operations)
    counted = metrics if metrics is not None else default_metrics()
    settings = current_settings()
    call = tracing.Call("read_transaction", "", settings.slow_call_seconds)
    with deadline.bounded(settings.call_timeout), call:
        call.set_attribute("portchops.transaction.size", len(payload["TransactItems"]))
        conn = current_connection()
        try:
            response = await runtime.send(
                conn,
                "TransactGetItems",
                payload,
                table=None,
                retry=plan.transaction_policy(retry or conn.retry),
                metrics=counted,
            )
        except PortChopsError as err:
            if isinstance(err, TransactionCanceled) or cancellation_reasons(err) is not None:
                counted.record_cancellation()
                attempts = getattr(err, "attempts", 1)
                raise plan.read_canceled(operations, positions, err, attempts=attempts) from err
            clearer = plan.unsupported(err, conn.settings.endpoint_url, "TransactGetItems")
            if clearer is not None:
                raise clearer from err
            raise
    return tuple(plan.read_results(operations, positions, response))

"""The layer's log records: standard `logging` under the ``portchops_models`` logger.

Nothing is printed unless the application configures logging (the package's
logger has a `logging.NullHandler`, as libraries should). Loggers, by concept:

- ``portchops_models.requests``: DEBUG for each retry of a DynamoDB request and for
  each batch round resubmitting unprocessed keys or items; WARNING when a request
  or a batch gives up (retries exhausted, budget empty, ``call_timeout`` reached).
- ``portchops_models.calls``: WARNING for a public call slower than
  ``slow_call_seconds`` (setting ``PORTCHOPS_SLOW_CALL_SECONDS``; 0 turns it off).
- ``portchops_models.migrate``: INFO for each migration step applied or reverted,
  WARNING for a step that failed.

Every record carries flat, structured ``extra`` fields (attributes of the
`logging.LogRecord`, picked up by JSON formatters): ``portchops_event``
(``"retry"``, ``"batch_retry"``, ``"gave_up"``, ``"slow_call"``, ``"migration"``),
``db_operation`` (e.g. ``"GetItem"``), ``db_table``, ``db_call`` (the public call,
e.g. ``"UserRepository.get"``, when there is one) and the fields of each event.

Never logged: credentials, the cursor secret, items, and key values (they may be
personal data); a record names the table and the operation, not the item.

Records are built only when their level is enabled, so with DEBUG off a retry
costs one `logging.Logger.isEnabledFor` check.
"""

from __future__ import annotations

import logging

from ..errors import error_code

__all__ = ["CALLS", "MIGRATIONS", "REQUESTS", "ROOT"]

#: The package's logger; every record of the layer goes through it.
ROOT = logging.getLogger("portchops_models")
ROOT.addHandler(logging.NullHandler())
#: Retries and give-ups of DynamoDB requests and batch rounds.
REQUESTS = logging.getLogger("portchops_models.requests")
#: Public calls slower than ``slow_call_seconds``.
CALLS = logging.getLogger("portchops_models.calls")
#: Migration steps applied, reverted or failed.
MIGRATIONS = logging.getLogger("portchops_models.migrate")
#: stream workers: a handler that keeps failing (WARNING), a lost shard lease (INFO).
STREAMS = logging.getLogger("portchops_models.streams")


def reason_of(err: BaseException) -> str:
    """What went wrong, as logged: the AWS error code, else the exception's class name.

    For example:

        reason_of(TimeoutError())  # "TimeoutError"
    """
    code = error_code(err) or getattr(err, "code", None)
    return code if isinstance(code, str) else type(err).__name__


def retry(
    operation: str,
    table: str | None,
    call: str | None,
    attempt: int,
    delay: float,
    err: BaseException,
) -> None:
    """DEBUG: attempt number `attempt` of a request failed with `err`; retrying after `delay`."""
    if not REQUESTS.isEnabledFor(logging.DEBUG):
        return
    reason = reason_of(err)
    REQUESTS.debug(
        "%s %s: attempt %d failed (%s), retrying in %.3f s",
        operation,
        table or "-",
        attempt,
        reason,
        delay,
        extra={
            "portchops_event": "retry",
            "db_operation": operation,
            "db_table": table,
            "db_call": call,
            "attempt": attempt,
            "delay_seconds": delay,
            "reason": reason,
        },
    )


def batch_retry(
    operation: str,
    table: str | None,
    call: str | None,
    round_no: int,
    delay: float,
    outstanding: int,
) -> None:
    """DEBUG: batch round `round_no` left `outstanding` keys or items unprocessed."""
    if not REQUESTS.isEnabledFor(logging.DEBUG):
        return
    reason = "UnprocessedItems" if operation == "BatchWriteItem" else "UnprocessedKeys"
    REQUESTS.debug(
        "%s %s: round %d left %d unprocessed, resubmitting in %.3f s",
        operation,
        table or "-",
        round_no,
        outstanding,
        delay,
        extra={
            "portchops_event": "batch_retry",
            "db_operation": operation,
            "db_table": table,
            "db_call": call,
            "attempt": round_no,
            "delay_seconds": delay,
            "reason": reason,
            "outstanding": outstanding,
        },
    )


def gave_up(operation: str, table: str | None, call: str | None, err: BaseException) -> None:
    """WARNING: a request or a batch stopped retrying; `err` is the error the caller gets.

    The message is the error's own, which names the table, the attempts and the limit
    that stopped the loop, never an item or a key.
    """
    if not REQUESTS.isEnabledFor(logging.WARNING):
        return
    attempts = getattr(err, "attempts", 1)
    reason = reason_of(err.__cause__) if err.__cause__ is not None else reason_of(err)
    text = str(err)
    if table is not None:  # the error's message starts with the table already
        text = text.removeprefix(f"{table}: ")
    REQUESTS.warning(
        "%s %s: %s",
        operation,
        table or "-",
        text,
        extra={
            "portchops_event": "gave_up",
            "db_operation": operation,
            "db_table": table,
            "db_call": call,
            "attempts": attempts,
            "reason": reason,
            "error_type": type(err).__name__,
            "outstanding": getattr(err, "outstanding", 0),
        },
    )


def slow_call(
    call: str | None,
    operation: str | None,
    table: str | None,
    seconds: float,
    threshold: float,
    requests: int,
) -> None:
    """WARNING: a public call `call` (or a request `operation` outside one) took `seconds`."""
    if not CALLS.isEnabledFor(logging.WARNING):
        return
    CALLS.warning(
        "%s %s: took %.3f s (slow_call_seconds=%g), %d request(s)",
        call or operation,
        table or "-",
        seconds,
        threshold,
        requests,
        extra={
            "portchops_event": "slow_call",
            "db_call": call,
            "db_operation": operation,
            "db_table": table,
            "duration_seconds": seconds,
            "threshold_seconds": threshold,
            "requests": requests,
        },
    )


def migration(action: str, step: str, description: str, milliseconds: float | None) -> None:
    """INFO for a migration step ``"applied"`` or ``"reverted"``, WARNING for one that
    ``"failed"`` (or whose ``"revert failed"``)."""
    level = logging.WARNING if action.endswith("failed") else logging.INFO
    if not MIGRATIONS.isEnabledFor(level):
        return
    took = "" if milliseconds is None else f" in {milliseconds:.0f} ms"
    MIGRATIONS.log(
        level,
        "migration %s (%s) %s%s",
        step,
        description,
        action,
        took,
        extra={
            "portchops_event": "migration",
            "migration_id": step,
            "migration_action": action,
            "duration_seconds": None if milliseconds is None else milliseconds / 1000,
        },
    )


def handler_failing(
    worker: str, table: str, shard: str, sequence: str, attempts: int, err: BaseException
) -> None:
    """WARNING: a stream worker's handler keeps failing on one record (the poison record)."""
    if not STREAMS.isEnabledFor(logging.WARNING):
        return
    STREAMS.warning(
        "stream worker %s: the handler failed %d times on record %s of shard %s (%s): %s",
        worker,
        attempts,
        sequence,
        shard,
        table,
        reason_of(err),
        extra={
            "portchops_event": "stream_handler_failing",
            "table": table,
            "shard_id": shard,
            "sequence_number": sequence,
            "attempts": attempts,
        },
    )

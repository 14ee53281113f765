"""The run lock: a conditional PutItem in the history table with a lease and a heartbeat."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape

from ..errors import ConditionFailed, PortChopsError
from .errors import MigrationError
from .history import _History

_LOCK_ID = "lock"
#: How long a lock lasts without a heartbeat (renewed every third of it). Well under
#: the default lock timeout (60 s), so a runner that died right after taking the lock
#: is taken over by the next one with time to spare.
LEASE_SECONDS = 20.0
_POLL_SECONDS = 0.1


class _Lock:
    """The run lock: a conditional PutItem with a lease, renewed by a heartbeat thread."""

    def __init__(self, history: _History, *, lease: float = LEASE_SECONDS) -> None:
        self.history = history
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, *, timeout: float, console: Console) -> None:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            now = time.time()
            try:
                self.history.call(
                    "PutItem",
                    {
                        "Item": {
                            "id": {"S": _LOCK_ID},
                            "owner": {"S": self.owner},
                            "expires_at": {"N": str(int(now + self.lease))},
                            "acquired_at": {"S": datetime.now(UTC).isoformat()},
                        },
                        "ConditionExpression": "attribute_not_exists(#id) OR #x <= :now",
                        "ExpressionAttributeNames": {"#id": "id", "#x": "expires_at"},
                        "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
                    },
                )
                break
            except ConditionFailed:
                holder = self.history.get(_LOCK_ID) or {}
                who = holder.get("owner", {}).get("S", "?")
                if time.monotonic() >= deadline:
                    until = holder.get("expires_at", {}).get("N", "0")
                    when = datetime.fromtimestamp(float(until), tz=UTC).isoformat(
                        timespec="seconds"
                    )
                    raise MigrationError(
                        f"another migration run ({who}) holds the lock in "
                        f"{self.history.table} until {when}; try again later"
                    ) from None
                if not announced:
                    console.print(f"waiting for the migration lock held by {escape(who)}")
                    announced = True
                time.sleep(_POLL_SECONDS)
        self._thread = threading.Thread(target=self._renew, daemon=True, name="portchops-lock")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.history.call(
                    "UpdateItem",
                    {
                        "Key": {"id": {"S": _LOCK_ID}},
                        "UpdateExpression": "SET #x = :t",
                        "ConditionExpression": "#o = :me",
                        "ExpressionAttributeNames": {"#o": "owner", "#x": "expires_at"},
                        "ExpressionAttributeValues": {
                            ":t": {"N": str(int(time.time() + self.lease))},
                            ":me": {"S": self.owner},
                        },
                    },
                )
            except ConditionFailed:
                self._lost.set()
                return
            except PortChopsError:
                continue  # transient: the next beat tries again while the lease lasts

    def check(self) -> None:
        if self._lost.is_set():
            raise MigrationError(f"lost the migration lock in {self.history.table}; stopping")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(ConditionFailed):  # the lease ran out: someone else has it
            self.history.call(
                "DeleteItem",
                {
                    "Key": {"id": {"S": _LOCK_ID}},
                    "ConditionExpression": "#o = :me",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": {":me": {"S": self.owner}},
                },
            )

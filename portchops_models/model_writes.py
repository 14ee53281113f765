"""The models' own writes (``user.save()``, ``row.update([...])``), served by the repository.

Domain code often writes through the model itself, as PynamoDB teaches. Those
methods (`BaseModel.save`, ``update``, ``delete``, ``batch_write``) are the
repository's writes here, so they carry the same guarantees: values checked
before the wire, exactly-once markers under lost answers, ``call_timeout``,
typed errors and cache eviction. The models sit below the repositories, so the
models call a `ModelWrites` that this module installs when the package is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .dynamo.idempotency import is_marker
from .errors import InvalidRequest
from .models.base import BaseModel, use_writes
from .ops import requests, writes
from .ops.sync_runtime import drive
from .repository import Repository

__all__ = ["RepositoryWrites"]


class RepositoryWrites:
    """`ModelWrites` through one cache-less `Repository` per model class."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repositories: dict[type[BaseModel], Repository[Any, Any]] = {}

    def repository(self, model: type[BaseModel]) -> Repository[Any, Any]:
        """The repository that writes `model`'s items (made on first use)."""
        found = self._repositories.get(model)
        if found is None:
            with self._lock:
                found = self._repositories.get(model)
                if found is None:
                    kind = type(f"{model.__name__}Writes", (Repository,), {"model": model})
                    found = self._repositories[model] = kind(cache=None)
        return found

    def save(self, item: BaseModel, condition: Condition | None, *, version_check: bool) -> None:
        """`Repository.save` (the version checked unless `version_check` is false)."""
        repo = self.repository(type(item))
        with repo._calling("save") as ctx:
            drive(writes.save(ctx, item, condition, version_check=version_check))

    def update(
        self,
        item: BaseModel,
        actions: Sequence[Action],
        condition: Condition | None,
        *,
        version_check: bool,
    ) -> dict[str, Any]:
        """`Repository.update` of the item's key, on the version it holds."""
        repo = self.repository(type(item))
        guard = _with_version(repo, item, condition, version_check)
        key = repo.shape.key_of_model(item)
        with repo._calling("update") as ctx:
            stored = drive(writes.update_raw(ctx, key, actions, guard))
        return {name: value for name, value in stored.items() if not is_marker(name)}

    def delete(self, item: BaseModel, condition: Condition | None, *, version_check: bool) -> None:
        """`Repository.delete` of the item (on the version it holds)."""
        repo = self.repository(type(item))
        guard = _with_version(repo, item, condition, version_check)
        with repo._calling("delete") as ctx:
            drive(writes.delete(ctx, item, guard))

    def batch(
        self, model: type[BaseModel], puts: Sequence[BaseModel], deletes: Sequence[BaseModel]
    ) -> None:
        """`Repository.batch_save` of `puts`, then `batch_delete` of `deletes`' keys."""
        repo = self.repository(model)
        shape = repo.shape
        keys: list[Hashable] = [shape.canonical(shape.key_of_model(item)) for item in deletes]
        put_keys = {shape.canonical(shape.key_of_model(item)) for item in puts}
        both = put_keys.intersection(keys)
        if both:
            raise InvalidRequest(
                f"{model.__name__}: key {next(iter(both))!r} is both saved and deleted in one batch"
            )
        if puts:
            with repo._calling("batch_save") as ctx:
                drive(writes.batch_save(ctx, puts))
        if keys:
            with repo._calling("batch_delete") as ctx:
                drive(writes.batch_delete(ctx, keys))


def _with_version(
    repo: Repository[Any, Any], item: BaseModel, condition: Condition | None, version_check: bool
) -> Condition | None:
    version = requests.version_condition(repo.shape, item) if version_check else None
    if version is None:
        return condition
    return version if condition is None else version & condition


use_writes(RepositoryWrites())

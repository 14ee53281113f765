"""The async API: the repositories of `portchops_models`, awaitable.

`AsyncRepository[ModelT, KeyT]` has every method of `Repository` with the same
arguments, policies (retry with budget, cache with single-flight, metrics, TTL
filtering, cursors, ``call_timeout``) and errors; `iter_query` and `scan` are
async iterators. It follows `configure()` like the sync side and works under any
event loop::

    from portchops_models.aio import AsyncUserRepository

    async def handler(user_id: str) -> str:
        return (await AsyncUserRepository().get(user_id)).name
"""

from __future__ import annotations

from .repositories import AsyncUserProgressRepository, AsyncUserRepository
from .repository import AsyncRepository
from .transactions import AsyncTransaction, read_transaction

__all__ = [
    "AsyncRepository",
    "AsyncTransaction",
    "AsyncUserProgressRepository",
    "AsyncUserRepository",
    "read_transaction",
]

"""Pins the types of the cache's hit path (`ItemCache.serve`) and of `safe_copy`;
checked by `mypy --strict` in `make test`. The functions are never called."""

from __future__ import annotations

from typing import Literal, assert_type

from portchops_models import User
from portchops_models.cache import ItemCache
from portchops_models.cache.store import MISSING, Missing
from portchops_models.models.copies import safe_copy, shareable

Raw = dict[str, dict[str, str]]


def serve(cache: ItemCache[str, Raw], user: User) -> None:
    def until(item: Raw) -> float:
        return float(len(item))

    def decode(item: Raw) -> User:
        return user

    assert_type(cache.serve("u1", None, until), Raw | Literal[Missing.MISSING])
    assert_type(cache.serve("u1", None, until, decode), User | Literal[Missing.MISSING])
    assert_type(cache.serve("u1", None, until, decode, keep=False) is MISSING, bool)
    assert_type(safe_copy(user), User)
    assert_type(shareable(user), bool)

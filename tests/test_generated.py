"""The sync API is generated from the async one (tools/unasync.py) and must not go stale.

Editing a generated file by hand, or changing an async source without running
`make generate`, fails here (and so in CI).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _unasync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "tools" / "unasync.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


UNASYNC = _unasync()


@pytest.mark.parametrize("pair", UNASYNC.PAIRS, ids=lambda pair: pair.target)
def test_each_sync_file_is_what_its_async_source_generates(pair: object) -> None:
    target = ROOT / "portchops_models" / pair.target  # type: ignore[attr-defined]
    assert target.read_text(encoding="utf-8") == UNASYNC.generate(pair), (
        f"{target.name} is stale or edited by hand: run `make generate`"
    )


def test_generated_files_say_so_and_keep_no_async_words() -> None:
    for pair in UNASYNC.PAIRS:
        text = (ROOT / "portchops_models" / pair.target).read_text(encoding="utf-8")
        assert "by tools/unasync.py: do not edit" in text
        for word in ("async def", "await ", "AsyncIterator", "AsyncRepository", "aio_runtime"):
            assert word not in text, (pair.target, word)


def test_the_transform_maps_the_async_words() -> None:
    pair = UNASYNC.Pair("aio/x.py", "x.py", '"""Doc."""')
    source = (
        '"""Async doc."""\n'
        "from ..ops.aio_runtime import drive\n"
        "from .repository import AsyncRepository\n"
        "class A(AsyncRepository):\n"
        "    async def f(self) -> AsyncIterator[int]:\n"
        "        async with t:\n"
        "            async for x in y:\n"
        "                return await drive(x)\n"
    )
    out = UNASYNC.transform(source, pair)
    assert out.startswith('"""Doc."""\n')
    assert "from .ops.sync_runtime import drive" in out
    assert "from .repository import Repository" in out
    assert "    def f(self) -> Iterator[int]:" in out
    assert "        with t:" in out
    assert "            for x in y:" in out
    assert "return drive(x)" in out

"""The documentation's examples run, so they cannot rot.

Every fenced ```python block in ``docs/`` is executed: a page's blocks run in
order in one fresh namespace, against the embedded engine (moto's server), with
``configure()`` pointing at it under a table prefix of the page's own and the
``User`` and ``UserProgress`` tables created. ``PORTCHOPS_ENDPOINT_URL`` and
``PORTCHOPS_TABLE_PREFIX`` are set too, so a bare ``configure()`` stays on the
engine.

A Python block that must not run (it needs real AWS, or code that does not exist
yet) says so in its fence, ```{.python .no-exec}; it is still compiled. Other
fence languages (``sh``, ``text``, ``json``...) are not Python and are left
alone; ``py``/``python3``/``pycon`` fences are refused, so no example escapes
execution by a spelling.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portchops_models.models import User, UserProgress
from portchops_models.repository import default_metrics
from portchops_models.settings import ENV_PREFIX, Settings, configure
from portchops_models.tables import create_table, delete_table
from portchops_models.testing.engine import LocalEngine
from portchops_models.transport.connection import current_connection

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
NO_EXEC = "no-exec"
#: Spellings of Python that would slip past execution: use ```python instead.
REFUSED = frozenset({"py", "py3", "python3", "pycon", "ipython", "pyi"})

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int  # 1-based line of the first line of code
    language: str
    classes: frozenset[str]
    source: str

    @property
    def is_python(self) -> bool:
        return self.language == "python"

    @property
    def executed(self) -> bool:
        return self.is_python and NO_EXEC not in self.classes

    @property
    def where(self) -> str:
        return f"docs/{self.path.name}:{self.line}"


def _parse_info(info: str) -> tuple[str, frozenset[str]]:
    """``python title="x"`` -> ("python", {}); ``{.python .no-exec}`` -> ("python", {"no-exec"})."""
    info = info.strip()
    if info.startswith("{"):
        classes = re.findall(r"(?<![\w=\"'])\.([\w-]+)", info.strip("{}"))
        return (classes[0] if classes else ""), frozenset(classes[1:])
    return (info.split()[0] if info else ""), frozenset()


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a page, in order, dedented (admonitions indent them)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = _OPEN.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, fence = opened["indent"], opened["fence"]
        language, classes = _parse_info(opened["info"])
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        if j == len(lines):
            raise AssertionError(f"docs/{path.name}:{i + 1}: code fence is never closed")
        blocks.append(Block(path, i + 2, language, classes, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def _python_pages() -> list[Path]:
    return [page for page in PAGES if any(b.executed for b in blocks_of(page))]


def _compile(block: Block) -> types.CodeType:
    # Padded so that line numbers in tracebacks are the page's own.
    padded = "\n" * (block.line - 1) + block.source
    return compile(padded, str(block.path), "exec")


@pytest.fixture(scope="module")
def docs_engine() -> Iterator[LocalEngine]:
    """moto's server for the examples (one per module; it starts in well under a second)."""
    with LocalEngine() as engine:
        yield engine


@pytest.fixture
def page_tables(docs_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at the engine under a fresh prefix, with both tables created."""
    prefix = f"docs-{uuid.uuid4().hex[:8]}-"
    monkeypatch.setenv(f"{ENV_PREFIX}ENDPOINT_URL", docs_engine.endpoint_url)
    monkeypatch.setenv(f"{ENV_PREFIX}TABLE_PREFIX", prefix)
    monkeypatch.delenv(f"{ENV_PREFIX}CURSOR_SECRET", raising=False)
    environ = dict(os.environ)
    settings = configure(endpoint_url=docs_engine.endpoint_url, table_prefix=prefix)
    default_metrics().reset()
    for model in (User, UserProgress):
        create_table(model)
    yield settings
    os.environ.clear()  # examples may set variables (e.g. the cursor secret)
    os.environ.update(environ)
    configure(settings)
    conn = current_connection()
    for name in conn.call("ListTables", {}).get("TableNames", []):
        if name.startswith(prefix):  # the page may have created tables of its own
            delete_table(name, conn=conn)
    default_metrics().reset()


@pytest.mark.parametrize("page", _python_pages(), ids=lambda page: page.stem)
def test_page_examples_run(page: Path, page_tables: Settings) -> None:
    """Run the page's python blocks in order, in one namespace of its own."""
    name = f"docs_{page.stem.replace('-', '_')}"
    module = types.ModuleType(name)  # a real module, so pydantic and dataclasses resolve names
    sys.modules[name] = module
    try:
        for block in blocks_of(page):
            if block.executed:
                exec(_compile(block), module.__dict__)
    finally:
        del sys.modules[name]


def test_every_page_is_found() -> None:
    assert len(PAGES) >= 10, f"no documentation pages under {DOCS}"
    assert _python_pages(), "no page has an executed python example"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_python_blocks_are_marked_honestly(page: Path) -> None:
    """Python is fenced as ```python (run) or ```{.python .no-exec} (compiled only)."""
    for block in blocks_of(page):
        assert block.language.lower() not in REFUSED, (
            f"{block.where}: fence it as ```python (or ```{{.python .{NO_EXEC}}})"
        )
        if block.is_python:
            _compile(block)  # at least valid Python, run or not


def test_settings_table_lists_every_setting_with_its_default() -> None:
    """getting-started.md documents every `Settings` field, its variable and its default."""
    text = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    rows = {
        cells[0].strip("` "): cells[1].strip("` ")
        for line in text.splitlines()
        if line.startswith(f"| `{ENV_PREFIX}")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for field, info in Settings.model_fields.items():
        variable = f"{ENV_PREFIX}{field.upper()}"
        assert variable in rows, f"getting-started.md: no row for {variable}"
        assert ast.literal_eval(rows[variable]) == info.default, f"{variable}: default differs"

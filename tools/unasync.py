"""Generate the sync API from the async one: one source for every public method.

The async faces (``portchops_models/aio/repository.py``, ``repositories.py``,
``transactions.py``, ``entities/aio.py``) and the async pager
(``ops/aio_paging.py``) are the source. Each sync twin is the same text with
the async words replaced by their sync counterparts (``async def`` -> ``def``, ``await x`` -> ``x``,
``AsyncIterator`` -> ``Iterator``, ``AsyncRepository`` -> ``Repository``, the
async runtime module -> the sync one: `portchops_models.ops.sync_runtime` and
`portchops_models.ops.aio_runtime` define the same names), a module docstring of
its own, and a header that says not to edit it; then ``ruff format`` and the
import sort. This is httpcore's ``unasync`` approach (token replacement), with
the runtimes as the seam, as in psycopg.

Usage::

    python tools/unasync.py          # write the sync files
    python tools/unasync.py --check  # exit 1 if any is stale (CI; tests/test_generated.py)
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portchops_models"


@dataclass(frozen=True)
class Pair:
    """One generated file: its async source, its path, and its module docstring."""

    source: str
    target: str
    docstring: str


PAIRS = (
    Pair(
        "aio/repository.py",
        "repository.py",
        '''"""`Repository[ModelT, KeyT]`: the whole typed API for any model.

Subclass it and set ``model``; the subclass gets every method, typed for its
model and key, and adds only domain helpers::

    class LessonRepository(Repository[Lesson, tuple[str, int]]):
        model = Lesson

    lessons = LessonRepository()
    lessons.save(Lesson(course_id="py", position=1, title="Intro"))
    lessons.get(("py", 1))                                   # -> Lesson
    lessons.query("py", Lesson.position.between(1, 8))       # -> Page[Lesson]
    lessons.query("advanced", index=Lesson.by_level)         # any index, by attribute or name

``KeyT`` is the hash key's type for hash-only tables and a ``(hash, range)``
tuple otherwise. The repository only orchestrates: the table shape comes from
`portchops_models.models.shape`, request payloads from `portchops_models.ops.requests`, the
operations from `portchops_models.ops`, written once as coroutines and run to
completion in the calling thread by the sync runtime
(`portchops_models.ops.sync_runtime`), each public call under its
``call_timeout`` deadline. Items whose TTL has passed are left out of every read
(DynamoDB deletes them lazily and still returns them until then).
"""''',
    ),
    Pair(
        "aio/repositories.py",
        "repositories.py",
        '''"""`UserRepository` and `UserProgressRepository`: the built-in models' domain helpers.

Everything generic (get, find, exists, batch reads, queries, counts, writes,
scans) comes from `Repository`; these classes add only what is particular to
users and progress rows: key-shaped calls (``progress.get(user_id, lesson_id)``),
lookups by email, attempts and completions, built from the domain rules of
`portchops_models.domain`.

Examples:
    >>> from portchops_models import UserRepository
    >>> users = UserRepository()                       # doctest: +SKIP
    >>> users.get("u1").email                          # doctest: +SKIP
    'ada@example.com'
"""''',
    ),
    Pair(
        "aio/transactions.py",
        "transactions.py",
        '''"""Typed transactions across tables: `Transaction` and `read_transaction`.

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
"""''',
    ),
    Pair(
        "ops/aio_paging.py",
        "ops/paging.py",
        '''"""Paging through a query's pages: every item, one page in memory at a time."""''',
    ),
    Pair(
        "entities/aio.py",
        "entities/collection.py",
        '''"""`Collection`: the items several entities keep in one partition, in one Query.

Subclass it and list the entities (they share a table and a partition template)::

    class Profile(Collection):
        entities = (Student, Mark, Badge)

    page = Profile().query("s1")   # one Query of partition STUDENT#s1
    page.of(Student)               # -> list[Student]
    page.of(Mark)                  # -> list[Mark]
    page.skipped                   # items of other entity types, left out

Pages come with cursors as a repository's queries do (``cursor=``); `query_all`
follows them. Each call runs under ``call_timeout``, with the connection's
retries, metrics and trace span, like any repository call.
"""''',
    ),
)

#: Whole-word replacements, applied in order (code and docstrings alike).
WORDS = (
    ("AsyncUserProgressRepository", "UserProgressRepository"),
    ("AsyncUserRepository", "UserRepository"),
    ("AsyncRepository", "Repository"),
    ("AsyncTransaction", "Transaction"),
    ("AsyncCollection", "Collection"),
    ("AsyncIterator", "Iterator"),
    ("AsyncIterable", "Iterable"),
    ("StopAsyncIteration", "StopIteration"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("__aiter__", "__iter__"),
    ("__anext__", "__next__"),
    ("aio_runtime", "sync_runtime"),
    ("aio_paging", "paging"),
)
#: Phrases of the async docstrings that the sync ones say otherwise.
PHRASES = (
    (", for async code", ""),
    (" for async code", ""),
    ("(``async for`` them)", "(``for`` them)"),
)
_KEYWORDS = (
    (re.compile(r"\basync def\b"), "def"),
    (re.compile(r"\basync for\b"), "for"),
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\bawait "), ""),
)
_DOCSTRING = re.compile(r'\A"""(?:.|\n)*?"""\n', re.MULTILINE)


def transform(source: str, pair: Pair) -> str:
    """The sync text of an async source (before formatting)."""
    body = _DOCSTRING.sub("", source, count=1)
    for pattern, sync in _KEYWORDS:
        body = pattern.sub(sync, body)
    for word, sync in WORDS:
        body = re.sub(rf"\b{word}\b", sync, body)
    for phrase, sync in PHRASES:
        body = body.replace(phrase, sync)
    if Path(pair.source).parent != Path(pair.target).parent:
        # aio/x.py -> x.py: one package level up, so one dot less in relative imports
        body = re.sub(r"^from \.\.", "from .", body, flags=re.MULTILINE)
    header = (
        f"# Generated from portchops_models/{pair.source} by tools/unasync.py: do not edit.\n"
        "# Change the async source, then run `make generate`.\n"
    )
    return f"{pair.docstring}\n\n{header}{body}"


def _ruff(*args: str, text: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff) if ruff.exists() else "ruff", *args, "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def generate(pair: Pair) -> str:
    """The formatted sync file of one pair."""
    text = transform((PACKAGE / pair.source).read_text(encoding="utf-8"), pair)
    name = str(PACKAGE / pair.target)
    text = _ruff("check", "--select", "I", "--fix", "--quiet", "--stdin-filename", name, text=text)
    return _ruff("format", "--stdin-filename", name, text=text)


def stale() -> list[str]:
    """The generated files that differ from what their sources generate now."""
    return [
        pair.target
        for pair in PAIRS
        if (PACKAGE / pair.target).read_text(encoding="utf-8") != generate(pair)
    ]


def main(argv: list[str]) -> int:
    """Write the sync files, or with ``--check`` report the stale ones."""
    if "--check" in argv:
        found = stale()
        for target in found:
            print(f"portchops_models/{target} is stale: run `make generate`", file=sys.stderr)
        return 1 if found else 0
    for pair in PAIRS:
        (PACKAGE / pair.target).write_text(generate(pair), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Lines that must NOT type-check: mypy is run on them and must report each one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BAD = """
from portchops_models import Projection, User, UserProgress, UserProgressRepository, UserRepository

class LessonScore(Projection[UserProgress]):
    lesson_id: str

users = UserRepository()
progress = UserProgressRepository()
users.get(42)  # E: key must be a str
users.get("u1", projection=LessonScore)  # E: projection of another model
progress.get(("u1", 2))  # E: lesson_id must be a str
progress.query("u1", limit="7")  # E: limit must be an int
summary: str = users.get("u1")  # E: a User is not a str
found: User = users.find("u1")  # E: find may return None
progress.query("u1").items[0].no_such_attribute  # E: unknown attribute
users.batch_get([("u1", "l1")])  # E: user keys are str
progress.get("u1")  # E: a lone user_id is not a key
progress.get("u1", projection=LessonScore)  # E: a lone user_id is not a key
progress.find("u1")  # E: a lone user_id is not a key
progress.exists("u1")  # E: a lone user_id is not a key
progress.delete("u1")  # E: a lone user_id is not a key
progress.update("u1", score=90.0)  # E: a lone user_id is not a key
progress.iter_query("u1", page_size="5")  # E: page_size must be an int
progress.batch_get([("u1", "l1")], consistent="yes")  # E: consistent is a bool
from tests.lesson_model import Lesson, LessonRepository

class UserName(Projection[User]):
    name: str

lessons = LessonRepository()
lessons.get(("py", "1"))  # E: position must be an int
lessons.get(("py", 1), projection=UserName)  # E: projection of another model
lessons.batch_get([1])  # E: lesson keys are (course_id, position) tuples
lessons.get("py")  # E: a composite key is a tuple
lessons.scan(index=3)  # E: an index is its attribute or its name
lessons.iter_query("py", limit="5")  # E: limit must be an int
title: int = lessons.get(("py", 1)).title  # E: title is a str
maybe: Lesson = lessons.find(("py", 1))  # E: find may return None
from portchops_models.aio import AsyncUserProgressRepository, AsyncUserRepository

async_users = AsyncUserRepository()
async_progress = AsyncUserProgressRepository()
not_awaited: User = async_users.get("u1")  # E: a coroutine, not a User
async def handler() -> None:
    await async_users.get(42)  # E: key must be a str
    await async_users.get("u1", projection=LessonScore)  # E: projection of another model
    named: str = await async_users.get("u1")  # E: a User is not a str
    for row in async_progress.iter_query("u1"):  # E: an async iterator needs async for
        pass
    await async_progress.query("u1", limit="7")  # E: limit must be an int
    await async_progress.get("u1")  # E: a lone user_id is not a key
    await async_progress.find("u1")  # E: a lone user_id is not a key
    await async_progress.delete("u1")  # E: a lone user_id is not a key
    await async_progress.update("u1", score=90.0)  # E: a lone user_id is not a key
from portchops_models.streams import Change, StreamWorker, changes_from_event

changed: User | None = changes_from_event({"Records": []}, UserProgress)[0].new  # E: another model
changes_from_event({"Records": []}, dict)  # E: a model, not any class


def of_users(changes: list[Change[User]]) -> None: ...


StreamWorker(UserProgress, of_users, name="x")  # E: a handler of another model's changes
StreamWorker(UserProgress, of_users)  # E: a worker needs its fleet's name
from tests.school_model import AsyncProfile, Mark, Marks, Profile, Student, Students

Marks().get(("s1", "intro", "2"))  # E: try_no is an int
Marks().get(("s1", "intro"))  # E: a mark's natural key has three parts
Students().get(("s1", "PROFILE"))  # E: a student's key is its student_id
marks: list[Student] = Profile().query("s1").of(Mark)  # E: marks are not students
Profile().query("s1").of(dict)  # E: a model, not any class
not_a_page: int = Profile().query("s1")  # E: a CollectionPage
async def entity_handler() -> None:
    await AsyncProfile().query("s1").of(Student)  # E: the page must be awaited first
"""


def test_bad_usage_is_rejected_by_mypy(tmp_path: Path) -> None:
    source = tmp_path / "bad_usage.py"
    source.write_text(BAD)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    expected = [n for n, line in enumerate(BAD.splitlines(), 1) if "# E:" in line]
    reported = {
        int(line.split(":")[1])
        for line in result.stdout.splitlines()
        if line.startswith(str(source)) and ": error:" in line
    }
    missing = [n for n in expected if n not in reported]
    assert not missing, f"mypy accepted lines {missing}:\n{result.stdout}"
    unexpected = sorted(reported - set(expected))
    assert not unexpected, f"unexpected errors on lines {unexpected}:\n{result.stdout}"

"""A typed async web service over the async repositories (FastAPI).

Three endpoints: a user, a page of their progress (with the opaque cursor of the
previous page), and recording an attempt. Each handler awaits the repositories
on the server's event loop: no thread pool. Errors of the layer map to HTTP
statuses in one place (`_errors`). Run it with any ASGI server::

    PORTCHOPS_ENDPOINT_URL=http://127.0.0.1:8000 uvicorn examples.fastapi_app:app

It is type-checked with `mypy --strict` and tested through its ASGI app by
`tests/test_fastapi_app.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portchops_models import (
    InvalidRequest,
    ItemNotFound,
    PortChopsError,
    Projection,
    ServiceError,
    User,
    UserProgress,
)
from portchops_models.aio import AsyncUserProgressRepository, AsyncUserRepository


class UserOut(Projection[User]):
    """A user as the API shows it (only these attributes are read)."""

    user_id: str
    name: str
    email: str


class ProgressOut(Projection[UserProgress]):
    """One lesson's progress as the API shows it."""

    lesson_id: str
    status: str
    score: float
    attempts: int


class ProgressPage(BaseModel):
    """A page of progress rows; pass ``cursor`` back for the next page."""

    items: list[ProgressOut]
    cursor: str | None


class Attempt(BaseModel):
    """The body of a recorded attempt."""

    score: float = Field(ge=0, le=100)


@dataclass(frozen=True)
class Repositories:
    """The repositories one app instance uses (built when it starts)."""

    users: AsyncUserRepository
    progress: AsyncUserProgressRepository


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.repositories = Repositories(AsyncUserRepository(), AsyncUserProgressRepository())
    yield


def repositories(request: Request) -> Repositories:
    """The app's repositories (a FastAPI dependency)."""
    found: Repositories = request.app.state.repositories
    return found


#: the handlers' repositories, injected by FastAPI.
Repos = Annotated[Repositories, Depends(repositories)]


def create_app() -> FastAPI:
    """The service, with its routes and error mapping."""
    app = FastAPI(title="port-chops progress", lifespan=_lifespan)
    app.add_exception_handler(PortChopsError, _errors)  # type: ignore[arg-type]

    @app.get("/users/{user_id}")
    async def get_user(user_id: str, repos: Repos) -> UserOut:
        return await repos.users.get(user_id, projection=UserOut)

    @app.get("/users/{user_id}/progress")
    async def list_progress(
        user_id: str,
        repos: Repos,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> ProgressPage:
        page = await repos.progress.query(
            user_id, limit=limit, cursor=cursor, projection=ProgressOut
        )
        return ProgressPage(items=page.items, cursor=page.cursor)

    @app.post("/users/{user_id}/lessons/{lesson_id}/attempts")
    async def record_attempt(
        user_id: str,
        lesson_id: str,
        attempt: Attempt,
        repos: Repos,
    ) -> ProgressOut:
        row = await repos.progress.record_attempt(user_id, lesson_id, attempt.score)
        return ProgressOut(
            lesson_id=row.lesson_id, status=row.status, score=row.score, attempts=row.attempts
        )

    return app


async def _errors(request: Request, err: PortChopsError) -> JSONResponse:
    """The layer's typed errors as HTTP answers: 404, 400, 503, else 500."""
    if isinstance(err, ItemNotFound):
        status = 404
    elif isinstance(err, InvalidRequest):
        status = 400
    elif isinstance(err, ServiceError):
        status = 503  # throttled for too long, timed out, or DynamoDB unavailable
    else:
        status = 500
    return JSONResponse({"error": type(err).__name__, "detail": str(err)}, status_code=status)


app = create_app()

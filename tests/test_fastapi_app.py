"""The FastAPI example through its ASGI app (httpx's ASGI transport), on both engines."""

from __future__ import annotations

import asyncio

import httpx

from examples.fastapi_app import create_app
from portchops_models import User, UserRepository
from portchops_models.settings import Settings


async def _session(calls: list[tuple[str, str, dict[str, object] | None]]) -> list[httpx.Response]:
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(m, url, json=body) for m, url, body in calls]


def test_get_a_user_page_progress_and_record_attempts(any_tables: Settings) -> None:
    UserRepository().save(User(user_id="u1", email="ada@x.io", name="Ada"))
    attempts = [
        ("POST", f"/users/u1/lessons/l{i}/attempts", {"score": 50 + i * 10}) for i in range(5)
    ]
    responses = asyncio.run(
        _session(
            [
                ("GET", "/users/u1", None),
                *attempts,
                ("POST", "/users/u1/lessons/l0/attempts", {"score": 90}),
                ("GET", "/users/u1/progress?limit=3", None),
            ]
        )
    )
    user, *recorded, again, first_page = responses
    assert user.status_code == 200
    assert user.json() == {"user_id": "u1", "name": "Ada", "email": "ada@x.io"}
    assert [r.json()["attempts"] for r in recorded] == [1] * 5
    assert again.json() == {"lesson_id": "l0", "status": "completed", "score": 90.0, "attempts": 2}
    page = first_page.json()
    assert [row["lesson_id"] for row in page["items"]] == ["l0", "l1", "l2"]
    assert page["cursor"] is not None

    (second,) = asyncio.run(
        _session([("GET", f"/users/u1/progress?cursor={page['cursor']}", None)])
    )
    assert [row["lesson_id"] for row in second.json()["items"]] == ["l3", "l4"]
    assert second.json()["cursor"] is None


def test_errors_become_http_statuses(any_tables: Settings) -> None:
    missing, bad_cursor, bad_score = asyncio.run(
        _session(
            [
                ("GET", "/users/nobody", None),
                ("GET", "/users/u1/progress?cursor=edited", None),
                ("POST", "/users/u1/lessons/l1/attempts", {"score": 101}),
            ]
        )
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == "ItemNotFound"
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"] == "InvalidRequest"
    assert bad_score.status_code == 422  # rejected by the API's own validation

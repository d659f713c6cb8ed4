"""Small helpers for tests that speak tRPC to a live application."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

PASSWORD = "correct horse battery"


async def call(
    client: TestClient, path: str, input: Any = None, *, token: str | None = None, method: str | None = None
) -> tuple[int, dict]:
    """Call one procedure: GET with ?input= for queries, POST for mutations (guessed from `method`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verb = method or ("GET" if _looks_like_query(path) else "POST")
    if verb == "GET":
        params = {"input": json.dumps(input)} if input is not None else {}
        resp = await client.get(f"/trpc/{path}", params=params, headers=headers)
    else:
        data = json.dumps(input) if input is not None else None
        resp = await client.post(f"/trpc/{path}", data=data, headers={**headers, "Content-Type": "application/json"})
    return resp.status, await resp.json()


def _looks_like_query(path: str) -> bool:
    name = path.rsplit(".", 1)[-1]
    return name.startswith(("get", "list", "pull"))


def data(body: dict) -> Any:
    assert "result" in body, body
    return body["result"].get("data")


def error_code(body: dict) -> str:
    assert "error" in body, body
    return body["error"]["data"]["code"]


async def register(client: TestClient, email: str, password: str = PASSWORD) -> dict:
    """Register (registration = open) and return the auth result: tokens and user."""
    status, body = await call(client, "auth.register", {"email": email, "password": password})
    assert status == 200, body
    return data(body)


async def login(client: TestClient, email: str, password: str = PASSWORD, **extra: Any) -> dict:
    status, body = await call(client, "auth.login", {"email": email, "password": password, **extra})
    assert status == 200, body
    return data(body)

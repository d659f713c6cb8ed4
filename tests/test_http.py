"""The HTTP edges every route shares: request ids, security headers, CORS, JSON errors, health checks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import make_settings
from trainer import __version__
from trainer.app import create_app
from trainer.db import Database
from trainer.errors import RateLimited
from trainer.http import SECURITY_HEADERS

ORIGIN = "https://app.example.com"
# Middlewares do not depend on the database: those tests run on SQLite only; readiness runs on both.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("internal detail: /srv/trainer/secret.py line 7")


async def _limited(request: web.Request) -> web.Response:
    raise RateLimited("slow down", retry_after=3)


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@asynccontextmanager
async def serve(tmp_path: Path, db_url: str, db: Database, **overrides: Any) -> AsyncIterator[TestClient]:
    """The real app with a few throwaway REST routes added (the error middleware is shared by all routes)."""
    app = create_app(make_settings(tmp_path, db_url, **overrides), db=db)
    app.router.add_get("/test/boom", _boom)
    app.router.add_get("/test/limited", _limited)
    app.router.add_post("/test/echo", _echo)
    async with TestClient(TestServer(app)) as client:
        yield client


# -- request ids ----------------------------------------------------------------------------------


@sqlite_only
async def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert GENERATED_ID.match(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@sqlite_only
async def test_valid_incoming_request_id_is_echoed(client: TestClient) -> None:
    for rid in ("abc-123", "proxy.req_42", "x" * 64):
        resp = await client.get("/healthz", headers={"X-Request-ID": rid})
        assert resp.headers["X-Request-ID"] == rid


@sqlite_only
async def test_invalid_incoming_request_id_is_replaced(client: TestClient) -> None:
    for rid in ("x" * 65, "has space", "semi;colon", "<script>", "ünïcode"):
        resp = await client.get("/healthz", headers={"X-Request-ID": rid})
        assert GENERATED_ID.match(resp.headers["X-Request-ID"]), rid


@sqlite_only
async def test_request_id_on_errors_too(client: TestClient) -> None:
    for path in ("/no/such/route", "/trpc/no.such", "/trpc/user.getProfile"):
        resp = await client.get(path, headers={"X-Request-ID": "trace-me"})
        assert resp.status >= 400
        assert resp.headers["X-Request-ID"] == "trace-me"


# -- security headers -----------------------------------------------------------------------------


@sqlite_only
async def test_security_headers_on_every_kind_of_response(client: TestClient) -> None:
    for method, path in [("GET", "/healthz"), ("GET", "/nope"), ("GET", "/trpc/user.getProfile"), ("HEAD", "/trpc/x")]:
        resp = await client.request(method, path)
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Cache-Control"] == "no-store"


# -- CORS -----------------------------------------------------------------------------------------


@sqlite_only
async def test_cors_is_off_by_default(client: TestClient) -> None:
    resp = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
    preflight = await client.options(
        "/trpc/user.getProfile", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status != 204
    assert "Access-Control-Allow-Origin" not in preflight.headers


@sqlite_only
async def test_cors_for_configured_origins(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(tmp_path, db_url, db, cors_origins=[ORIGIN]) as client:
        preflight = await client.options(
            "/trpc/user.getProfile",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert "Origin" in preflight.headers["Vary"]

        resp = await client.get("/trpc/user.getProfile", headers={"Origin": ORIGIN})
        assert resp.status == 401  # CORS decides who may read the answer, not who is signed in
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN

        stranger = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in stranger.headers
        refused = await client.options(
            "/trpc/user.getProfile", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert refused.status != 204
        assert "Access-Control-Allow-Origin" not in refused.headers


@sqlite_only
async def test_cors_wildcard(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(tmp_path, db_url, db, cors_origins=["*"]) as client:
        resp = await client.get("/healthz", headers={"Origin": "https://anything.example"})
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


# -- JSON errors outside tRPC ----------------------------------------------------------------------


@sqlite_only
async def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    resp = await client.get("/no/such/route")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == {"error": {"code": "NOT_FOUND", "message": "no route for GET /no/such/route"}}


@sqlite_only
async def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    resp = await client.post("/healthz")
    assert resp.status == 405
    body = await resp.json()
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert body["error"]["message"] == "POST is not allowed on /healthz (allowed: GET, HEAD)"


@sqlite_only
async def test_unhandled_exception_is_a_json_500_without_internals(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(tmp_path, db_url, db) as client:
        resp = await client.get("/test/boom")
        assert resp.status == 500
        assert await resp.json() == {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error"}}


@sqlite_only
async def test_domain_errors_map_to_their_status(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(tmp_path, db_url, db) as client:
        resp = await client.get("/test/limited")
        assert resp.status == 429
        assert await resp.json() == {"error": {"code": "TOO_MANY_REQUESTS", "message": "slow down"}}


@sqlite_only
async def test_oversized_body_outside_trpc_is_a_json_413(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(tmp_path, db_url, db, max_body_bytes=2048, sync_max_push_bytes=4096) as client:
        assert (await client.post("/test/echo", data=b"x" * 100)).status == 200
        resp = await client.post("/test/echo", data=b"x" * 10_000)
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"


# -- health ---------------------------------------------------------------------------------------


@sqlite_only
async def test_healthz(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "version": __version__}


async def test_readyz_when_ready(client: TestClient, db: Database) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "database": db.dialect}


async def test_readyz_is_503_when_the_database_is_closed(client: TestClient, db: Database) -> None:
    await db.close()
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "unavailable"
    health = await client.get("/healthz")  # liveness does not depend on the database
    assert health.status == 200


async def test_readyz_is_503_when_the_schema_is_from_a_newer_program(client: TestClient, db: Database) -> None:
    await db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'future', 'x', 0)"
    )
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["reason"] == "MigrationError"

"""GET /metrics: request counts by route template, tRPC results, database readings, and no secrets in labels."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import make_settings
from tests.helpers import call, register
from trainer import clock, metrics
from trainer.app import create_app
from trainer.db import Database, create_database
from trainer.db.catalog import has_table


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text output, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if series.split("{")[0] == name and found == labels:
            return float(value)
    return None


async def scrape(client: TestClient, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    return await resp.text()


async def test_requests_are_labelled_by_route_template_never_by_path(client: TestClient) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no/such/page-with-a-SECRETTOKEN123")
    await call(client, "user.getProfile")  # no token: UNAUTHORIZED
    await call(client, "SECRETTOKEN123.lookLikeAnId")  # unknown procedure
    text = await scrape(client)
    assert sample(text, "trainer_http_requests_total", method="GET", route="/healthz", status="200") == 2
    assert sample(text, "trainer_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert sample(text, "trainer_http_request_duration_seconds_count", method="GET", route="/healthz") == 2
    assert sample(text, "trainer_trpc_calls_total", procedure="user.getProfile", code="UNAUTHORIZED") == 1
    assert sample(text, "trainer_trpc_calls_total", procedure="unknown", code="NOT_FOUND") == 1
    assert "SECRETTOKEN123" not in text
    assert sample(text, "trainer_build_info", version=metrics.__version__) == 1


def test_request_latency_is_a_cumulative_histogram_per_route() -> None:
    """Requests of every status add up in their route's histogram; buckets count `le` (<=)."""
    from prometheus_client import CollectorRegistry, generate_latest

    counts = metrics.RequestCounts()
    registry = CollectorRegistry()
    registry.register(counts)
    for seconds, status in ((0.004, 200), (0.005, 200), (0.02, 200), (0.3, 500), (45.0, 200)):
        counts.observe("POST", "/webhooks/{a}", status, seconds)
    counts.observe("BREW", "/webhooks/{a}", 405, 0.001)
    text = generate_latest(registry).decode()
    route = {"method": "POST", "route": "/webhooks/{a}"}
    assert sample(text, "trainer_http_requests_total", **route, status="200") == 4
    assert sample(text, "trainer_http_requests_total", **route, status="500") == 1
    assert sample(text, "trainer_http_requests_total", method="other", route="/webhooks/{a}", status="405") == 1
    assert sample(text, "trainer_http_request_duration_seconds_bucket", **route, le="0.005") == 2
    assert sample(text, "trainer_http_request_duration_seconds_bucket", **route, le="0.025") == 3
    assert sample(text, "trainer_http_request_duration_seconds_bucket", **route, le="0.5") == 4
    assert sample(text, "trainer_http_request_duration_seconds_bucket", **route, le="30.0") == 4
    assert sample(text, "trainer_http_request_duration_seconds_bucket", **route, le="+Inf") == 5
    assert sample(text, "trainer_http_request_duration_seconds_count", **route) == 5
    assert sample(text, "trainer_http_request_duration_seconds_sum", **route) == pytest.approx(45.329)


async def test_trpc_results_by_procedure_including_batches(client: TestClient) -> None:
    auth = await register(client, "metrics@example.com")
    token = auth["accessToken"]
    await call(client, "user.getProfile", token=token)
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/trpc/user.getProfile,nope.nothing?batch=1", params={"input": "{}"}, headers=headers)
    assert resp.status == 207
    resp = await client.get(
        "/trpc/user.getProfile,nope.nothing?batch=1",
        params={"input": "{}"},
        headers={**headers, "trpc-accept": "application/jsonl"},
    )
    assert resp.status == 200
    text = await scrape(client)
    assert sample(text, "trainer_trpc_calls_total", procedure="auth.register", code="OK") == 1
    assert sample(text, "trainer_trpc_calls_total", procedure="user.getProfile", code="OK") == 3
    assert sample(text, "trainer_trpc_calls_total", procedure="unknown", code="NOT_FOUND") == 2
    assert "metrics@example.com" not in text and token not in text


async def insert_inbox(db: Database, user_id: str, plugin: str, state: str, attempts: int, due_ms: int) -> None:
    now = clock.now_ms()
    await db.execute(
        """INSERT INTO inbox (id, plugin, kind, user_id, external_user_id, event_time, dedupe_key, state, attempts,
                              received_at, next_attempt_at)
           VALUES ($1, $2, 'activity', $3, 'ext', 0, $1, $4, $5, $6, $7)""",
        f"{plugin}-{state}-{attempts}-{due_ms}",
        plugin,
        user_id,
        state,
        attempts,
        now - 10_000,
        due_ms,
    )


async def test_database_readings_at_scrape_time(client: TestClient, db: Database) -> None:
    if not await has_table(db, "inbox", "state"):
        pytest.skip("the ingest migration is not in this tree")
    user = (await register(client, "inbox@example.com"))["user"]["id"]
    now = clock.now_ms()
    await insert_inbox(db, user, "strava", "pending", 0, now - 1000)
    await insert_inbox(db, user, "strava", "pending", 2, now - 1000)
    await insert_inbox(db, user, "garmin", "pending", 1, now + 3_600_000)  # backing off: not due yet
    await insert_inbox(db, user, "garmin", "failed", 8, now)
    await insert_inbox(db, user, "strava", "done", 1, now)
    text = await scrape(client)
    assert sample(text, "trainer_database_up") == 1
    assert sample(text, "trainer_inbox_events", state="pending") == 3
    assert sample(text, "trainer_inbox_events", state="failed") == 1
    assert sample(text, "trainer_queue_due") == 2
    assert sample(text, "trainer_queue_oldest_due_age_seconds") >= 10
    assert sample(text, "trainer_task_failed", plugin="garmin") == 1
    assert sample(text, "trainer_task_retrying", plugin="strava") == 1
    assert sample(text, "trainer_task_retrying", plugin="garmin") == 1

    await db.execute("UPDATE inbox SET state = 'done' WHERE state <> 'done'")
    text = await scrape(client)
    assert sample(text, "trainer_inbox_events", state="failed") is None  # emptied states drop out
    assert sample(text, "trainer_queue_due") == 0


async def test_scrape_without_optional_tables(tmp_path: Path) -> None:
    """A database without the inbox (older schema, other deployments) still scrapes cleanly."""
    db = create_database(f"sqlite:///{tmp_path / 'bare.db'}")
    await db.open()
    try:
        readings = metrics.Metrics()
        await readings.refresh(db)
        text = readings.render().decode()
    finally:
        await db.close()
    assert sample(text, "trainer_database_up") == 1
    assert sample(text, "trainer_inbox_events", state="pending") is None


async def test_database_down_is_reported_not_raised(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'closed.db'}")  # never opened
    readings = metrics.Metrics()
    await readings.refresh(db)
    assert sample(readings.render().decode(), "trainer_database_up") == 0


@pytest.fixture
async def app_with_probe(tmp_path: Path, db_url: str, db: Database) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, db_url, metrics_token="scrape-token-0123456789")
    app = create_app(settings, db=db)

    async def sync_probe(request: web.Request) -> web.Response:
        metrics.observe_sync(int(request.query["n"]), request.query["dir"])
        return web.json_response({})

    app.router.add_get("/probe/sync", sync_probe)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_token_protects_metrics_and_sync_sizes_are_observed(app_with_probe: TestClient) -> None:
    client = app_with_probe
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    await client.get("/probe/sync", params={"n": "12", "dir": "push"})
    await client.get("/probe/sync", params={"n": "3", "dir": "pull"})
    metrics.observe_sync(99, "pull")  # outside any request: ignored, not an error
    text = await scrape(client, "scrape-token-0123456789")
    assert sample(text, "trainer_sync_records_count", direction="push") == 1
    assert sample(text, "trainer_sync_records_sum", direction="push") == 12
    assert sample(text, "trainer_sync_records_sum", direction="pull") == 3


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    one, two = create_app(settings), create_app(settings)
    assert one[metrics.METRICS].registry is not two[metrics.METRICS].registry

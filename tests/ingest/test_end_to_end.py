"""The whole spine with the bundled vendor plugins against local fakes of Strava and Garmin:

    webhook -> inbox row -> Huey doorbell -> worker thread -> plugin fetches from the (fake) vendor
    -> activity (with streams) stored -> daily state recomputed

through the server with its embedded worker, exactly as `trainer serve` runs it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.garmin import FakeGarmin
from tests.fakes.strava import FakeStrava
from tests.ingest.test_queue import wait_until
from trainer.app import create_app
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.routes import embed_worker
from trainer.plugins import Account, TokenSet
from trainer.store import accounts, users
from trainer.store.accounts import TokenCipher

PATH_TOKEN = "End-To-End-Path-Token_0123456789"
SUBSCRIPTION_ID = 120475


async def linked_user(db: Database, plugin: str, external_id: str, token_body: dict[str, Any]) -> str:
    user = await users.create(db, email=f"{plugin}-{external_id}@example.com", password_hash="not-a-real-hash")
    await users.set_settings(db, user.id, {"hr_max": 190, "hr_rest": 50})
    expires_at = token_body.get("expires_at") or int(time.time()) + token_body["expires_in"]
    tokens = TokenSet(token_body["access_token"], token_body["refresh_token"], expires_at, external_user_id=external_id)
    async with db.transaction() as tx:
        await accounts.save(tx, TokenCipher(TEST_SECRET), Account(user.id, plugin, external_id, tokens))
    return user.id


async def done(db: Database, n: int) -> bool:
    return (await inbox.count_by_state(db))["done"] == n


async def test_strava_webhook_fetch_store_and_delete(
    tmp_path: Path, db: Database, db_url: str, fake_strava: FakeStrava
) -> None:
    strava = fake_strava.plugin_settings(subscription_id=SUBSCRIPTION_ID)
    settings = make_settings(
        tmp_path, db_url, queue_url="memory://", webhook_path_token=PATH_TOKEN, plugins={"strava": strava}
    )
    athlete = fake_strava.add_athlete()
    user_id = await linked_user(db, "strava", str(athlete), fake_strava.issue_tokens(athlete))
    start = datetime.now(UTC) - timedelta(hours=5)
    activity = fake_strava.add_activity(athlete, start=start, samples=1200)
    url = f"/webhooks/{PATH_TOKEN}/strava"

    app = create_app(settings, db=db)
    embed_worker(app, 2)
    async with TestClient(TestServer(app)) as client:
        create = fake_strava.event("create", activity["id"], athlete) | {"subscription_id": SUBSCRIPTION_ID}
        assert (await client.post(url, json=create)).status == 200
        await wait_until(lambda: done(db, 1), 30, "the create event processed")
        row = await db.fetchrow("SELECT id, name, training_load FROM activities WHERE user_id = $1", user_id)
        assert row["name"] == "Morning Run" and row["training_load"] > 0
        assert await db.fetchval("SELECT sample_count FROM activity_streams WHERE activity_id = $1", row["id"]) == 1200
        assert await db.fetchval("SELECT count(*) FROM daily_state WHERE user_id = $1", user_id) >= 1
        fetched = [path for _method, path in fake_strava.api_requests()]
        assert fetched == [f"/api/v3/activities/{activity['id']}", f"/api/v3/activities/{activity['id']}/streams"]

        fake_strava.delete_activity(athlete, activity["id"])
        delete = fake_strava.event("delete", activity["id"], athlete) | {"subscription_id": SUBSCRIPTION_ID}
        delete["event_time"] += 1
        assert (await client.post(url, json=delete)).status == 200
        await wait_until(lambda: done(db, 2), 30, "the delete event processed")
        assert await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", user_id) == 0


async def test_garmin_ping_mode_fetches_the_callback(
    tmp_path: Path, db: Database, db_url: str, fake_garmin: FakeGarmin
) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        queue_url="memory://",
        webhook_path_token=PATH_TOKEN,
        plugins={"garmin": fake_garmin.plugin_settings()},
    )
    garmin_user = fake_garmin.add_user()
    user_id = await linked_user(db, "garmin", garmin_user, fake_garmin.issue_tokens(garmin_user))
    summary = fake_garmin.activity(garmin_user, start=datetime.now(UTC) - timedelta(hours=3))
    details = fake_garmin.activity_details(summary, samples=900)

    app = create_app(settings, db=db)
    embed_worker(app, 2)
    async with TestClient(TestServer(app)) as client:
        base = f"/webhooks/{PATH_TOKEN}/garmin"
        ping = fake_garmin.ping("activities", garmin_user, [summary])
        assert (await client.post(f"{base}/activities", json=ping, headers=fake_garmin.headers())).status == 200
        await wait_until(lambda: done(db, 1), 30, "the activity ping processed")
        assert await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", user_id) == 1

        ping = fake_garmin.ping("activityDetails", garmin_user, [details])
        assert (await client.post(f"{base}/activityDetails", json=ping, headers=fake_garmin.headers())).status == 200
        await wait_until(lambda: done(db, 2), 30, "the details ping processed")
        row = await db.fetchrow("SELECT id, training_load FROM activities WHERE user_id = $1", user_id)
        assert await db.fetchval("SELECT sample_count FROM activity_streams WHERE activity_id = $1", row["id"]) == 900
        assert row["training_load"] > 0
        callbacks = [path for method, path in fake_garmin.requests if path.startswith("/wellness-api/rest/")]
        assert callbacks == ["/wellness-api/rest/activities", "/wellness-api/rest/activityDetails"]
        forged = {**fake_garmin.headers(), "garmin-client-id": "someone-else"}
        assert (await client.post(f"{base}/activities", json=ping, headers=forged)).status == 401

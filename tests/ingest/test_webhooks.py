"""The webhook endpoints, on both databases: what is accepted, recorded, refused, and answered."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.ingest.conftest import PATH_TOKEN, connect, queue_of, registry_with_plugin
from tests.ingest.testplugin import NAME, SIGNING_SECRET
from trainer.app import create_app
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.accesslog import RedactingAccessLogger
from trainer.ingest.paths import path_token, webhook_path
from trainer.ingest.routes import INGEST
from trainer.ingest.signatures import sign_standard
from trainer.services import SERVICES

BASE = f"/webhooks/{PATH_TOKEN}/{NAME}"
ACCESS_LOG_FORMAT = '%{X-Request-ID}o %a "%r" %s %b %Tfs'


def strava_event(owner: int = 134815, object_id: int = 11600000001, **extra: object) -> dict:
    return {
        "aspect_type": "create",
        "event_time": 1716126040,
        "object_id": object_id,
        "object_type": "activity",
        "owner_id": owner,
        "subscription_id": 120475,
        "updates": {},
        **extra,
    }


async def rows(db: Database) -> list[inbox.InboxRow]:
    return await inbox.list_rows(db, limit=1000)


async def rung(client: TestClient, expected: int) -> int:
    """Tasks in the queue once the background ring has run (it follows the answer, not precedes it)."""
    queue = queue_of(client)
    for _ in range(200):
        if queue.pending() >= expected:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and nothing more arrives
    return queue.pending()


async def test_valid_event_is_recorded_rung_and_acknowledged(app_client: TestClient, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "134815")
    resp = await app_client.post(BASE, json=strava_event())
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    [row] = await rows(db)
    assert (row.plugin, row.kind, row.user_id, row.object_id, row.state) == (
        NAME,
        "activity",
        user_id,
        "11600000001",
        "pending",
    )
    assert row.event_time == 1716126040 * 1000
    assert row.payload == {"aspect_type": "create"}
    assert await rung(app_client, 1) == 1  # answered before processing (still pending); speed: bench/ingest.py


async def test_replay_is_acknowledged_but_recorded_once(app_client: TestClient, db: Database) -> None:
    await connect(db, "a@example.com", "134815")
    for _ in range(3):
        resp = await app_client.post(BASE, json=strava_event())
        assert resp.status == 200
    assert len(await rows(db)) == 1
    assert await rung(app_client, 1) == 1  # replays ring nothing
    assert app_client.server.app[INGEST].stats["duplicates"] == 2


async def test_events_of_unknown_vendor_users_are_acknowledged_and_dropped(
    app_client: TestClient, db: Database
) -> None:
    resp = await app_client.post(BASE, json=strava_event(owner=999))
    assert resp.status == 200
    assert await rows(db) == []
    assert app_client.server.app[INGEST].stats["unknown_users"] == 1


@pytest.mark.parametrize(
    "path",
    [
        f"/webhooks/wrong-token-0123456789/{NAME}",  # forged path token
        f"/webhooks/{PATH_TOKEN[:-1]}/{NAME}",  # a near miss
        f"/webhooks/{NAME}",  # no token at all
        f"/webhooks/{NAME}/activities",
        f"/webhooks/{PATH_TOKEN}/nosuchplugin",
        f"/webhooks/{PATH_TOKEN}/{NAME}/nosuchkind",
        f"/webhooks/{PATH_TOKEN}/{NAME}/activities/extra",
        "/webhooks",
    ],
)
async def test_wrong_paths_are_404_before_the_body_is_read(app_client: TestClient, db: Database, path: str) -> None:
    await connect(db, "a@example.com", "134815")
    # Announce a body far over every limit: a 404 must come without reading it (no 413).
    resp = await app_client.post(path, data=b"x" * 100, headers={"Content-Length": "100"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "NOT_FOUND"
    assert await rows(db) == []


async def test_forged_subscription_id_is_refused(app_client: TestClient, db: Database) -> None:
    await connect(db, "a@example.com", "134815")
    resp = await app_client.post(BASE, json=strava_event(subscription_id=1))
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "UNAUTHORIZED"
    assert await rows(db) == []
    assert await rung(app_client, 0) == 0


async def test_forged_client_id_is_refused(app_client: TestClient, db: Database) -> None:
    await connect(db, "g@example.com", "garmin-user")
    body = {"activities": [{"userId": "garmin-user", "summaryId": "s1", "startTimeInSeconds": 1452470400}]}
    resp = await app_client.post(f"{BASE}/activities", json=body, headers={"test-client-id": "someone-else"})
    assert resp.status == 401
    resp = await app_client.post(f"{BASE}/activities", json=body)
    assert resp.status == 401
    assert await rows(db) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"subscription_id": 120475}', b""])
async def test_malformed_bodies_are_400(app_client: TestClient, db: Database, body: bytes) -> None:
    resp = await app_client.post(BASE, data=body, headers={"Content-Type": "application/json"})
    assert resp.status in (400, 401)
    payload = await resp.json()
    assert payload["error"]["code"] in ("BAD_REQUEST", "UNAUTHORIZED")
    assert await rows(db) == []


async def test_oversized_bodies_are_413_by_content_length_and_while_streaming(app_client: TestClient) -> None:
    big = json.dumps(strava_event(updates={"title": "x" * 5000})).encode()
    resp = await app_client.post(BASE, data=big)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * 1000

    resp = await app_client.post(BASE, data=chunks())
    assert resp.status == 413

    bomb = gzip.compress(b"{" + b" " * 200_000 + b"}")  # a few hundred bytes on the wire
    resp = await app_client.post(BASE, data=bomb, headers={"Content-Encoding": "gzip"})
    assert resp.status == 413


async def test_garmin_sized_batches_over_ten_megabytes_are_accepted(app_client: TestClient, db: Database) -> None:
    user_ids = [await connect(db, f"g{i}@example.com", f"garmin-{i}") for i in range(2)]
    pad = "x" * (5 << 20)
    summaries = [
        {"userId": "garmin-0", "summaryId": "a1", "startTimeInSeconds": 1452470400, "padding": pad},
        {"userId": "garmin-1", "summaryId": "b1", "startTimeInSeconds": 1452470500, "padding": pad},
        {"userId": "garmin-9", "summaryId": "c1", "startTimeInSeconds": 1452470600},  # not connected
    ]
    body = json.dumps({"activities": summaries}).encode()
    assert len(body) > 10 << 20
    resp = await app_client.post(f"{BASE}/activities", data=body, headers={"test-client-id": "test-client-id"})
    assert resp.status == 200, await resp.text()
    recorded = await rows(db)
    assert sorted(r.user_id for r in recorded) == sorted(user_ids)
    assert await rung(app_client, 2) == 2
    assert app_client.server.app[INGEST].stats["unknown_users"] == 1


async def test_wrong_method_is_405(app_client: TestClient) -> None:
    resp = await app_client.get(f"{BASE}/activities")
    assert resp.status == 405


async def test_subscription_challenge_is_answered(app_client: TestClient) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "15f7d1a91c1f40f8", "hub.verify_token": "verify-me"}
    resp = await app_client.get(BASE, params=query)
    assert resp.status == 200
    assert await resp.json() == {"hub.challenge": "15f7d1a91c1f40f8"}
    resp = await app_client.get(BASE, params={**query, "hub.verify_token": "guess"})
    assert resp.status == 401


async def test_signed_webhooks_are_verified_and_deduplicated_on_their_id(app_client: TestClient, db: Database) -> None:
    await connect(db, "s@example.com", "signer-1")
    body = json.dumps({"user": "signer-1", "object": "o-1", "time": 1716126040}).encode()
    headers = sign_standard(SIGNING_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", body)
    for _ in range(2):
        resp = await app_client.post(f"{BASE}/signed", data=body, headers=headers)
        assert resp.status == 200
    assert len(await rows(db)) == 1

    forged = {**headers, "webhook-signature": "v1,Z2FyYmFnZQ=="}
    assert (await app_client.post(f"{BASE}/signed", data=body, headers=forged)).status == 401
    tampered = body.replace(b"o-1", b"o-2")
    assert (await app_client.post(f"{BASE}/signed", data=tampered, headers=headers)).status == 401
    stale = sign_standard(SIGNING_SECRET, "msg_old", body, timestamp=int(time.time()) - 3600)
    assert (await app_client.post(f"{BASE}/signed", data=body, headers=stale)).status == 401
    assert len(await rows(db)) == 1


async def test_derived_path_token_by_default_and_off_when_asked(tmp_path: Path, db: Database, db_url: str) -> None:
    await connect(db, "a@example.com", "134815")
    for token_setting in (None, "off"):
        settings = make_settings(tmp_path, db_url, queue_url="memory://", webhook_path_token=token_setting)
        token = path_token(settings, TEST_SECRET)
        assert (token is None) == (token_setting == "off")
        if token is not None:
            assert len(token) >= 32 and token == path_token(settings, TEST_SECRET)  # stable across processes
        app = create_app(settings, db=db)
        async with TestClient(TestServer(app)) as client:
            app[SERVICES].plugins.plugins[NAME] = registry_with_plugin(settings, db).plugins[NAME]
            resp = await client.post(webhook_path(token, NAME), json=strava_event(object_id=len(str(token))))
            assert resp.status == 200
            if token is not None:
                assert (await client.post(f"/webhooks/{NAME}", json=strava_event())).status == 404
    assert len(await rows(db)) == 2


async def test_access_log_never_contains_the_path_token_or_query(
    ingest_settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await connect(db, "a@example.com", "134815")
    app = create_app(ingest_settings, db=db)
    access = logging.getLogger("test.access")
    server = TestServer(app)
    with caplog.at_level(logging.DEBUG):
        await server.start_server(
            access_log=access, access_log_class=RedactingAccessLogger, access_log_format=ACCESS_LOG_FORMAT
        )
        async with TestClient(server) as client:
            app[SERVICES].plugins.plugins[NAME] = registry_with_plugin(ingest_settings, db).plugins[NAME]
            assert (await client.post(BASE, json=strava_event())).status == 200
            assert (
                await client.get(BASE, params={"hub.verify_token": "verify-me", "hub.challenge": "c"})
            ).status == 200
            assert (await client.post(f"/webhooks/{PATH_TOKEN}/nosuch", json={})).status == 404
            assert (await client.get("/healthz?probe=1")).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access"]
    assert len(lines) == 4
    text = "\n".join(lines)
    assert PATH_TOKEN not in text and "verify-me" not in text and "nosuch" not in text
    assert f'"POST /webhooks/{NAME} HTTP/1.1" 200' in text
    assert '"POST /webhooks/… HTTP/1.1" 404' in text
    assert '"GET /healthz?probe=1 HTTP/1.1" 200' in text  # other routes log as aiohttp does
    assert PATH_TOKEN not in caplog.text

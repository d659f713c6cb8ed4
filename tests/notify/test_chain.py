"""The whole chain: vendor webhook -> inbox -> pipeline -> outbox -> delivery -> the fake Expo server.

The app is the real one (tRPC for the user's device, the webhook route for the vendor), the vendor
is the ingest tests' plugin, and Expo is the local fake: exactly one push for one activity, to the
right user's token, with the analysed numbers — and none during quiet hours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.expo import FakeExpo
from tests.helpers import call, data, register
from tests.ingest.conftest import PATH_TOKEN, registry_with_plugin
from tests.ingest.testplugin import NAME
from trainer.app import create_app
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest import hooks, inbox
from trainer.ingest.consumer import AsyncConsumer
from trainer.ingest.pipeline import Context, process_row
from trainer.ingest.queue import IngestQueue
from trainer.notify.runner import deliver_due
from trainer.plugins import Account, Registry, TokenSet
from trainer.services import SERVICES
from trainer.store import accounts
from trainer.store.accounts import TokenCipher

ALICE_TOKEN = "ExponentPushToken[alice-phone-000000000]"
BOB_TOKEN = "ExponentPushToken[bob-phone-00000000000]"


@dataclass
class Chain:
    client: TestClient
    db: Database
    context: Context  # the pipeline as a worker runs it
    notifiers: Registry  # the app's plugins: Expo pointed at the fake

    async def user(self, email: str, vendor_id: str, token: str) -> tuple[str, str]:
        """A signed-up user with a connected vendor account and a registered phone: (user id, access token)."""
        auth = await register(self.client, email)
        user_id = auth["user"]["id"]
        async with self.db.transaction() as tx:
            account = Account(user_id, NAME, vendor_id, TokenSet(access_token="a", refresh_token="r"))
            await accounts.save(tx, TokenCipher(TEST_SECRET), account)
        status, body = await call(
            self.client,
            "devices.register",
            {"provider": "expo", "token": token, "platform": "ios"},
            token=auth["accessToken"],
        )
        assert status == 200, body
        return user_id, auth["accessToken"]

    async def webhook(self, vendor_id: str, object_id: int, started_s: float) -> None:
        event = {
            "aspect_type": "create",
            "event_time": int(started_s) + 1800,
            "object_id": object_id,
            "object_type": "activity",
            "owner_id": int(vendor_id),
            "subscription_id": 120475,
            "updates": {},
            "start": int(started_s),
        }
        resp = await self.client.post(f"/webhooks/{PATH_TOKEN}/{NAME}", json=event)
        assert resp.status == 200, await resp.text()

    async def process_all(self) -> list[str]:
        rows = await inbox.list_rows(self.db, limit=100)
        return [await process_row(self.context, r.id) for r in rows if r.state == "pending"]


@pytest.fixture
async def chain(tmp_path: Path, db_url: str, db: Database, expo: FakeExpo) -> AsyncIterator[Chain]:
    settings: Settings = make_settings(
        tmp_path,
        db_url,
        queue_url="memory://",
        webhook_path_token=PATH_TOKEN,
        plugins={"expo": {"base_url": expo.url}},
    )
    app = create_app(settings, db=db)
    async with TestClient(TestServer(app)) as client:
        services = app[SERVICES]
        services.plugins.plugins[NAME] = registry_with_plugin(settings, db).plugins[NAME]

        async def ring(ids: object) -> None:
            """The test processes rows itself."""

        async def ring_later(row_id: str, delay_s: float) -> None:
            """Retries are not part of these tests."""

        context = Context(
            db=db,
            plugins=registry_with_plugin(settings, db),
            settings=settings,
            cipher=TokenCipher(TEST_SECRET),
            ring=ring,
            ring_later=ring_later,
        )
        yield Chain(client, db, context, services.plugins)


async def test_one_processed_activity_is_one_push_to_its_owner(chain: Chain, expo: FakeExpo):
    alice, _ = await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    await chain.user("bob@example.com", "2002", BOB_TOKEN)
    await chain.webhook("1001", 555, time.time() - 3600)
    assert await chain.process_all() == ["done"]

    report = await deliver_due(chain.db, chain.notifiers)

    assert report.sent == 1
    [request] = expo.send_requests
    [message] = request
    stored = await chain.db.fetchrow("SELECT id, training_load FROM activities WHERE user_id = $1", alice)
    readiness = await chain.db.fetchval(
        "SELECT readiness_score FROM daily_state WHERE user_id = $1 ORDER BY day DESC LIMIT 1", alice
    )
    assert message["to"] == ALICE_TOKEN
    assert message["title"] == "New Run Analyzed"
    assert message["body"] == f"5.0 km, load {round(stored['training_load'])}, readiness {round(readiness)}"
    assert message["data"]["params"]["activity_id"] == stored["id"]


async def test_replays_and_reprocessing_never_send_twice(chain: Chain, expo: FakeExpo):
    alice, _ = await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    started = time.time() - 3600
    await chain.webhook("1001", 555, started)
    await chain.process_all()
    await deliver_due(chain.db, chain.notifiers)

    await chain.webhook("1001", 555, started)  # the vendor re-sends the same event
    await chain.process_all()
    [row] = await inbox.list_rows(chain.db, limit=10)
    # A worker that crashed after committing runs the hook again for the same event: no new message.
    event = hooks.ProcessedEvent(row.id, alice, NAME, "activity", created=list(row.result["created"]))
    async with chain.db.transaction() as tx:
        await hooks.on_activity_processed(tx, event)
    report = await deliver_due(chain.db, chain.notifiers)

    assert report.claimed == 0
    assert len(expo.messages) == 1
    assert await chain.db.fetchval("SELECT count(*) FROM notifications") == 1


async def test_quiet_hours_hold_the_push_back(chain: Chain, expo: FakeExpo):
    _, access = await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    now = datetime.now(UTC)
    quiet = {
        "timezone": "UTC",
        "quietHoursStart": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quietHoursEnd": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    status, body = await call(chain.client, "user.updateSettings", quiet, token=access)
    assert status == 200, body
    await chain.webhook("1001", 555, time.time() - 3600)
    await chain.process_all()

    report = await deliver_due(chain.db, chain.notifiers)
    assert (report.deferred, report.sent) == (1, 0)
    assert expo.messages == []

    status, body = await call(chain.client, "user.updateSettings", {"quietHoursMode": "drop"}, token=access)
    assert status == 200 and data(body)["settings"]["quietHoursMode"] == "drop"
    await chain.webhook("1001", 556, time.time() - 1800)
    await chain.process_all()
    report = await deliver_due(chain.db, chain.notifiers)
    assert (report.dropped, report.sent) == (1, 0)
    assert expo.messages == []

    # When quiet hours are over, the deferred message goes out; the dropped one never does.
    later = int((now + timedelta(hours=1, minutes=1)).timestamp() * 1000)
    report = await deliver_due(chain.db, chain.notifiers, now=later)
    assert report.sent == 1
    [message] = expo.messages
    assert message["to"] == ALICE_TOKEN


async def test_old_activities_from_a_history_import_send_nothing(chain: Chain, expo: FakeExpo):
    await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    await chain.webhook("1001", 777, time.time() - 30 * 86400)
    assert await chain.process_all() == ["done"]
    report = await deliver_due(chain.db, chain.notifiers)
    assert report.claimed == 0 and expo.messages == []


async def test_a_bug_in_notifications_never_holds_an_activity_back(
    chain: Chain, expo: FakeExpo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from trainer.notify import events

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(events, "enqueue", broken)
    alice, _ = await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    await chain.webhook("1001", 555, time.time() - 3600)
    assert await chain.process_all() == ["done"]
    assert await chain.db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", alice) == 1
    assert await chain.db.fetchval("SELECT count(*) FROM notifications") == 0
    assert "notifications not written" in caplog.text


async def test_a_running_consumer_pushes_after_processing_without_being_asked(chain: Chain, expo: FakeExpo):
    """What `trainer serve` / `trainer worker` do: the consumer processes the event, then its delivery
    loop (nudged by the pipeline once the event is processed) sends the push — no explicit delivery call."""
    await chain.user("alice@example.com", "1001", ALICE_TOKEN)
    await chain.webhook("1001", 555, time.time() - 3600)
    chain.context.plugins.plugins["expo"] = chain.notifiers.plugins["expo"]
    queue = IngestQueue(chain.context.settings, name="notify-chain")
    consumer = AsyncConsumer(queue, chain.context, concurrency=2)
    running = asyncio.create_task(consumer.run())
    try:
        rows = await inbox.list_rows(chain.db, limit=10)
        await asyncio.to_thread(queue.ring_now, [r.id for r in rows])
        for _ in range(500):
            if expo.send_requests:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a second, wrong push would arrive now
    finally:
        consumer.stop()
        await running
    assert [[m["to"] for m in request] for request in expo.send_requests] == [[ALICE_TOKEN]]
    assert expo.send_requests[0][0]["title"] == "New Run Analyzed"

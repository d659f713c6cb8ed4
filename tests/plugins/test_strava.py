"""Strava end to end against the local fake: connecting an account in a browser, webhooks into the
inbox, processing with the athlete's token (refresh, 401, 429, 5xx, deletions, deauthorization),
and the history backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import TEST_SECRET
from tests.fakes.strava import VERIFY_TOKEN, FakeStrava
from tests.helpers import call, data, register
from tests.plugins.conftest import CIPHER, PATH_TOKEN, SUBSCRIPTION_ID, app_registry, drain, link, new_user, pipeline
from trainer import clock
from trainer.backfill import Progress, run_backfill
from trainer.config import Settings
from trainer.db import Database
from trainer.plugin_host import CoreHost
from trainer.plugins import (
    Account,
    DeleteActivity,
    Disconnect,
    InboxEvent,
    Registry,
    RetryLater,
    UpsertActivity,
    discover,
)
from trainer.store import accounts

WEBHOOK = f"/webhooks/{PATH_TOKEN}/strava"


async def connect_in_browser(client: TestClient, access_token: str, plugin: str) -> tuple[int, str]:
    """What the app does (connections.start) and what the phone's browser then does."""
    status, body = await call(client, "connections.start", {"plugin": plugin}, token=access_token)
    assert status == 200, body
    session = client.session
    start = await session.get(data(body)["url"], allow_redirects=False)
    assert start.status == 302, await start.text()
    consent = await session.get(start.headers["Location"], allow_redirects=False)  # the vendor's consent screen
    assert consent.status == 302
    callback = await session.get(consent.headers["Location"], allow_redirects=False)
    return callback.status, await callback.text()


def event(row_kind: str, object_id: Any, account: Account, **payload: Any) -> InboxEvent:
    return InboxEvent(
        "e1", "strava", row_kind, account.user_id, account.external_user_id, str(object_id), 0, payload, 0
    )


@pytest.fixture
async def athlete(db: Database, fake_strava: FakeStrava) -> tuple[int, Account]:
    """A connected athlete (tokens issued by the fake, stored encrypted)."""
    athlete_id = fake_strava.add_athlete()
    user = await new_user(db)
    return athlete_id, await link(db, "strava", user, athlete_id, fake_strava.issue_tokens(athlete_id))


# -- connecting -----------------------------------------------------------------------------------


async def test_connect_in_a_browser(vendor_client: TestClient, db: Database, fake_strava: FakeStrava) -> None:
    athlete_id = fake_strava.add_athlete()
    auth = await register(vendor_client, "runner@example.com")
    status, page = await connect_in_browser(vendor_client, auth["accessToken"], "strava")
    assert status == 200 and "Strava connected" in page
    account = await accounts.find_by_external(db, CIPHER, "strava", str(athlete_id))
    assert account is not None and account.user_id == auth["user"]["id"]
    assert account.tokens.scope == "read,activity:read_all" and account.tokens.refresh_token
    status, body = await call(vendor_client, "connections.list", token=auth["accessToken"])
    by_plugin = {c["plugin"]: c for c in data(body)}
    assert by_plugin["strava"]["connected"] and by_plugin["strava"]["externalUserId"] == str(athlete_id)
    assert not by_plugin["garmin"]["connected"]


async def test_connect_links_work_once_and_only_in_the_browser_that_started(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava
) -> None:
    fake_strava.add_athlete()
    auth = await register(vendor_client, "runner@example.com")
    status, body = await call(vendor_client, "connections.start", {"plugin": "strava"}, token=auth["accessToken"])
    url = data(body)["url"]
    first = await vendor_client.session.get(url, allow_redirects=False)
    assert first.status == 302
    again = await vendor_client.session.get(url, allow_redirects=False)
    assert again.status == 400 and "expired or was already used" in await again.text()

    consent = await vendor_client.session.get(first.headers["Location"], allow_redirects=False)
    vendor_client.session.cookie_jar.clear()  # another browser (or an attacker's link) lands on the callback
    callback = await vendor_client.session.get(consent.headers["Location"])
    assert callback.status == 400 and "browser that started it" in await callback.text()
    assert await db.fetchval("SELECT count(*) FROM vendor_accounts") == 0

    status, body = await call(vendor_client, "connections.start", {"plugin": "nosuch"}, token=auth["accessToken"])
    assert status == 404


async def test_an_unticked_activity_scope_connects_nothing(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava
) -> None:
    fake_strava.add_athlete()
    fake_strava.granted_scope = "read"  # the athlete unticked "View data about your activities"
    auth = await register(vendor_client, "runner@example.com")
    status, page = await connect_in_browser(vendor_client, auth["accessToken"], "strava")
    assert status == 400 and "did not share your activities" in page
    assert await db.fetchval("SELECT count(*) FROM vendor_accounts") == 0
    assert fake_strava.token_grants["authorization_code"] == 0


async def test_disconnect_tells_strava_and_deletes_strava_data(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava
) -> None:
    athlete_id = fake_strava.add_athlete()
    auth = await register(vendor_client, "runner@example.com")
    await connect_in_browser(vendor_client, auth["accessToken"], "strava")
    activity = fake_strava.add_activity(athlete_id)
    account = await accounts.get(db, CIPHER, auth["user"]["id"], "strava")
    plugin = app_registry(vendor_client).get("strava")
    results = await plugin.process(event("activity", activity["id"], account, aspect_type="create"), account)
    from trainer.store.activities import save_imported

    async with db.transaction() as tx:
        await save_imported(tx, account.user_id, results[0].imported)
    status, body = await call(vendor_client, "connections.disconnect", {"plugin": "strava"}, token=auth["accessToken"])
    assert status == 200 and data(body) is True
    assert not fake_strava.athletes[athlete_id].authorized  # POST /oauth/deauthorize reached Strava
    assert await db.fetchval("SELECT count(*) FROM vendor_accounts") == 0
    assert await db.fetchval("SELECT count(*) FROM activities WHERE source = 'strava'") == 0


# -- webhooks -------------------------------------------------------------------------------------


async def test_subscription_check_echoes_the_challenge(vendor_client: TestClient) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3",
        "hub.verify_token": VERIFY_TOKEN,
    }
    response = await vendor_client.get(WEBHOOK, params=query)
    assert response.status == 200
    assert await response.json() == {"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"}
    wrong = await vendor_client.get(WEBHOOK, params={**query, "hub.verify_token": "guess"})
    assert wrong.status == 401
    no_token = await vendor_client.get("/webhooks/wrong-token-0123456789/strava", params=query)
    assert no_token.status == 404


async def test_an_event_is_recorded_once_and_processed_into_an_activity(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava, vendor_settings: Settings
) -> None:
    athlete_id = fake_strava.add_athlete()
    user = await new_user(db, hr_max=190, hr_rest=50)
    await link(db, "strava", user, athlete_id, fake_strava.issue_tokens(athlete_id))
    activity = fake_strava.add_activity(athlete_id, samples=1800)
    body = fake_strava.event("create", activity["id"], athlete_id)
    body["subscription_id"] = SUBSCRIPTION_ID
    for _ in range(2):  # Strava retries when it does not see a 200 in time: a replay is not a second event
        response = await vendor_client.post(WEBHOOK, json=body)
        assert response.status == 200
    assert await db.fetchval("SELECT count(*) FROM inbox WHERE plugin = 'strava'") == 1

    states = await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    assert list(states.values()) == ["done"]
    row = await db.fetchrow(
        "SELECT id, sport, name, distance_m, avg_hr, training_load, utc_offset_s FROM activities WHERE user_id = $1",
        user,
    )
    assert (row["sport"], row["name"], row["distance_m"], row["utc_offset_s"]) == ("run", "Morning Run", 10_000, 7200)
    assert row["training_load"] > 0
    assert await db.fetchval("SELECT sample_count FROM activity_streams WHERE activity_id = $1", row["id"]) == 1800


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"subscription_id": 999}, 401),
        ({"object_type": "club"}, 400),
        ({"event_time": "yesterday"}, 400),
        ({"event_time": 4_102_444_800}, 400),  # 2100: not a real event
    ],
)
async def test_forged_or_malformed_events_are_refused(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava, change: dict, status: int
) -> None:
    body = fake_strava.event("create", 1, 134_815) | {"subscription_id": SUBSCRIPTION_ID} | change
    response = await vendor_client.post(WEBHOOK, json=body)
    assert response.status == status
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0


# -- processing ------------------------------------------------------------------------------------


async def test_expired_token_is_refreshed_and_the_request_retried(
    registry: Registry, fake_strava: FakeStrava, athlete: tuple[int, Account], db: Database
) -> None:
    athlete_id, account = athlete
    activity = fake_strava.add_activity(athlete_id, samples=60)
    old = account.tokens
    fake_strava.expire_tokens()  # Strava says 401 although our expiry says the token is fine
    results = await registry.get("strava").process(event("activity", activity["id"], account), account)
    assert isinstance(results[0], UpsertActivity) and results[0].imported.streams is not None
    assert fake_strava.token_grants["refresh_token"] == 1
    stored = (await accounts.get(db, CIPHER, account.user_id, "strava")).tokens
    assert stored.refresh_token != old.refresh_token and stored.access_token == account.tokens.access_token
    assert old.refresh_token not in fake_strava.refresh  # rotated: the old refresh token is dead


def mid_quarter_hour() -> Any:
    """The clock stopped half-way through the current quarter hour, Strava's short window: a window
    that reset between two calls of a test (a run that straddles 10:00:00) would let the second
    one through."""
    return clock.frozen((int(clock.now_s()) // 900) * 900 + 450.0)


async def test_a_429_means_retry_when_the_window_resets(
    registry: Registry, fake_strava: FakeStrava, athlete: tuple[int, Account], db: Database
) -> None:
    athlete_id, account = athlete
    with mid_quarter_hour():
        activity = fake_strava.add_activity(athlete_id)
        fake_strava.fail_next(429, {"message": "Rate Limit Exceeded"}, {"X-RateLimit-Usage": "201,900"})
        with pytest.raises(RetryLater) as caught:
            await registry.get("strava").process(event("activity", activity["id"], account), account)
        now = clock.now_s()
        quarter = (int(now) // 900 + 1) * 900
        assert caught.value.retry_after == pytest.approx(quarter - now, abs=2)

        # Known now, for every process: no request is sent until the window resets.
        sent = len(fake_strava.api_requests())
        with pytest.raises(RetryLater) as caught:
            await registry.get("strava").process(event("activity", activity["id"], account), account)
        assert len(fake_strava.api_requests()) == sent
        assert caught.value.retry_after == pytest.approx(quarter - clock.now_s(), abs=2)

        await db.execute("DELETE FROM plugin_rate_windows")  # a new quarter hour, but the day is used up
        fake_strava.fail_next(429, {"message": "Rate Limit Exceeded"}, {"X-RateLimit-Usage": "12,2001"})
        with pytest.raises(RetryLater) as caught:
            await registry.get("strava").process(event("activity", activity["id"], account), account)
        midnight = (int(clock.now_s()) // 86_400 + 1) * 86_400
        assert caught.value.retry_after == pytest.approx(midnight - clock.now_s(), abs=2)


async def test_near_the_limit_no_request_is_sent(
    registry: Registry, fake_strava: FakeStrava, athlete: tuple[int, Account]
) -> None:
    athlete_id, account = athlete
    with mid_quarter_hour():
        activity = fake_strava.add_activity(athlete_id)
        fake_strava.usage.limit = (200, 2000)
        fake_strava.usage.count(read=True)
        fake_strava.usage.short = 188  # the next answers report 189 and 190 of 200
        plugin = registry.get("strava")
        await plugin.process(event("activity", activity["id"], account), account)  # 2 requests: detail + streams
        sent = len(fake_strava.api_requests())
        with pytest.raises(RetryLater) as caught:  # 95 % of 200 used (headroom 5 %): wait for the next window
            await plugin.process(event("activity", activity["id"], account), account)
        assert len(fake_strava.api_requests()) == sent
        assert 0 < caught.value.retry_after <= 900


async def test_server_errors_are_transient(
    registry: Registry, fake_strava: FakeStrava, athlete: tuple[int, Account]
) -> None:
    athlete_id, account = athlete
    activity = fake_strava.add_activity(athlete_id)
    fake_strava.fail_next(503, {"message": "unavailable"})
    with pytest.raises(RetryLater):
        await registry.get("strava").process(event("activity", activity["id"], account), account)


async def test_only_a_404_deletes(registry: Registry, fake_strava: FakeStrava, athlete: tuple[int, Account]) -> None:
    athlete_id, account = athlete
    activity = fake_strava.add_activity(athlete_id)
    plugin = registry.get("strava")
    forged = await plugin.process(event("activity", activity["id"], account, aspect_type="delete"), account)
    assert isinstance(forged[0], UpsertActivity)  # Strava still has it: the delete event is not believed
    fake_strava.delete_activity(athlete_id, activity["id"])
    gone = await plugin.process(event("activity", activity["id"], account, aspect_type="delete"), account)
    assert gone == [DeleteActivity("strava", str(activity["id"]))]


async def test_deauthorization_needs_a_failed_refresh(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava, vendor_settings: Settings
) -> None:
    athlete_id = fake_strava.add_athlete()
    user = await new_user(db)
    account = await link(db, "strava", user, athlete_id, fake_strava.issue_tokens(athlete_id))
    plugin = app_registry(vendor_client).get("strava")
    deauth = event("athlete", athlete_id, account, aspect_type="update", updates={"authorized": "false"})
    assert await plugin.process(deauth, account) == []  # forged: the refresh still works
    assert await accounts.get(db, CIPHER, user, "strava") is not None

    activity = fake_strava.add_activity(athlete_id)
    results = await plugin.process(event("activity", activity["id"], account), account)
    from trainer.store.activities import save_imported

    async with db.transaction() as tx:
        await save_imported(tx, user, results[0].imported)
    fake_strava.revoke(athlete_id)
    body = fake_strava.event("update", athlete_id, athlete_id, object_type="athlete", authorized="false")
    body["subscription_id"] = SUBSCRIPTION_ID
    assert (await vendor_client.post(WEBHOOK, json=body)).status == 200
    await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    assert await accounts.get(db, CIPHER, user, "strava") is None
    assert await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", user) == 0  # Strava's terms
    assert await plugin.process(deauth, account) == [Disconnect("the athlete revoked trainer's access on Strava", True)]


# -- backfill ---------------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


async def test_backfill_pages_resumes_and_feeds_the_pipeline(
    vendor_settings: Settings, db: Database, fake_strava: FakeStrava, athlete: tuple[int, Account]
) -> None:
    athlete_id, account = athlete
    first_day = datetime(2024, 1, 1, tzinfo=UTC)
    for day in range(12):
        fake_strava.add_activity(athlete_id, start=first_day + timedelta(days=day, hours=7))
    fake_strava.add_activity(athlete_id, start=first_day - timedelta(days=3))  # before --since: not fetched
    strava = {**vendor_settings.plugins["strava"], "per_page": 5}
    settings = vendor_settings.model_copy(update={"plugins": {**vendor_settings.plugins, "strava": strava}})
    host = CoreHost(settings, TEST_SECRET, db)
    registry = discover(settings.plugins, host)
    seen: list[Progress] = []

    def progress(update: Progress) -> None:
        seen.append(update)
        if len(seen) == 1:  # after page 1 is stored, page 2 meets the rate limit
            fake_strava.fail_next(429, {"message": "Rate Limit Exceeded"}, {"X-RateLimit-Usage": "201,300"})

    async def interrupt(seconds: float) -> None:
        raise Interrupted  # Ctrl-C while waiting for the window to reset

    async def no_wait(seconds: float) -> None:
        return None

    def backfill(**kw: Any) -> Any:
        return run_backfill(db, registry, CIPHER, user_id=account.user_id, plugin="strava", since=first_day, **kw)

    try:
        with pytest.raises(Interrupted):
            await backfill(on_progress=progress, sleep=interrupt)
        assert seen[0].events == 5 and seen[0].fraction is not None and 0 < seen[0].fraction < 1
        assert seen[-1].waiting_s is not None and 0 < seen[-1].waiting_s <= 900

        await db.execute("DELETE FROM plugin_rate_windows")  # ... until the quarter hour is over
        resumed = await backfill(sleep=no_wait)
        # Pages 2 and 3 (5 + 4 activities: each page repeats the previous page's oldest, its boundary).
        assert resumed.resumed and (resumed.pages, resumed.events, resumed.recorded) == (2, 9, 7)
        assert await db.fetchval("SELECT count(*) FROM inbox WHERE plugin = 'strava'") == 12

        finished_sql = "SELECT params FROM notifications WHERE user_id = $1 AND category = 'backfill_finished'"
        told = await db.fetch(finished_sql, account.user_id)
        assert [n["params"]["activities"] for n in told] == [12]  # told once, when the (resumed) run completes

        again = await backfill(sleep=no_wait)  # a finished backfill run again records only what is new
        assert not again.resumed and again.recorded == 0
        assert len(await db.fetch(finished_sql, account.user_id)) == 1  # and is not told again

        states = await drain(pipeline(settings, db, registry))
        assert set(states.values()) == {"done"} and len(states) == 12
        assert await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", account.user_id) == 12
    finally:
        await host.close()


def test_the_dedupe_key_tells_replays_from_new_events() -> None:
    """Strava has no event id: everything the event says is the key, led by its time (so the
    inbox's unique index grows at its end); updates count whatever their order."""
    from trainer_plugins.strava.webhooks import StravaEvent, dedupe_key

    base: dict[str, Any] = {
        "aspect_type": "update",
        "event_time": 1_716_126_040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": SUBSCRIPTION_ID,
        "updates": {"title": "Lunch Ride", "type": "Ride"},
    }

    def key(**change: Any) -> str:
        return dedupe_key(StravaEvent.model_validate({**base, **change}))

    assert key() == key(updates={"type": "Ride", "title": "Lunch Ride"})
    assert key().startswith("001716126040:")
    others = [
        key(aspect_type="create"),
        key(event_time=1_716_126_041),
        key(object_id=1360128429),
        key(object_type="athlete"),
        key(owner_id=134816),
        key(subscription_id=SUBSCRIPTION_ID + 1),
        key(updates={"title": "Lunch Ride!", "type": "Ride"}),
        key(updates={}),
    ]
    assert len({key(), *others}) == len(others) + 1

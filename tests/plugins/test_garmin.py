"""Garmin end to end against the local fake: OAuth 2 with PKCE, push and ping webhooks (client-id
check, big bodies, unknown users, the callback-URL guard), activities with samples, wellness days,
deregistration, and the backfill request API."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.fakes.garmin import FakeGarmin
from tests.helpers import register
from tests.plugins.conftest import CIPHER, PATH_TOKEN, app_registry, drain, link, new_user, pipeline
from tests.plugins.test_strava import connect_in_browser
from trainer import clock
from trainer.backfill import run_backfill
from trainer.config import Settings
from trainer.db import Database
from trainer.plugins import Account, InboxEvent, PermanentFailure, Registry
from trainer.store import accounts

DAY = date(2024, 5, 19)


def webhook(kind: str) -> str:
    return f"/webhooks/{PATH_TOKEN}/garmin/{kind}"


@pytest.fixture
async def garmin_user(db: Database, fake_garmin: FakeGarmin) -> tuple[str, Account]:
    external = fake_garmin.add_user()
    user = await new_user(db, hr_max=188, hr_rest=48)
    return external, await link(db, "garmin", user, external, fake_garmin.issue_tokens(external))


async def post(client: TestClient, kind: str, body: dict[str, Any], fake: FakeGarmin, **headers: str) -> int:
    response = await client.post(webhook(kind), json=body, headers={**fake.headers(), **headers})
    return response.status


async def test_connect_with_pkce(vendor_client: TestClient, db: Database, fake_garmin: FakeGarmin) -> None:
    external = fake_garmin.add_user()
    auth = await register(vendor_client, "runner@example.com")
    status, page = await connect_in_browser(vendor_client, auth["accessToken"], "garmin")
    assert status == 200 and "Garmin connected" in page  # the fake checked S256(code_verifier) == challenge
    account = await accounts.get(db, CIPHER, auth["user"]["id"], "garmin")
    assert account is not None and account.external_user_id == external


async def test_connect_without_data_permissions_is_refused(
    vendor_client: TestClient, db: Database, fake_garmin: FakeGarmin
) -> None:
    external = fake_garmin.add_user()
    fake_garmin.users[external].permissions = ["WORKOUT_IMPORT"]
    auth = await register(vendor_client, "runner@example.com")
    status, page = await connect_in_browser(vendor_client, auth["accessToken"], "garmin")
    assert status == 400 and "shared no activity or health data" in page
    assert await db.fetchval("SELECT count(*) FROM vendor_accounts") == 0


async def test_pushed_activity_and_details_become_one_activity_with_streams(
    vendor_client: TestClient,
    db: Database,
    fake_garmin: FakeGarmin,
    garmin_user: tuple[str, Account],
    vendor_settings: Settings,
) -> None:
    external, account = garmin_user
    summary = fake_garmin.activity(external)
    details = fake_garmin.activity_details(summary, samples=9000)  # ~2.5 MB: above aiohttp's default 1 MiB
    assert await post(vendor_client, "activities", fake_garmin.push("activities", [summary]), fake_garmin) == 200
    assert (
        await post(vendor_client, "activityDetails", fake_garmin.push("activityDetails", [details]), fake_garmin) == 200
    )
    states = await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    assert set(states.values()) == {"done"}
    [row] = await db.fetch(
        """SELECT id, source, external_id, sport, avg_cadence, distance_m, training_load FROM activities
           WHERE user_id = $1""",
        account.user_id,
    )
    assert (row["source"], row["external_id"], row["sport"]) == ("garmin", str(summary["activityId"]), "run")
    assert row["avg_cadence"] == 84.0  # 168 steps/min -> strides per leg, like FIT and Strava
    assert row["distance_m"] == 10_020.5 and row["training_load"] > 0
    stored = await db.fetchval("SELECT sample_count FROM activity_streams WHERE activity_id = $1", row["id"])
    assert stored == 9000


async def test_webhook_controls(
    vendor_client: TestClient, db: Database, fake_garmin: FakeGarmin, garmin_user: tuple[str, Account]
) -> None:
    external, _ = garmin_user
    body = fake_garmin.push("activities", [fake_garmin.activity(external)])
    assert await post(vendor_client, "activities", body, fake_garmin, **{"garmin-client-id": "someone-else"}) == 401
    assert await post(vendor_client, "activities", {"surprise": []}, fake_garmin) == 400
    assert await post(vendor_client, "activities", {"activities": [{"summaryId": "no user"}]}, fake_garmin) == 400
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0
    stranger = fake_garmin.push("activities", [fake_garmin.activity("not-connected-user")])
    assert await post(vendor_client, "activities", stranger, fake_garmin) == 200  # else Garmin retries for days
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0


async def test_ping_callbacks_are_fetched_only_from_garmin(
    vendor_client: TestClient,
    db: Database,
    fake_garmin: FakeGarmin,
    garmin_user: tuple[str, Account],
    vendor_settings: Settings,
) -> None:
    external, account = garmin_user
    evil = {
        "dailies": [{"userId": external, "callbackURL": "http://169.254.169.254/wellness-api/rest/dailies?token=1"}]
    }
    assert await post(vendor_client, "dailies", evil, fake_garmin) == 200
    other_port = fake_garmin.url.rsplit(":", 1)[0] + ":1"
    sneaky = {"dailies": [{"userId": external, "callbackURL": f"{other_port}/wellness-api/rest/dailies?token=1"}]}
    assert await post(vendor_client, "dailies", sneaky, fake_garmin) == 200
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0  # acknowledged, never recorded

    plugin = app_registry(vendor_client).get("garmin")
    forged = InboxEvent(
        "x", "garmin", "daily", account.user_id, external, "", 0, {"callback_url": evil["dailies"][0]["callbackURL"]}, 0
    )
    with pytest.raises(PermanentFailure):  # and checked again before fetching
        await plugin.process(forged, account)

    ping = fake_garmin.ping("dailies", external, [fake_garmin.daily(external, DAY, averageStressLevel=-1)])
    fake_garmin.expire_tokens()  # the fetch meets a 401 first: refresh, then retry
    assert await post(vendor_client, "dailies", ping, fake_garmin) == 200
    states = await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    assert set(states.values()) == {"done"}
    assert fake_garmin.token_grants["refresh_token"] == 1
    row = await db.fetchrow("SELECT resting_hr, stress, source FROM daily_metrics WHERE user_id = $1", account.user_id)
    assert (row["resting_hr"], row["stress"], row["source"]) == (48, None, "garmin")  # -1: not enough data


async def test_wellness_summaries_fill_the_day(
    vendor_client: TestClient,
    db: Database,
    fake_garmin: FakeGarmin,
    garmin_user: tuple[str, Account],
    vendor_settings: Settings,
) -> None:
    external, account = garmin_user
    await post(vendor_client, "dailies", fake_garmin.push("dailies", [fake_garmin.daily(external, DAY)]), fake_garmin)
    await post(vendor_client, "sleeps", fake_garmin.push("sleeps", [fake_garmin.sleep(external, DAY)]), fake_garmin)
    await post(vendor_client, "hrv", fake_garmin.push("hrv", [fake_garmin.hrv(external, DAY)]), fake_garmin)
    await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    row = await db.fetchrow(
        "SELECT day, resting_hr, stress, sleep_s, sleep_score, hrv_rmssd_ms FROM daily_metrics WHERE user_id = $1",
        account.user_id,
    )
    assert dict(row) == {
        "day": "2024-05-19",
        "resting_hr": 48,
        "stress": 31,
        "sleep_s": 27_000,
        "sleep_score": 84,
        "hrv_rmssd_ms": 62,
    }


@pytest.mark.parametrize(
    ("summary_type", "body"),
    [
        ("deregistrations", lambda fake, user: fake.push("deregistrations", [fake.deregistration(user)])),
        (
            "userPermissionsChange",
            lambda fake, user: fake.push("userPermissionsChange", [fake.permissions_change(user, [])]),
        ),
    ],
)
async def test_losing_access_disconnects_and_keeps_the_data(
    vendor_client: TestClient,
    db: Database,
    fake_garmin: FakeGarmin,
    garmin_user: tuple[str, Account],
    vendor_settings: Settings,
    summary_type: str,
    body: Any,
) -> None:
    external, account = garmin_user
    await post(
        vendor_client, "activities", fake_garmin.push("activities", [fake_garmin.activity(external)]), fake_garmin
    )
    await post(vendor_client, summary_type, body(fake_garmin, external), fake_garmin)
    await drain(pipeline(vendor_settings, db, app_registry(vendor_client)))
    assert await accounts.get(db, CIPHER, account.user_id, "garmin") is None
    assert await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", account.user_id) == 1


async def test_backfill_requests_each_type_in_garmins_windows(
    registry: Registry, db: Database, fake_garmin: FakeGarmin, garmin_user: tuple[str, Account]
) -> None:
    external, account = garmin_user
    since = (clock.now() - timedelta(days=100)).replace(microsecond=0)

    async def no_wait(seconds: float) -> None:
        return None

    result = await run_backfill(
        db, registry, CIPHER, user_id=account.user_id, plugin="garmin", since=since, sleep=no_wait
    )
    by_type: dict[str, list[tuple[int, int]]] = {}
    for user, summary_type, start, end in fake_garmin.backfills:
        assert user == external
        by_type.setdefault(summary_type, []).append((start, end))
    assert {t: len(w) for t, w in by_type.items()} == {
        "activities": 4,
        "activityDetails": 4,
        "dailies": 2,
        "sleeps": 2,
        "hrv": 2,
    }
    for windows in by_type.values():  # contiguous, from --since to now, none longer than Garmin allows
        assert windows[0][0] == int(since.timestamp())
        assert all(a[1] == b[0] for a, b in pairwise(windows))
    assert result.pages == 14 and result.events == 0  # the data arrives later, through the webhooks

    fake_garmin.fail_next(503)  # a transient failure mid-way: waited out, then resumed
    again = await run_backfill(
        db, registry, CIPHER, user_id=account.user_id, plugin="garmin", since=since, sleep=no_wait
    )
    assert again.pages == 14 and len(fake_garmin.backfills) == 14  # all 409 "already requested": fine

"""What the app enters through sync reaches the analysis before the push returns (both databases)."""

from __future__ import annotations

import datetime as dt
import json

from tests.sync.conftest import changes, raw, record
from trainer import clock


def _ms(day: dt.date, hour: int = 7) -> int:
    return clock.datetime_to_ms(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC))


async def test_an_rpe_on_a_watchless_session_gives_it_a_load_and_moves_the_daily_state(phone, db):
    today = clock.now().date()
    t0 = (await phone.pull(None))["timestamp"]
    session = raw(
        "activities", "strength1", sport="strength", start_time=_ms(today), duration_s=2700.0, moving_time_s=2700.0
    )
    await phone.push(changes(activities={"created": [session]}), t0)
    row = await db.fetchrow("SELECT training_load FROM activities WHERE id = 'strength1'")
    assert row["training_load"] is None  # no heart rate and no RPE: nothing to compute yet

    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(changes(activities={"updated": [{**session, "rpe": 7.0}]}), t1)
    pulled = await phone.pull(t1)
    activity = record(pulled, "activities", "strength1")
    assert activity["training_load"] > 0
    assert json.loads(activity["analysis"])["load_source"] == "srpe"
    states = {
        r["day"]: r for r in pulled["changes"]["daily_state"]["created"] + pulled["changes"]["daily_state"]["updated"]
    }
    assert states[today.isoformat()]["load"] == activity["training_load"]


async def test_a_morning_hrv_reading_from_the_app_is_in_the_next_pull_of_the_daily_state(phone):
    today = clock.now().date()
    t0 = (await phone.pull(None))["timestamp"]
    reading = raw("daily_metrics", "hrv-today", day=today.isoformat(), hrv_rmssd_ms=55.0, resting_hr=50.0)
    await phone.push(changes(daily_metrics={"created": [reading]}), t0)
    pulled = await phone.pull(t0)
    days = [r["day"] for r in pulled["changes"]["daily_state"]["created"] + pulled["changes"]["daily_state"]["updated"]]
    assert today.isoformat() in days


async def test_a_device_cannot_write_the_daily_state(phone, db):
    today = clock.now().date()
    t0 = (await phone.pull(None))["timestamp"]
    forged = {"id": "forged", "_status": "created", "_changed": "", "day": today.isoformat(), "ctl": 999.0}
    await phone.push(changes(daily_state={"created": [forged]}), t0)
    assert await db.fetchrow("SELECT id FROM daily_state WHERE id = 'forged'") is None

"""Plans: generated through tRPC into synced rows, then kept true to what happens (both databases)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from tests.engine.factories import add_activity, add_metrics, at_noon_utc, local_ms, make_user
from tests.helpers import call, data, error_code, register
from trainer import clock
from trainer.analysis.plan import generate_plan
from trainer.db import Database
from trainer.engine import PlanSpec, create_plan, recompute_user
from trainer.engine.plans import get_plan

MONDAY = dt.date(2024, 5, 6)
RACE = dt.date(2024, 7, 28)  # a Sunday, 12 weeks later


async def test_generate_writes_a_plan_that_syncs(client: TestClient, db: Database) -> None:
    with clock.frozen(at_noon_utc(MONDAY)):
        auth = await register(client, "planner@example.com")
        token = auth["accessToken"]
        body = {"goal": "Half marathon", "raceDate": RACE.isoformat(), "sport": "run", "weeklyHours": 5}
        status, resp = await call(client, "plans.generate", body, token=token)
        assert status == 200, resp
        plan = data(resp)
        expected = generate_plan(RACE, start=MONDAY, sport="run", weekly_hours=5)
        assert plan["status"] == "active" and plan["currentPhase"] == "base" and plan["goal"] == "Half marathon"
        assert [w["day"] for w in plan["workouts"]] == [w.date.isoformat() for w in expected.workouts]
        assert [w["kind"] for w in plan["workouts"]] == [w.kind for w in expected.workouts]
        assert [w["targetLoad"] for w in plan["workouts"]] == pytest.approx(
            [w.target_load for w in expected.workouts], abs=0.05
        )
        assert plan["workouts"][-1]["title"] == "Half marathon" and plan["workouts"][-1]["kind"] == "race"
        assert [w["phase"] for w in plan["weeks"]] == [w.phase for w in expected.weeks]
        assert all(w["status"] == "planned" and w["originalKind"] is None for w in plan["workouts"])

        # The rows reach the app through the ordinary first sync.
        status, resp = await call(
            client, "sync.pullChanges", {"lastPulledAt": None, "schemaVersion": 1, "migration": None}, token=token
        )
        assert status == 200, resp
        changes = data(resp)["changes"]
        assert [p["id"] for p in changes["training_plans"]["created"]] == [plan["id"]]
        synced = {w["id"]: w for w in changes["scheduled_workouts"]["created"]}
        assert set(synced) == {w["id"] for w in plan["workouts"]}
        assert all("planned" not in w for w in synced.values())  # server-only bookkeeping

        status, listed = await call(client, "plans.list", token=token)
        assert [p["id"] for p in data(listed)] == [plan["id"]]

        # A new plan replaces the active one; the old one's sessions leave the calendar.
        body["raceDate"] = (RACE + dt.timedelta(days=14)).isoformat()
        status, resp = await call(client, "plans.generate", body, token=token)
        second = data(resp)
        status, old = await call(client, "plans.get", {"id": plan["id"]}, token=token)
        assert data(old)["status"] == "replaced" and data(old)["workouts"] == []
        tombstones = await db.fetchval(
            "SELECT COUNT(*) FROM sync_tombstones WHERE table_name = 'scheduled_workouts' AND user_id = $1",
            auth["user"]["id"],
        )
        assert tombstones == len(plan["workouts"])
        assert second["status"] == "active"


async def test_generate_refuses_impossible_requests(client: TestClient) -> None:
    with clock.frozen(at_noon_utc(MONDAY)):
        token = (await register(client, "bad-plan@example.com"))["accessToken"]
        for body, where in (
            ({"goal": "10k", "raceDate": "2024-01-01"}, "raceDate"),
            ({"goal": "10k", "raceDate": "2026-01-01"}, "raceDate"),
            ({"goal": "10k", "raceDate": "2024-06-01", "startDate": "2024-06-02"}, "raceDate"),
            ({"goal": "10k", "raceDate": "2024-06-01", "sport": "chess"}, "sport"),
            ({"goal": "", "raceDate": "2024-06-01"}, "goal"),
        ):
            status, resp = await call(client, "plans.generate", body, token=token)
            assert status == 400 and error_code(resp) == "BAD_REQUEST", (body, resp)
            assert resp["error"]["message"].startswith(where), resp
        status, resp = await call(client, "plans.get", {"id": "nope"}, token=token)
        assert status == 404


def _first(workouts: list[dict], kind: str, after: dt.date, phase_days: set[str] | None = None) -> dt.date:
    for w in workouts:
        day = dt.date.fromisoformat(str(w["day"]))
        if w["kind"] == kind and day > after and (phase_days is None or str(w["day"]) in phase_days):
            return day
    raise AssertionError(f"no {kind} after {after}")


async def _hrv_history(db: Database, user: str, first: dt.date, days: int, low_last: int) -> None:
    """HRV around 60 ms, the last `low_last` days steady around 52 ms: below the SWC band, readiness amber."""
    rng = np.random.default_rng(11)
    for i in range(days):
        low = i >= days - low_last
        value = float(math.exp(rng.normal(math.log(52 if low else 60), 0.02 if low else 0.12)))
        await add_metrics(db, user, first + dt.timedelta(days=i), hrv_rmssd_ms=value, sleep_s=8 * 3600.0)


async def _workout(db: Database, user: str, day: dt.date) -> dict:
    row = await db.fetchrow("SELECT * FROM scheduled_workouts WHERE user_id = $1 AND day = $2", user, day.isoformat())
    assert row is not None
    return row


async def test_low_readiness_turns_intervals_easy_and_a_good_reading_restores_them(db: Database) -> None:
    user = await make_user(db)
    with clock.frozen(at_noon_utc(MONDAY)):
        plan_id = await create_plan(db, user, PlanSpec("10k", RACE, "run", weekly_hours=5))
    plan = await get_plan(db, user, plan_id)
    build = {str(w["day"]) for w in plan.workouts if plan.phase_on(dt.date.fromisoformat(str(w["day"]))) == "build"}
    day = _first(plan.workouts, "intervals", MONDAY, build)
    await _hrv_history(db, user, day - dt.timedelta(days=69), 70, low_last=7)
    with clock.frozen(at_noon_utc(day)):
        result = await recompute_user(db, user, day - dt.timedelta(days=69))
    assert result.plan_changes > 0
    row = await _workout(db, user, day)
    assert row["kind"] == "easy" and row["original_kind"] == "intervals" and row["status"] == "adapted"
    assert row["adaptation_reason"].startswith("HRV 7-day average below your normal range (HRV ")
    assert "% below your 60-day baseline" in row["adaptation_reason"] and row["adaptation_reason"].endswith("go easy")
    assert row["target_duration_min"] <= 45 and row["title"] == "Easy run"
    stored = await get_plan(db, user, plan_id)
    assert stored.row["current_phase"] == "build"
    stamp = row["updated_stamp"]

    with clock.frozen(at_noon_utc(day)):  # the same inputs again: nothing changes, nothing is stamped
        again = await recompute_user(db, user, day)
    assert again.plan_changes == 0 and (await _workout(db, user, day))["updated_stamp"] == stamp

    # The watch re-sends today's reading: back inside the normal range -> the planned session returns.
    for i in range(7):
        await add_metrics(db, user, day - dt.timedelta(days=i), hrv_rmssd_ms=61.0, source="garmin")
    await db.execute(
        "DELETE FROM daily_metrics WHERE user_id = $1 AND day > $2 AND source = 'app'",
        user,
        (day - dt.timedelta(days=7)).isoformat(),
    )
    with clock.frozen(at_noon_utc(day)):
        await recompute_user(db, user, day - dt.timedelta(days=6))
    row = await _workout(db, user, day)
    assert (row["kind"], row["status"], row["original_kind"], row["adaptation_reason"]) == (
        "intervals",
        "planned",
        None,
        None,
    )
    assert row["updated_stamp"] > stamp


async def test_missed_key_session_moves_and_a_done_one_completes(db: Database) -> None:
    user = await make_user(db, timezone="Europe/Berlin")
    with clock.frozen(at_noon_utc(MONDAY)):
        plan_id = await create_plan(db, user, PlanSpec("Marathon", RACE, "run", weekly_hours=6))
    plan = await get_plan(db, user, plan_id)
    build = {str(w["day"]) for w in plan.workouts if plan.phase_on(dt.date.fromisoformat(str(w["day"]))) == "build"}
    intervals = _first(plan.workouts, "intervals", MONDAY, build)
    tempo = intervals + dt.timedelta(days=2)
    assert (await _workout(db, user, tempo))["kind"] == "tempo"
    done = await add_activity(
        db, user, local_ms(tempo - dt.timedelta(days=7), 23.5, "Europe/Berlin"), 80.0, duration_s=2700
    )
    with clock.frozen(at_noon_utc(intervals + dt.timedelta(days=1))):
        await recompute_user(db, user, None)

    missed = await _workout(db, user, intervals)
    moved = await _workout(db, user, intervals + dt.timedelta(days=1))
    assert missed["status"] == "missed" and missed["kind"] == "intervals"
    weekday = f"{intervals:%A}"
    assert (
        missed["adaptation_reason"] == f"Missed intervals on {weekday}: moved to {intervals + dt.timedelta(days=1):%A}"
    )
    assert (moved["kind"], moved["original_kind"], moved["status"]) == ("intervals", "easy", "adapted")
    assert moved["adaptation_reason"].startswith(f"Missed intervals from {weekday} moved here")
    completed = await _workout(db, user, tempo - dt.timedelta(days=7))
    assert completed["status"] == "completed" and completed["completed_activity_id"] == done
    # Every change is a stamped server write: devices pull them, including the one that last edited.
    assert missed["changed_by_device"] is None and moved["updated_stamp"] == missed["updated_stamp"]


async def test_load_spike_far_above_the_usual_ratio_reduces_today(db: Database) -> None:
    user = await make_user(db)
    first = MONDAY - dt.timedelta(days=110)
    for i in range(110):
        load = 150.0 if i >= 103 else 50.0
        await add_activity(db, user, local_ms(first + dt.timedelta(days=i), 7, "UTC"), load)
    with clock.frozen(at_noon_utc(MONDAY - dt.timedelta(days=1))):
        await recompute_user(db, user, None)
    with clock.frozen(at_noon_utc(MONDAY)):
        # Race on a Saturday: the plan's week blocks end on Saturdays, so this Monday is a session day.
        await create_plan(db, user, PlanSpec("10k", RACE - dt.timedelta(days=1), "run"))
        row = await _workout(db, user, MONDAY)
        acwr = await db.fetchval(
            "SELECT acwr FROM daily_state WHERE user_id = $1 AND day = $2",
            user,
            (MONDAY - dt.timedelta(days=1)).isoformat(),
        )
    assert acwr > 1.5
    planned = await db.fetchval("SELECT planned FROM scheduled_workouts WHERE id = $1", row["id"])
    assert row["status"] == "adapted" and row["original_kind"] == "easy"
    assert row["target_load"] < json.loads(planned)["target_load"]
    assert f"Acute:chronic load ratio {acwr:.2f} is above 1.5: reduced today's load" in row["adaptation_reason"]
    assert "Form (TSB) -" in row["adaptation_reason"]


async def test_a_session_the_athlete_edited_is_left_alone(db: Database) -> None:
    user = await make_user(db)
    with clock.frozen(at_noon_utc(MONDAY)):
        plan_id = await create_plan(db, user, PlanSpec("10k", RACE, "run", weekly_hours=5))
    plan = await get_plan(db, user, plan_id)
    build = {str(w["day"]) for w in plan.workouts if plan.phase_on(dt.date.fromisoformat(str(w["day"]))) == "build"}
    day = _first(plan.workouts, "intervals", MONDAY, build)
    await _hrv_history(db, user, day - dt.timedelta(days=69), 70, low_last=7)
    # Low HRV, but the athlete already swapped today's intervals for a tempo run on the phone.
    await db.execute(
        "UPDATE scheduled_workouts SET kind = 'tempo', changed_by_device = 'phone' WHERE user_id = $1 AND day = $2",
        user,
        day.isoformat(),
    )
    with clock.frozen(at_noon_utc(day)):
        await recompute_user(db, user, None)
    row = await _workout(db, user, day)
    assert (row["kind"], row["status"], row["original_kind"], row["changed_by_device"]) == (
        "tempo",
        "planned",
        None,
        "phone",
    )

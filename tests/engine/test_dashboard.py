"""dashboard.* on both databases, and the done-when scenario of the analysis engine: a user with
imported FIT activities and a few weeks of daily readings gets a today summary whose numbers are the
reference formulas' and whose reasons a person understands."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from tests.engine.factories import add_activity, add_metrics, at_noon_utc, local_ms
from tests.engine.fit_files import legs
from tests.engine.test_recompute import reference_pmc
from tests.helpers import call, data, error_code, login, register
from trainer import clock
from trainer.analysis.load import analyze_activity
from trainer.db import Database
from trainer.engine import recompute_user
from trainer.engine.physiology import physiology_for
from trainer.profile import UserSettings

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = dt.date(2015, 8, 30)  # the day after the multisport race in the fixtures (a Sunday)
FIRST = TODAY - dt.timedelta(days=66)  # ~9 weeks of morning readings
SETTINGS = {"sex": "male", "hrMax": 190, "hrRest": 50, "lthr": 170, "timezone": "Europe/Berlin"}
FILES = ("activity-small-fenix2-run.fit", "activity-large-fenxi2-multisport.fit")


def readings() -> tuple[np.ndarray, np.ndarray]:
    """rMSSD and resting HR per day: steady, then the last week tired (HRV down ~15 %, RHR up)."""
    rng = np.random.default_rng(2015)
    n = (TODAY - FIRST).days + 1
    rmssd = np.exp(rng.normal(math.log(65), 0.10, n))
    rhr = np.round(rng.normal(48, 1.5, n))
    rmssd[-7:] = np.exp(rng.normal(math.log(55), 0.02, 7))
    rhr[-7:] = rhr[-7:] + 5
    return rmssd, rhr


async def import_fixtures(db: Database, user_id: str, settings: UserSettings) -> list[tuple[dt.date, float]]:
    """Store each parsed leg the way ingest does: summary columns plus the load from its HR stream."""
    out = []
    for name in FILES:
        for leg in legs(name):
            a, s = leg.activity, leg.streams
            assert s is not None and s.heart_rate is not None
            load = analyze_activity(s.time_s, s.heart_rate, physiology_for(settings), duration_s=a.moving_time_s)
            start_ms = clock.datetime_to_ms(a.start_time)
            await add_activity(
                db,
                user_id,
                start_ms,
                load.load,
                duration_s=a.duration_s,
                sport=a.sport.value,
                name=a.name or name,
                external_id=a.external_id,
                distance_m=a.distance_m,
                avg_hr=load.avg_hr,
                trimp=load.trimp,
                hr_tss=load.hr_tss,
            )
            out.append((a.start_time.astimezone(BERLIN).date(), load.load))
    return out


async def test_today_summary_matches_the_reference(client: TestClient, db: Database) -> None:
    with clock.frozen(at_noon_utc(TODAY)):
        auth = await register(client, "athlete@example.com")
        token, user = auth["accessToken"], auth["user"]["id"]
        status, body = await call(client, "user.updateSettings", SETTINGS, token=token)
        assert status == 200, body
        settings = UserSettings.model_validate(data(body)["settings"])
        loads = await import_fixtures(db, user, settings)
        rmssd, rhr = readings()
        for i in range(rmssd.size):
            await add_metrics(
                db,
                user,
                FIRST + dt.timedelta(days=i),
                hrv_rmssd_ms=float(rmssd[i]),
                resting_hr=float(rhr[i]),
                sleep_s=7.6 * 3600,
            )
        # A three-week plan: today is its first intervals session.
        race = TODAY + dt.timedelta(days=19)
        status, body = await call(client, "plans.generate", {"goal": "10k", "raceDate": race.isoformat()}, token=token)
        assert status == 200, body
        status, body = await call(client, "dashboard.getTodaySummary", token=token)
        assert status == 200, body
        summary = data(body)

    # Daily loads per Berlin day, and CTL/ATL by the reference's update rule from the first day of data.
    series = np.zeros((TODAY - FIRST).days + 1)
    for day, load in loads:
        series[(day - FIRST).days] += load
    assert {d for d, _ in loads} == {dt.date(2015, 8, 15), dt.date(2015, 8, 29)}
    ctl, atl = reference_pmc(series.tolist())
    fitness = summary["fitness"]
    assert fitness["ctl"] == pytest.approx(ctl[-1], rel=1e-9)
    assert fitness["atl"] == pytest.approx(atl[-1], rel=1e-9)
    assert fitness["tsb"] == pytest.approx(ctl[-2] - atl[-2], rel=1e-9)  # form before today's session
    assert fitness["ramp"] == pytest.approx(ctl[-1] - ctl[-8], rel=1e-9)
    assert [d["load"] for d in summary["loadTrend"]] == pytest.approx(series[-7:].tolist())
    assert summary["loadTrend"][-1]["date"] == TODAY.isoformat() and summary["date"] == TODAY.isoformat()

    # Readiness: HRV 7-day mean vs the 60 days before today; resting HR 7-day mean vs its baseline.
    ln = np.log(rmssd)
    pct = 100 * math.expm1(ln[-7:].mean() - ln[-61:-1].mean())
    rhr_delta = rhr[-7:].mean() - rhr[-61:-1].mean()
    readiness = summary["readiness"]
    assert readiness["reasons"] == [
        f"HRV {abs(pct):.0f}% below your 60-day baseline",
        f"Resting HR {rhr_delta:.0f} bpm above normal",
    ]
    assert readiness["confidence"] == "high" and readiness["band"] in ("amber", "red")

    # Today's intervals became an easier session, and the app is told why.
    workout = summary["workout"]
    assert workout["originalKind"] == "intervals" and workout["adapted"] and workout["status"] == "adapted"
    assert workout["kind"] in ("easy", "rest")
    assert f"HRV {abs(pct):.0f}% below your 60-day baseline" in workout["adaptationReason"]

    last = summary["lastActivity"]
    assert last["sport"] == "ride" and dt.datetime.fromtimestamp(
        last["startTime"] / 1000, BERLIN
    ).date() == TODAY - dt.timedelta(days=1)
    week = summary["week"]
    assert week["start"] == "2015-08-24" and week["end"] == TODAY.isoformat()
    assert week["load"] == pytest.approx(series[-7:].sum())
    assert week["plannedLoad"] == pytest.approx(workout["targetLoad"]) and week["sessionsPlanned"] == 1
    assert summary["plan"]["daysToRace"] == 19 and summary["plan"]["currentPhase"] == "peak"


async def test_empty_account(client: TestClient) -> None:
    with clock.frozen(at_noon_utc(TODAY)):
        token = (await register(client, "new@example.com"))["accessToken"]
        status, body = await call(client, "dashboard.getTodaySummary", token=token)
    assert status == 200, body
    summary = data(body)
    assert summary["readiness"] is None and summary["fitness"] is None and summary["workout"] is None
    assert summary["plan"] is None and summary["lastActivity"] is None
    assert [d["load"] for d in summary["loadTrend"]] == [0.0] * 7
    assert summary["week"]["load"] == 0 and summary["week"]["plannedLoad"] is None


async def test_trend_extends_to_today_and_checks_its_range(client: TestClient, db: Database) -> None:
    day = dt.date(2024, 9, 10)
    with clock.frozen(at_noon_utc(day)):
        auth = await register(client, "trend@example.com")
        token, user = auth["accessToken"], auth["user"]["id"]
        for i in range(20):
            await add_activity(db, user, local_ms(day - dt.timedelta(days=30 - i), 8, "UTC"), 60.0)
        await recompute_user(db, user, None)
    later = day + dt.timedelta(days=5)  # five days without data: the state must still reach today
    with clock.frozen(at_noon_utc(later)):
        token = (await login(client, "trend@example.com"))["accessToken"]
        status, body = await call(client, "dashboard.getTrend", {"days": 7}, token=token)
        assert status == 200, body
        trend = data(body)
        for days in (6, 731, "x"):
            status, bad = await call(client, "dashboard.getTrend", {"days": days}, token=token)
            assert status == 400 and error_code(bad) == "BAD_REQUEST"
        status, everything = await call(client, "dashboard.getTrend", {"days": 730}, token=token)
    assert trend["end"] == later.isoformat() and trend["start"] == (later - dt.timedelta(days=6)).isoformat()
    assert [d["date"] for d in trend["days"]] == [(later - dt.timedelta(days=6 - i)).isoformat() for i in range(7)]
    ctl = [d["ctl"] for d in trend["days"]]
    assert all(b < a for a, b in zip(ctl[-5:], ctl[-4:], strict=False))  # rest days: fitness decays
    assert len(data(everything)["days"]) == 36  # history starts 30 days before `day`

"""Incremental recompute == full recompute, for late, backfilled and deleted data (hypothesis).

SQLite only: the property is about the engine's arithmetic and windowing, which is the same code on
both backends (the backend-specific paths are covered in test_recompute.py on both databases).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.factories import (
    add_activity,
    add_metrics,
    at_noon_utc,
    delete_activity,
    local_ms,
    make_user,
    state_rows,
)
from trainer import clock
from trainer.db import Database
from trainer.engine import recompute_user
from trainer.engine.days import today as local_today
from trainer.engine.days import user_zone
from trainer.engine.inputs import LOOKBACK_DAYS, read_inputs
from trainer.engine.recompute import compute_rows
from trainer.engine.state_store import COLUMNS
from trainer.profile import UserSettings

START = dt.date(2023, 1, 2)
ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Auckland"]

activity = st.tuples(st.integers(0, 199), st.floats(0, 23.9), st.floats(0, 300))
reading = st.tuples(
    st.integers(0, 199),
    st.one_of(st.none(), st.floats(20, 120)),  # rMSSD ms
    st.one_of(st.none(), st.floats(40, 70)),  # resting HR
    st.one_of(st.none(), st.floats(3, 10)),  # sleep h
    st.one_of(st.none(), st.integers(1, 10)),  # soreness
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    days = draw(st.integers(70, 200))
    return {
        "zone": draw(st.sampled_from(ZONES)),
        "days": days,
        "activities": [a for a in draw(st.lists(activity, max_size=80)) if a[0] < days],
        "readings": [r for r in draw(st.lists(reading, max_size=60)) if r[0] < days],
        "late_from": draw(st.integers(0, days - 1)),
        "late_activities": draw(st.lists(activity, max_size=8)),
        "late_readings": draw(st.lists(reading, max_size=8)),
        "delete": draw(st.lists(st.integers(0, 79), max_size=3)),
    }


async def _reading(db: Database, user: str, r: tuple) -> None:
    day, rmssd, rhr, sleep_h, soreness = r
    await add_metrics(
        db,
        user,
        START + dt.timedelta(days=day),
        hrv_rmssd_ms=rmssd,
        resting_hr=rhr,
        sleep_s=None if sleep_h is None else sleep_h * 3600,
        soreness=soreness,
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=scenarios())
async def test_incremental_equals_full(db: Database, s: dict) -> None:
    user = await make_user(db, timezone=s["zone"])
    zone = user_zone(UserSettings(timezone=s["zone"]))
    frozen_at = at_noon_utc(START + dt.timedelta(days=s["days"] - 1))
    await add_metrics(db, user, START, resting_hr=55.0)  # history starts on START
    ids = [
        await add_activity(db, user, local_ms(START + dt.timedelta(days=d), h, s["zone"]), load)
        for d, h, load in s["activities"]
    ]
    for r in s["readings"]:
        await _reading(db, user, r)
    with clock.frozen(frozen_at):
        today = local_today(zone)  # noon UTC is already tomorrow in Auckland
        first = await recompute_user(db, user, None)

        # Late data: everything from `late_from` on may change; nothing before it does.
        k = s["late_from"]
        for d, h, load in s["late_activities"]:
            day = START + dt.timedelta(days=k + d % (s["days"] - k))
            await add_activity(db, user, local_ms(day, h, s["zone"]), load)
        for r in s["late_readings"]:
            await _reading(db, user, (k + r[0] % (s["days"] - k), *r[1:]))
        for i in s["delete"]:
            if i < len(ids) and s["activities"][i][0] >= k:
                await delete_activity(db, user, ids[i])
                ids[i] = ""
        from_day = START + dt.timedelta(days=k)
        late = await recompute_user(db, user, from_day)
        rows = await state_rows(db, user)

        # Incremental when the look-back window fits after the first day of history.
        assert late.full == (k < LOOKBACK_DAYS + 7)
        expected = compute_rows(
            await read_inputs(db, user, zone, START, today),
            pmc_seed=None,
            acwr_seed="zero",
            settings=UserSettings(timezone=s["zone"]),
        )
        assert list(rows) == [e["day"] for e in expected]
        for e in expected:
            got = rows[e["day"]]
            for column in COLUMNS:
                if isinstance(e[column], float):
                    assert got[column] == pytest.approx(e[column], rel=1e-9, abs=1e-9), (e["day"], column)
                else:
                    assert got[column] == e[column], (e["day"], column)
            if e["day"] < from_day.isoformat():
                assert got["updated_stamp"] == first.stamp  # untouched days keep their stamp

        # ... and a full recompute now finds nothing to change.
        again = await recompute_user(db, user, None)
        assert (again.changed, again.deleted) == (0, 0)

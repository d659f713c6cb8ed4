"""recompute_user against the reference's worked numbers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

import numpy as np
import pytest

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
from trainer.analysis.daily import daily_history
from trainer.db import Database
from trainer.engine import inputs, recompute_user, state_store
from trainer.engine.days import user_zone
from trainer.engine.physiology import READINESS_SETTINGS
from trainer.profile import UserSettings

BERLIN = "Europe/Berlin"
D1 = dt.date(2024, 3, 4)  # a Monday; the six weeks cross the DST change of 31 March
PATTERN = [0, 60, 80, 0, 100, 50, 150]  # reference section 3, "six weeks"
LAST = D1 + dt.timedelta(days=41)


async def six_weeks(db: Database) -> str:
    """The reference's weekly pattern for six weeks, in Berlin time; each 150 day is split into a
    session at 00:30 and one at 23:30 local, which are different UTC days from the local one."""
    user = await make_user(db, timezone=BERLIN)
    await add_metrics(db, user, D1, resting_hr=50)
    for i in range(42):
        day = D1 + dt.timedelta(days=i)
        load = PATTERN[i % 7]
        if load == 150:
            await add_activity(db, user, local_ms(day, 0.5, BERLIN), 100)
            await add_activity(db, user, local_ms(day, 23.5, BERLIN), 50)
        elif load:
            await add_activity(db, user, local_ms(day, 18, BERLIN), load)
    return user


def reference_pmc(loads: list[float]) -> tuple[list[float], list[float]]:
    """The reference's update rule, written out: X_t = X_{t-1} + k (L_t - X_{t-1}), k = 1 - e^(-1/tau)."""
    k42, k7 = 1 - math.exp(-1 / 42), 1 - math.exp(-1 / 7)
    ctl, atl, c, a = [], [], 0.0, 0.0
    for load in loads:
        c += k42 * (load - c)
        a += k7 * (load - a)
        ctl.append(c)
        atl.append(a)
    return ctl, atl


async def test_six_weeks_match_the_reference(db: Database) -> None:
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        result = await recompute_user(db, user, None)
    assert result.full and result.changed == 42 and result.first_day == D1 and result.last_day == LAST
    rows = await state_rows(db, user)
    assert list(rows) == [(D1 + dt.timedelta(days=i)).isoformat() for i in range(42)]
    last = rows[LAST.isoformat()]
    # Worked values of reference section 3 (previous-day TSB is the app's default).
    assert last["load"] == 150
    assert last["ctl"] == pytest.approx(40.7059, rel=1e-4)
    assert last["atl"] == pytest.approx(72.0641, rel=1e-4)
    assert last["tsb"] == pytest.approx(-22.0235, rel=1e-4)
    assert last["ramp"] == pytest.approx(4.2964, rel=1e-4)
    ctl, atl = reference_pmc([PATTERN[i % 7] for i in range(42)])
    assert [r["ctl"] for r in rows.values()] == pytest.approx(ctl, rel=1e-12)
    assert [r["atl"] for r in rows.values()] == pytest.approx(atl, rel=1e-12)
    # Monotony of the last week, population SD (reference section 5 conventions).
    week = np.array(PATTERN, dtype=float)
    assert last["monotony"] == pytest.approx(week.mean() / week.std())
    assert last["strain"] == pytest.approx(week.sum() * week.mean() / week.std())
    assert rows[(D1 + dt.timedelta(days=26)).isoformat()]["acwr"] is None  # < 28 days of history
    assert rows[(D1 + dt.timedelta(days=27)).isoformat()]["acwr"] is not None
    assert last["readiness_reasons"] == [] and last["readiness_confidence"] == "low"


async def test_second_run_changes_nothing(db: Database) -> None:
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        first = await recompute_user(db, user, None)
        before = await state_rows(db, user)
        again = await recompute_user(db, user, D1)
        assert (again.changed, again.deleted, again.stamp) == (0, 0, None)
        assert await state_rows(db, user) == before
        assert first.stamp is not None


async def test_late_activity_restamps_only_the_days_it_changes(db: Database) -> None:
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        first = await recompute_user(db, user, None)
        late_day = D1 + dt.timedelta(days=30)
        await add_activity(db, user, local_ms(late_day, 7, BERLIN), 40)
        result = await recompute_user(db, user, late_day)
        rows = await state_rows(db, user)
    assert result.changed == 12  # the late day and every later day (CTL/ATL carry it forward)
    for day, row in rows.items():
        expected = result.stamp if day >= late_day.isoformat() else first.stamp
        assert row["updated_stamp"] == expected, day
        assert row["created_stamp"] == first.stamp
    loads = [float(PATTERN[i % 7]) for i in range(42)]
    loads[30] += 40
    ctl, _ = reference_pmc(loads)
    assert [r["ctl"] for r in rows.values()] == pytest.approx(ctl, rel=1e-12)


async def test_days_follow_the_users_time_zone(db: Database) -> None:
    """The same instants bucket into different days for a user in another zone."""
    user = await make_user(db, timezone="America/New_York")
    day = dt.date(2024, 6, 3)
    await add_activity(db, user, local_ms(day, 23, "America/New_York"), 70)  # 03:00 UTC the next day
    with clock.frozen(at_noon_utc(day + dt.timedelta(days=1))):
        await recompute_user(db, user, day)
    rows = await state_rows(db, user)
    assert rows[day.isoformat()]["load"] == 70
    assert rows[(day + dt.timedelta(days=1)).isoformat()]["load"] == 0


async def test_readiness_reasons_a_person_understands(db: Database) -> None:
    """60 days of steady HRV, then a week ~20 % lower and short nights."""
    user = await make_user(db)
    start = dt.date(2024, 1, 1)
    rng = np.random.default_rng(7)
    rmssd = np.exp(rng.normal(math.log(60), 0.08, 67))
    rmssd[-7:] = np.exp(rng.normal(math.log(48), 0.02, 7))
    for i, value in enumerate(rmssd):
        await add_metrics(
            db, user, start + dt.timedelta(days=i), hrv_rmssd_ms=float(value), sleep_s=7.5 * 3600, soreness=3
        )
    today = start + dt.timedelta(days=66)
    await add_metrics(db, user, today, sleep_s=5 * 3600, soreness=9)  # a second source for the same day
    with clock.frozen(at_noon_utc(today)):
        await recompute_user(db, user, None)
    row = (await state_rows(db, user))[today.isoformat()]
    ln = np.log(rmssd)
    pct = 100 * math.expm1(ln[-7:].mean() - ln[-61:-1].mean())  # 7-day mean vs the 60 days before today
    assert pct < -10
    # Two readings for today: the later one wins where both have a value, the HRV comes from the first.
    assert row["readiness_reasons"] == [
        f"HRV {abs(pct):.0f}% below your 60-day baseline",
        "Short sleep: 5.0 h",
        "High muscle soreness: 9/10",
    ]
    expected = daily_history(
        start,
        np.zeros(67),
        rmssd_ms=rmssd,
        sleep_h=np.r_[np.full(66, 7.5), 5.0],
        soreness=np.r_[np.full(66, 3.0), 9.0],
        readiness_settings=READINESS_SETTINGS,
    )[-1]
    assert row["readiness_score"] == expected.readiness_score
    assert row["readiness_band"] == expected.readiness_band == "red"


async def test_no_data_no_rows_and_removed_history_is_deleted(db: Database) -> None:
    user = await make_user(db)
    day = dt.date(2024, 5, 1)
    with clock.frozen(at_noon_utc(day)):
        empty = await recompute_user(db, user, None)
        assert (empty.days, empty.changed, empty.stamp) == (0, 0, None)
        first = await add_activity(db, user, local_ms(day - dt.timedelta(days=3), 9, "UTC"), 50)
        await add_activity(db, user, local_ms(day - dt.timedelta(days=1), 9, "UTC"), 50)
        await recompute_user(db, user, None)
        assert len(await state_rows(db, user)) == 4
        await delete_activity(db, user, first)
        result = await recompute_user(db, user, None)
    rows = await state_rows(db, user)
    assert list(rows) == [(day - dt.timedelta(days=1)).isoformat(), day.isoformat()]
    assert result.deleted == 2
    tombstones = await db.fetch(
        "SELECT row_id FROM sync_tombstones WHERE user_id = $1 AND table_name = 'daily_state'", user
    )
    assert len(tombstones) == 2


async def test_concurrent_recomputes_of_one_user_run_one_after_the_other(db: Database) -> None:
    """Ingest and the dashboard may both recompute at once: exactly one of them writes the rows."""
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        results = await asyncio.gather(*(recompute_user(db, user, day) for day in (None, D1, None, D1)))
    assert sorted(r.changed for r in results) == [0, 0, 0, 42]
    assert len({r.stamp for r in results if r.stamp is not None}) == 1
    assert len(await state_rows(db, user)) == 42


async def test_one_read_finds_what_the_compare_and_the_cleanup_need(db: Database) -> None:
    """read_for_compare == read_rows + ids_outside, for full and incremental bounds, including
    windows that start after today and rows after today (a user who moved west)."""
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        await recompute_user(db, user, None)
    for first, end, stale_before in (
        (D1, LAST, D1),
        (D1 + dt.timedelta(days=3), LAST - dt.timedelta(days=4), D1 + dt.timedelta(days=2)),
        (D1 + dt.timedelta(days=20), LAST - dt.timedelta(days=2), None),
        (LAST + dt.timedelta(days=5), LAST - dt.timedelta(days=1), None),
        (LAST + dt.timedelta(days=5), LAST - dt.timedelta(days=1), LAST + dt.timedelta(days=5)),
    ):
        stored, stale = await state_store.read_for_compare(db, user, first, end, stale_before=stale_before)
        assert stored == (await state_store.read_rows(db, user, first, end) if first <= end else {})
        assert sorted(stale) == sorted(await state_store.ids_outside(db, user, stale_before, end))


@pytest.mark.parametrize("kinds", ["activities", "metrics", "both", "none"])
async def test_inputs_skip_only_the_kinds_a_user_has_none_of(db: Database, kinds: str) -> None:
    user = await make_user(db)
    day = dt.date(2024, 5, 1)
    if kinds in ("activities", "both"):
        await add_activity(db, user, local_ms(day, 9, "UTC"), 50)
    if kinds in ("metrics", "both"):
        await add_metrics(db, user, day + dt.timedelta(days=1), resting_hr=52.0, hrv_rmssd_ms=61.0)
    zone = user_zone(UserSettings(timezone="UTC"))
    known = await inputs.history(db, user, zone)
    assert known.start == await inputs.history_start(db, user, zone)
    assert (known.activities_from is not None, known.metrics_from is not None) == (
        kinds in ("activities", "both"),
        kinds in ("metrics", "both"),
    )
    first, last = day - dt.timedelta(days=2), day + dt.timedelta(days=3)
    plain = await inputs.read_inputs(db, user, zone, first, last)
    hinted = await inputs.read_inputs(db, user, zone, first, last, known=known)
    for name in ("loads", "rmssd_ms", "rhr_bpm", "sleep_h", "soreness", "stress"):
        assert np.array_equal(getattr(plain, name), getattr(hinted, name), equal_nan=True), name


async def test_one_read_finds_the_seed_and_the_rows_of_an_incremental_run(db: Database) -> None:
    """read_incremental == read_seed + read_for_compare(stale_before=None), with and without a gap
    in the seed rows, and with `first` so far after today that the two ranges would overlap."""
    user = await six_weeks(db)
    with clock.frozen(at_noon_utc(LAST)):
        await recompute_user(db, user, None)
    gap = (D1 + dt.timedelta(days=3)).isoformat()
    await db.execute("DELETE FROM daily_state WHERE user_id = $1 AND day = $2", user, gap)
    for window, first, end in (
        (D1 + dt.timedelta(days=10), D1 + dt.timedelta(days=30), LAST),
        (D1 + dt.timedelta(days=10), D1 + dt.timedelta(days=30), LAST - dt.timedelta(days=5)),
        (D1 + dt.timedelta(days=8), D1 + dt.timedelta(days=30), LAST),  # seed rows with a gap
        (D1 + dt.timedelta(days=30), D1 + dt.timedelta(days=90), D1 + dt.timedelta(days=12)),
    ):
        seed, stored, stale = await state_store.read_incremental(db, user, window, first, end)
        assert seed == await state_store.read_seed(db, user, window)
        assert (stored, stale) == await state_store.read_for_compare(db, user, first, end, stale_before=None)
    assert seed is not None

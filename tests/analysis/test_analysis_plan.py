"""Plan generation and the adaptation rules."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

import pytest

from trainer.analysis.plan import (
    INTENSITY,
    DayState,
    PlanSettings,
    ScheduledWorkout,
    adapt_day,
    adapt_workout,
    apply_adjustments,
    current_phase,
    generate_plan,
    progression_flag,
    reschedule_missed,
    retarget,
)

START = dt.date(2025, 1, 6)  # a Monday
RACE = dt.date(2025, 6, 1)  # a Sunday: 21 whole weeks


def plan(**kw: object):  # type: ignore[no-untyped-def]
    return generate_plan(RACE, start=START, current_ctl=40, **kw)  # type: ignore[arg-type]


def test_plan_covers_every_day_and_ends_with_the_race() -> None:
    p = plan()
    assert len(p.workouts) == (RACE - START).days + 1
    assert [w.date for w in p.workouts] == [START + dt.timedelta(days=i) for i in range(len(p.workouts))]
    assert p.workouts[-1].kind == "race" and p.workouts[-1].date == RACE
    assert sum(w.kind == "race" for w in p.workouts) == 1
    assert all(w.target_load >= 0 and w.target_duration_min >= 0 for w in p.workouts)
    assert all((w.kind == "rest") == (w.target_duration_min == 0) for w in p.workouts if w.kind != "race")


def test_phases_in_order_with_two_week_taper() -> None:
    p = plan()
    phases = [w.phase for w in p.weeks]
    order = ["base", "build", "peak", "taper"]
    assert phases == sorted(phases, key=order.index)
    assert phases[-2:] == ["taper", "taper"] and phases.count("peak") == 2 and "build" in phases
    assert current_phase(p, START) == "base"
    assert current_phase(p, RACE) == "taper"
    assert current_phase(p, RACE + dt.timedelta(days=1)) is None
    assert current_phase(p, START - dt.timedelta(days=1)) is None


def test_weekly_targets_match_workouts_and_starting_level() -> None:
    p = plan()
    for w in p.weeks:
        total = sum(x.target_load for x in p.workouts if w.start <= x.date <= w.end)
        assert total == pytest.approx(w.target_load)
    assert p.weeks[0].target_load == pytest.approx(7 * 40)


def test_progression_recovery_and_taper() -> None:
    s = PlanSettings()
    p = plan()
    weeks = p.weeks
    for prev, cur in itertools.pairwise(weeks):
        if cur.phase == "taper" or prev.recovery:
            continue
        if cur.recovery:
            assert cur.target_load == pytest.approx(prev.target_load * (1 - s.recovery_cut))
        else:
            assert cur.target_load <= prev.target_load * (1 + s.max_weekly_increase) + 1e-9
    # a recovery week at least every 4th week before the taper
    flags = [w.recovery for w in weeks if w.phase != "taper"]
    assert all(any(flags[i : i + 4]) for i in range(0, len(flags) - 3))
    peak = max(w.target_load for w in weeks if w.phase != "taper")
    taper = [w.target_load for w in weeks if w.phase == "taper"]
    assert taper == pytest.approx([peak * 0.70, peak * 0.45])
    assert 1 - taper[-1] / peak == pytest.approx(0.55)


def test_taper_keeps_intensity() -> None:
    p = plan()
    taper_kinds = {w.kind for w in p.workouts if w.phase == "taper"}
    assert "intervals" in taper_kinds
    last = p.workouts[-7:]
    assert [w.kind for w in last].count("intervals") == 1


def test_starting_level_from_hours_or_floor() -> None:
    by_hours = generate_plan(RACE, start=START, weekly_hours=5)
    assert by_hours.weeks[0].target_load == pytest.approx(300)
    beginner = generate_plan(RACE, start=START)
    assert beginner.weeks[0].target_load == pytest.approx(PlanSettings().min_weekly_load)
    assert generate_plan(RACE, start=START, current_ctl=0).weeks[0].target_load == pytest.approx(150)


def test_partial_lead_in_and_short_plans() -> None:
    p = generate_plan(RACE, start=START + dt.timedelta(days=3), current_ctl=40)
    assert p.weeks[0].days == 4 and p.workouts[0].date == p.start
    assert p.weeks[0].target_load == pytest.approx(280 * 4 / 7)
    one_week = generate_plan(RACE, start=RACE - dt.timedelta(days=6), current_ctl=40)
    assert [w.phase for w in one_week.weeks] == ["taper"] and one_week.workouts[-1].kind == "race"
    race_only = generate_plan(RACE, start=RACE, current_ctl=40)
    assert [w.kind for w in race_only.workouts] == ["race"]
    three = generate_plan(RACE, start=RACE - dt.timedelta(days=20), current_ctl=40)
    assert [w.phase for w in three.weeks] == ["build", "taper", "taper"]
    with pytest.raises(ValueError):
        generate_plan(START, start=RACE)


def test_sport_changes_descriptions() -> None:
    ride = generate_plan(RACE, start=START, sport="bike", current_ctl=40)
    assert any("ride" in w.description for w in ride.workouts)
    assert not any(" run" in w.description for w in ride.workouts)


def test_progression_flag() -> None:
    assert progression_flag(100, 110) == "ok"
    assert progression_flag(100, 115) == "above_cap"
    assert progression_flag(100, 131) == "hard"
    assert progression_flag(0, 50) == "ok"


# ---------------------------------------------------------------- adaptation


def wo(kind: str, load: float = 80.0, minutes: float = 60.0) -> ScheduledWorkout:
    return ScheduledWorkout(dt.date(2025, 3, 4), kind, load, minutes, "", "build")  # type: ignore[arg-type]


def test_green_day_is_unchanged() -> None:
    assert adapt_workout(wo("intervals"), DayState(readiness_band="green", hrv_status="within", tsb=-15)) is None
    assert adapt_workout(wo("intervals"), DayState()) is None


def test_hrv_outside_band_turns_intensity_easy() -> None:
    for status in ("below", "above"):
        adj = adapt_workout(wo("intervals"), DayState(readiness_band="amber", hrv_status=status))
        assert adj is not None and adj.after.kind == "easy"
        assert f"HRV 7-day average {status} your normal range" in adj.reason
    adj = adapt_workout(wo("long", 120, 120), DayState(hrv_status="below"))
    assert adj is not None and adj.after.kind == "endurance"
    assert adapt_workout(wo("easy"), DayState(hrv_status="below")) is None


def test_red_readiness_with_low_hrv_means_rest() -> None:
    state = DayState(
        readiness_band="red", hrv_status="below", readiness_reasons=("HRV 15% below your 60-day baseline",)
    )
    adj = adapt_workout(wo("tempo"), state)
    assert adj is not None and adj.after.kind == "rest" and adj.after.target_load == 0
    assert "HRV 15% below your 60-day baseline" in adj.reason


def test_tsb_below_minus_30_caps_at_easy() -> None:
    adj = adapt_workout(wo("tempo"), DayState(tsb=-35))
    assert adj is not None and adj.after.kind == "easy" and "TSB" in adj.reason
    assert adapt_workout(wo("easy"), DayState(tsb=-35)) is None
    assert adapt_workout(wo("tempo"), DayState(tsb=-25)) is None


def test_rhr_and_sleep_downgrade_one_level_only() -> None:
    both = DayState(readiness_band="red", rhr_flag=True, sleep_flag=True)
    adj = adapt_workout(wo("intervals"), both)
    assert adj is not None and adj.after.kind == "tempo"
    assert "Resting hr and sleep flag" in adj.reason
    adj = adapt_workout(wo("easy"), DayState(sleep_flag=True))
    assert adj is not None and adj.after.kind == "rest"
    adj = adapt_workout(wo("endurance"), DayState(readiness_band="amber"))
    assert adj is not None and adj.after.kind == "easy"


def test_acwr_and_monotony_reduce() -> None:
    adj = adapt_workout(wo("long", 120, 120), DayState(acwr=1.6))
    assert adj is not None and adj.after.kind == "long"
    assert adj.after.target_load == pytest.approx(96) and adj.after.target_duration_min == 96
    assert "1.60" in adj.reason
    adj = adapt_workout(wo("intervals"), DayState(acwr=1.35, acwr_norm=1.0))
    assert adj is not None and adj.after.kind == "tempo" and "usual 1.00" in adj.reason
    assert adapt_workout(wo("intervals"), DayState(acwr=1.25, acwr_norm=1.0)) is None
    adj = adapt_workout(wo("endurance"), DayState(monotony=2.3))
    assert adj is not None and adj.after.target_load < 80 and "monotony" in adj.reason


def test_most_cautious_rule_wins_and_all_reasons_are_listed() -> None:
    state = DayState(hrv_status="below", tsb=-40, acwr=1.7, sleep_flag=True)
    adj = adapt_workout(wo("intervals"), state)
    assert adj is not None and adj.after.kind == "easy"
    assert len(adj.reasons) == 4


def test_race_and_rest_are_never_touched() -> None:
    bad = DayState(readiness_band="red", hrv_status="below", tsb=-50, acwr=2.0, rhr_flag=True)
    assert adapt_workout(wo("race"), bad) is None
    assert adapt_workout(wo("rest", 0, 0), bad) is None


def test_retarget_never_raises_load() -> None:
    w = wo("intervals", 80, 60)
    easy = retarget(w, "easy")
    assert easy.kind == "easy" and easy.target_duration_min == 45 and easy.target_load < 80
    assert retarget(w, "rest").target_load == 0
    assert INTENSITY["rest"] < INTENSITY["easy"] < INTENSITY["intervals"]


def test_missed_key_session_moves_within_the_week() -> None:
    p = plan()
    week = next(w for w in p.weeks if w.phase == "base" and not w.recovery)
    days = [p.on(week.start + dt.timedelta(days=i)) for i in range(7)]
    assert [d.kind for d in days] == ["rest", "easy", "endurance", "easy", "rest", "long", "endurance"]  # type: ignore[union-attr]
    # pretend the athlete skipped Saturday's long run and it is Sunday: no room left
    adjs = reschedule_missed(p, [week.start + dt.timedelta(days=5)], week.start + dt.timedelta(days=6))
    assert len(adjs) == 1 and adjs[0].after.kind == "rest" and "skipped" in adjs[0].reason

    build = next(w for w in p.weeks if w.phase == "build" and not w.recovery)
    tue, wed = build.start + dt.timedelta(days=1), build.start + dt.timedelta(days=2)
    adjs = reschedule_missed(p, [tue], wed)
    assert [a.date for a in adjs] == [tue, wed]
    assert adjs[0].after.kind == "rest" and adjs[1].after.kind == "intervals"
    assert "next to tempo" in adjs[1].reason
    new = apply_adjustments(p, adjs)
    assert new.on(wed).kind == "intervals" and new.on(tue).kind == "rest"  # type: ignore[union-attr]
    # easy sessions are not made up, nor are sessions outside the current week
    assert reschedule_missed(p, [build.start + dt.timedelta(days=2)], build.start + dt.timedelta(days=3)) == []
    assert reschedule_missed(p, [tue], build.end + dt.timedelta(days=2)) == []
    assert reschedule_missed(p, [tue], RACE + dt.timedelta(days=3)) == []


def test_missed_session_prefers_a_slot_without_hard_neighbours() -> None:
    p = plan()
    week = next(w for w in p.weeks if w.recovery)
    # recovery weeks have no hard sessions: pretend Tuesday was a tempo the athlete missed
    tue = week.start + dt.timedelta(days=1)
    workouts = list(p.workouts)
    i = (tue - p.start).days
    workouts[i] = ScheduledWorkout(tue, "tempo", 60, 50, "", "base")
    p2 = replace(p, workouts=tuple(workouts))
    # recovery template: rest easy endurance rest easy endurance rest -> Thursday (rest) is free
    adjs = reschedule_missed(p2, [tue], tue + dt.timedelta(days=1))
    assert adjs[-1].after.kind == "tempo" and adjs[-1].date == tue + dt.timedelta(days=2)
    assert "next to" not in adjs[-1].reason


def test_day_state_from_readiness_and_adapt_day() -> None:
    from trainer.analysis.readiness import classify_hrv, score_readiness

    r = score_readiness(classify_hrv(3.9, 7, 0.1, 4.1, 0.12), None, sleep_h=5.0)
    state = DayState.from_readiness(r, tsb=-12.0)
    assert state.hrv_status == "below" and state.sleep_flag and state.readiness_band == r.band
    assert state.readiness_reasons == r.reasons and state.tsb == -12.0
    assert DayState.from_readiness(None, acwr=1.1) == DayState(acwr=1.1)
    p = plan()
    week = next(w for w in p.weeks if w.phase == "build" and not w.recovery)
    tue = week.start + dt.timedelta(days=1)
    adj = adapt_day(p, tue, state)
    # HRV 1.2 SD under the band + 5 h sleep scores red (26.7): rest, with the reasons quoted
    assert r.band == "red"
    assert adj is not None and adj.before.kind == "intervals" and adj.after.kind == "rest"
    assert "Readiness red" in adj.reason and "Short sleep: 5.0 h" in adj.reason
    assert adapt_day(p, RACE + dt.timedelta(days=1), state) is None

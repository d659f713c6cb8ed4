"""Property tests: invariants that must hold for any input, not just the worked examples."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trainer.analysis.acwr import acwr_ewma, monotony_strain
from trainer.analysis.load import analyze_activity, trimp_average_hr, trimp_samples
from trainer.analysis.physiology import AnalysisSettings, EwmaConstant, Physiology, Sex, TsbTiming
from trainer.analysis.plan import (
    INTENSITY,
    DayState,
    PlanSettings,
    ScheduledWorkout,
    adapt_workout,
    generate_plan,
)
from trainer.analysis.pmc import compute_pmc
from trainer.analysis.readiness import readiness_series

# ANALYSIS_MAX_EXAMPLES=2000 for a deep run; no example database so tests leave no files behind.
FAST = settings(
    max_examples=int(os.environ.get("ANALYSIS_MAX_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
D0 = dt.date(2024, 1, 1)

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
hr_value = st.one_of(st.floats(30, 220), any_float)
physiologies = st.builds(
    lambda sex, rest, reserve, lt: Physiology(sex, rest, rest + reserve, None if lt is None else rest + lt * reserve),
    st.sampled_from(list(Sex)),
    st.floats(35, 80),
    st.floats(60, 150),
    st.none() | st.floats(0.5, 1.0),
)


@st.composite
def activities(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 400))
    steps = draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 1.0, 1.0, 2.0, 5.0, 45.0, 600.0])))
    t = np.cumsum(steps)
    hr = draw(arrays(np.float64, n, elements=hr_value))
    speed = draw(arrays(np.float64, n, elements=st.floats(-1, 8) | any_float))
    return t, hr, speed


@FAST
@given(
    activities(),
    physiologies,
    st.none() | st.floats(-5, 15) | any_float,
    st.sampled_from(["karvonen", "lthr"]),
)
def test_activity_results_are_finite_non_negative_and_json_ready(
    act: tuple[np.ndarray, np.ndarray, np.ndarray], phys: Physiology, rpe: float | None, zone_model: str
) -> None:
    t, hr, speed = act
    res = analyze_activity(t, hr, phys, speed=speed, rpe=rpe, settings=AnalysisSettings(zone_model=zone_model))
    json.dumps(res.to_dict(), allow_nan=False)
    assert res.load >= 0 and math.isfinite(res.load)
    for name in ("trimp", "trimp_avg", "edwards", "hr_tss", "hr_tss_if2", "srpe"):
        v = getattr(res, name)
        assert v is None or (math.isfinite(v) and v >= 0), name
    assert all(s >= 0 for s in res.zone_seconds)
    assert sum(res.zone_seconds) == (0 if res.hr_seconds == 0 else _approx(res.hr_seconds))
    assert 0.0 <= res.hr_valid_fraction <= 1.0
    if res.trimp is not None and res.trimp_avg is not None:
        assert res.trimp >= res.trimp_avg * (1 - 1e-9) - 1e-9


def _approx(x: float) -> object:
    import pytest

    return pytest.approx(x, rel=1e-9)


@FAST
@given(
    arrays(np.float64, st.integers(1, 300), elements=st.floats(20, 230)),
    st.data(),
    st.floats(0.5, 0.9),
    st.floats(1.5, 2.0),
)
def test_per_sample_trimp_is_at_least_average_hr_trimp(hr: np.ndarray, data: st.DataObject, a: float, b: float) -> None:
    dt_s = data.draw(arrays(np.float64, hr.size, elements=st.floats(0.1, 30)))
    seconds = float(dt_s.sum())
    avg = float(np.dot(hr, dt_s) / seconds)
    per_sample = trimp_samples(hr, dt_s, 50, 190, a, b)
    assert per_sample >= trimp_average_hr(avg, seconds / 60, 50, 190, a, b) * (1 - 1e-12) - 1e-12


@FAST
@given(
    arrays(np.float64, st.integers(2, 200), elements=st.floats(0, 400)),
    st.data(),
    st.sampled_from(list(EwmaConstant)),
    st.sampled_from(list(TsbTiming)),
)
def test_pmc_incremental_equals_full(
    load: np.ndarray, data: st.DataObject, ewma: EwmaConstant, timing: TsbTiming
) -> None:
    s = AnalysisSettings(ewma=ewma, tsb_timing=timing)
    k = data.draw(st.integers(1, load.size - 1))
    full = compute_pmc(load, D0, settings=s)
    part = compute_pmc(load[k:], D0 + dt.timedelta(days=k), seed=full.state_at(k - 1), settings=s)
    for name in ("ctl", "atl", "tsb", "ramp"):
        np.testing.assert_allclose(getattr(part, name), getattr(full, name)[k:], rtol=1e-12, atol=1e-12)
    assert (full.ctl >= 0).all() and (full.atl >= 0).all()


@FAST
@given(arrays(np.float64, st.integers(2, 120), elements=st.floats(0, 400)), st.data())
def test_acwr_ewma_incremental_equals_full(load: np.ndarray, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, load.size - 1))
    full = acwr_ewma(load, seed="first")
    part = acwr_ewma(load[k:], seed=(full.acute[k - 1], full.chronic[k - 1]), prior_days=k)
    np.testing.assert_allclose(part.ratio, full.ratio[k:], rtol=1e-12, equal_nan=True)


@FAST
@given(arrays(np.float64, st.integers(0, 60), elements=st.floats(0, 1000)))
def test_monotony_bounded_strain_non_negative(load: np.ndarray) -> None:
    mono, strain = monotony_strain(load)
    ok = np.isfinite(mono)
    assert ((mono[ok] >= 0) & (mono[ok] <= 10)).all()
    assert (strain[ok] >= 0).all()


@FAST
@given(
    st.integers(0, 300),
    st.integers(0, 6),
    st.one_of(st.tuples(st.just("ctl"), st.floats(0, 150)), st.tuples(st.just("hours"), st.floats(0, 25))),
)
def test_plan_progression_cap_and_taper(n_days: int, weekday: int, level: tuple[str, float]) -> None:
    race = dt.date(2025, 9, 7) + dt.timedelta(days=weekday)
    start = race - dt.timedelta(days=n_days)
    kw = {"current_ctl": level[1]} if level[0] == "ctl" else {"weekly_hours": level[1]}
    s = PlanSettings()
    plan = generate_plan(race, start=start, **kw)  # type: ignore[arg-type]
    assert len(plan.workouts) == n_days + 1 and plan.workouts[-1].kind == "race"
    assert all(w.target_load >= 0 for w in plan.workouts)
    rates = [(w.target_load / w.days * 7, w) for w in plan.weeks]
    for (prev_rate, prev), (rate, cur) in itertools.pairwise(rates):
        if cur.phase == "taper":
            assert rate < prev_rate or prev.recovery
        elif not prev.recovery and prev.phase != "taper":
            assert rate <= prev_rate * (1 + s.max_weekly_increase) + 1e-9
    full_weeks = [w for w in plan.weeks if w.days == 7]
    pre = [w.target_load for w in full_weeks if w.phase != "taper"]
    taper = [w.target_load for w in full_weeks if w.phase == "taper"]
    if pre and taper:
        peak = max(pre)
        assert all(b < a for a, b in itertools.pairwise(taper))
        assert taper[0] < peak
        assert 0.41 <= 1 - taper[-1] / peak <= 0.60


states = st.builds(
    DayState,
    readiness_band=st.none() | st.sampled_from(["green", "amber", "red"]),
    hrv_status=st.none() | st.sampled_from(["below", "within", "above"]),
    tsb=st.none() | st.floats(-80, 40),
    acwr=st.none() | st.floats(0, 3),
    acwr_norm=st.none() | st.floats(0.5, 1.5),
    monotony=st.none() | st.floats(0, 10),
    rhr_flag=st.booleans(),
    sleep_flag=st.booleans(),
)


@FAST
@given(st.sampled_from(["rest", "easy", "endurance", "tempo", "intervals", "long", "race"]), states)
def test_adaptation_never_upgrades(kind: str, state: DayState) -> None:
    w = ScheduledWorkout(D0, kind, 90.0, 75.0, "", "build")  # type: ignore[arg-type]
    adj = adapt_workout(w, state)
    if adj is None:
        return
    assert kind not in ("race", "rest")
    assert INTENSITY[adj.after.kind] <= INTENSITY[kind]
    assert adj.after.target_load <= w.target_load and adj.after.target_duration_min <= w.target_duration_min
    assert adj.reasons and all(r for r in adj.reasons)
    if state.hrv_status not in ("below", "above") and (state.tsb is None or state.tsb >= -30):
        # only secondary flags / soft load flags: at most one level down
        assert INTENSITY[adj.after.kind] >= INTENSITY[kind] - 2


@FAST
@given(st.integers(1, 90), st.data())
def test_readiness_never_crashes(n: int, data: st.DataObject) -> None:
    def series(lo: float, hi: float) -> np.ndarray:
        return data.draw(arrays(np.float64, n, elements=st.floats(lo, hi) | any_float))

    rows = readiness_series(
        n,
        rmssd_ms=series(10, 150),
        rhr_bpm=series(35, 80),
        sleep_h=series(0, 12),
        soreness=series(1, 5),
        stress=series(1, 5),
    )
    assert len(rows) == n
    for r in rows:
        assert 0 <= r.score <= 100 and r.band in ("green", "amber", "red")
        json.dumps(r.to_dict(), allow_nan=False)

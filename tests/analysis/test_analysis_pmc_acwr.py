"""PMC, ACWR, monotony: the reference's worked numbers and the edge rules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from trainer.analysis.acwr import (
    acwr_coupled,
    acwr_ewma,
    acwr_uncoupled,
    monotony,
    monotony_strain,
    rolling_mean,
    strain,
    to_optional,
)
from trainer.analysis.physiology import AnalysisSettings, EwmaConstant, MonotonySd, TsbTiming, ewma_k
from trainer.analysis.pmc import PmcState, compute_pmc, daily_load_series, ewma, rest_days_to_fresh

R = 1e-4
D0 = dt.date(2024, 1, 1)
SAME = AnalysisSettings(tsb_timing=TsbTiming.SAME_DAY)
SIX_WEEKS = np.tile([0.0, 60, 80, 0, 100, 50, 150], 6)


def test_impulse() -> None:
    load = np.r_[100.0, np.zeros(9)]
    same = compute_pmc(load, D0, settings=SAME)
    assert same.ctl[0] == pytest.approx(2.352831, rel=R)
    assert same.atl[0] == pytest.approx(13.312210, rel=R)
    assert same.tsb[0] == pytest.approx(-10.959379, rel=R)
    assert same.ctl[1] == pytest.approx(2.297473, rel=R)
    assert same.atl[1] == pytest.approx(11.540061, rel=R)
    prev = compute_pmc(load, D0)  # default: previous-day TSB
    assert prev.tsb[0] == 0.0
    assert prev.tsb[1] == pytest.approx(-10.959379, rel=R)


@pytest.mark.parametrize(
    ("constant", "ctl42", "atl7"),
    [
        (EwmaConstant.EXPONENTIAL, 63.2121, 63.2121),
        (EwmaConstant.INVERSE, 63.6544, 66.0083),
        (EwmaConstant.SPAN, 86.4716, 86.6516),
    ],
)
def test_constant_load(constant: EwmaConstant, ctl42: float, atl7: float) -> None:
    pmc = compute_pmc(np.full(42, 100.0), D0, settings=AnalysisSettings(ewma=constant))
    assert pmc.ctl[41] == pytest.approx(ctl42, rel=R)
    assert pmc.atl[6] == pytest.approx(atl7, rel=R)


def test_six_weeks_pattern() -> None:
    same = compute_pmc(SIX_WEEKS, D0, settings=SAME)
    assert same.ctl[-1] == pytest.approx(40.7059, rel=R)
    assert same.atl[-1] == pytest.approx(72.0641, rel=R)
    assert same.tsb[-1] == pytest.approx(-31.3582, rel=R)
    assert same.ramp[-1] == pytest.approx(4.2964, rel=R)
    assert compute_pmc(SIX_WEEKS, D0).tsb[-1] == pytest.approx(-22.0235, rel=R)


def test_ramp_uses_seed_before_start() -> None:
    pmc = compute_pmc(np.full(3, 100.0), D0)
    assert pmc.ramp.tolist() == pmc.ctl.tolist()  # CTL 7 days before the start was 0
    seeded = compute_pmc(np.zeros(3), D0, seed=PmcState(ctl=50.0, atl=60.0))
    assert seeded.ramp[0] == pytest.approx(seeded.ctl[0] - 50.0)
    assert seeded.tsb[0] == pytest.approx(-10.0)


def test_incremental_equals_full() -> None:
    full = compute_pmc(SIX_WEEKS, D0)
    k = 20
    part = compute_pmc(SIX_WEEKS[k:], D0 + dt.timedelta(days=k), seed=full.state_at(k - 1))
    for name in ("ctl", "atl", "tsb", "ramp"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[k:])
    assert full.index_of(D0 + dt.timedelta(days=5)) == 5
    with pytest.raises(IndexError):
        full.index_of(D0 - dt.timedelta(days=1))


def test_nan_load_counts_as_rest() -> None:
    assert compute_pmc([np.nan, 100.0], D0).ctl.tolist() == compute_pmc([0.0, 100.0], D0).ctl.tolist()


def test_rest_days_to_fresh_runalyze() -> None:
    k = {"k_ctl": ewma_k(42, "span"), "k_atl": ewma_k(7, "span")}
    assert rest_days_to_fresh(60, 80, **k) == pytest.approx(1.1984, rel=R)
    assert rest_days_to_fresh(80, 60, **k) == 0.0
    assert rest_days_to_fresh(0, 10, **k) == pytest.approx(rest_days_to_fresh(1, 10, **k))


def test_daily_load_series_sums_per_day_and_fills_rest_days() -> None:
    items = [
        (dt.date(2024, 1, 3), 50.0),
        (dt.datetime(2024, 1, 1, 7, 30), 40.0),
        (dt.date(2024, 1, 3), 25.0),
        (dt.date(2024, 1, 5), float("nan")),
    ]
    start, load = daily_load_series(items)
    assert start == dt.date(2024, 1, 1)
    assert load.tolist() == [40.0, 0.0, 75.0, 0.0, 0.0]
    start, load = daily_load_series(items, start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 3))
    assert load.tolist() == [0.0, 75.0]
    with pytest.raises(ValueError):
        daily_load_series([])
    assert daily_load_series([], start=D0)[1].size == 0


def test_ewma_helper() -> None:
    assert ewma([10.0, 10.0], 0.5, seed=0.0).tolist() == [5.0, 7.5]


# ---------------------------------------------------------------- ACWR

RAMP_UP = np.r_[np.full(21, 50.0), np.full(7, 80.0)]


def test_acwr_examples() -> None:
    assert acwr_coupled(RAMP_UP)[-1] == pytest.approx(1.391304, rel=R)
    assert acwr_uncoupled(RAMP_UP)[-1] == pytest.approx(1.6, rel=R)
    assert acwr_ewma(RAMP_UP, seed="first").ratio[-1] == pytest.approx(1.229542, rel=R)
    assert acwr_ewma(RAMP_UP, seed="zero").ratio[-1] == pytest.approx(1.380269, rel=R)


def test_acwr_of_histories_shorter_than_the_acute_window() -> None:
    """Every length from 0 to a full week: undefined everywhere, never an error."""
    for n in range(9):
        for series in (acwr_coupled(np.full(n, 50.0)), acwr_uncoupled(np.full(n, 50.0))):
            assert series.shape == (n,) and np.isnan(series).all()


def test_acwr_undefined_before_28_days_and_for_zero_chronic() -> None:
    for series in (acwr_coupled(RAMP_UP), acwr_uncoupled(RAMP_UP), acwr_ewma(RAMP_UP, seed="first").ratio):
        assert np.isnan(series[:27]).all() and np.isfinite(series[27])
    zeros = np.zeros(40)
    assert np.isnan(acwr_coupled(zeros)).all()
    assert np.isnan(acwr_ewma(zeros, seed="zero").ratio).all()
    assert to_optional(acwr_coupled(RAMP_UP))[:27] == [None] * 27


def test_acwr_ewma_resumes_from_explicit_state() -> None:
    load = np.r_[RAMP_UP, np.full(10, 30.0)]
    full = acwr_ewma(load, seed="first")
    k = 30
    part = acwr_ewma(load[k:], seed=(full.acute[k - 1], full.chronic[k - 1]), prior_days=k)
    np.testing.assert_allclose(part.ratio, full.ratio[k:], rtol=1e-12)
    with pytest.raises(ValueError):
        acwr_ewma(load, seed="median")  # type: ignore[arg-type]


def test_rolling_mean() -> None:
    r = rolling_mean([1.0, 2, 3, 4], 2)
    assert np.isnan(r[0]) and r[1:].tolist() == [1.5, 2.5, 3.5]
    assert np.isnan(rolling_mean([1.0], 3)).all()


# ---------------------------------------------------------------- monotony / strain

WEEK = [60.0, 0, 45, 90, 0, 120, 30]


def test_monotony_strain_example() -> None:
    assert monotony(WEEK) == pytest.approx(1.189302, rel=R)
    assert strain(WEEK) == pytest.approx(410.3091, rel=R)
    assert monotony(WEEK, MonotonySd.SAMPLE) == pytest.approx(1.101079, rel=R)
    assert strain(WEEK, "sample") == pytest.approx(379.8724, rel=R)


def test_monotony_guards() -> None:
    assert monotony([50.0] * 7) == 10.0  # SD 0 -> 10 (Runalyze)
    assert monotony([0.0] * 7) == 0.0  # full rest week: app convention, no warning
    assert 0.0 <= monotony([1000.0, 1000, 1000, 1000, 1000, 1000, 999.9]) <= 10.0
    with pytest.raises(ValueError):
        monotony([1.0])


def test_rolling_monotony_strain() -> None:
    load = np.r_[np.zeros(3), WEEK]
    mono, strn = monotony_strain(load)
    assert np.isnan(mono[:6]).all()
    assert mono[-1] == pytest.approx(1.189302, rel=R) and strn[-1] == pytest.approx(410.3091, rel=R)
    assert mono[6] == pytest.approx(monotony(load[:7]))

"""HRV/resting-HR readiness: the reference example, the scoring convention, missing data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trainer.analysis.readiness import (
    ReadinessSettings,
    RhrStatus,
    assess_readiness,
    classify_hrv,
    hrv_series,
    hrv_status,
    hrv_status_at,
    ln_rmssd,
    readiness_series,
    rhr_series,
    rhr_status_at,
    rolling_stats,
    score_readiness,
)

R = 1e-4
WEEK = [62.0, 58, 55, 50, 48, 52, 49]


def test_reference_example() -> None:
    assert ln_rmssd(WEEK) == pytest.approx([4.1271, 4.0604, 4.0073, 3.9120, 3.8712, 3.9512, 3.8918], abs=5e-5)
    st = hrv_status(WEEK, 4.10, 0.12)
    assert st is not None
    assert st.mean7 == pytest.approx(3.974457, rel=R)
    assert (st.band_low, st.band_high) == pytest.approx((4.04, 4.16), rel=R)
    assert st.status == "below"
    assert st.z == pytest.approx(-1.0462, rel=R)
    assert st.cv_pct == pytest.approx(2.3806, rel=R)
    assert st.pct_vs_baseline == pytest.approx(100 * math.expm1(3.974457 - 4.10), rel=R)


def test_swc_width_is_a_setting() -> None:
    wide = hrv_status(WEEK, 4.10, 0.12, ReadinessSettings(swc_sd=1.0))
    assert wide is not None and wide.status == "below"  # z = -1.046: still outside 1 SD
    assert (wide.band_low, wide.band_high) == pytest.approx((3.98, 4.22))
    wider = hrv_status(WEEK, 4.10, 0.12, ReadinessSettings(swc_sd=1.1))
    assert wider is not None and wider.status == "within"
    assert classify_hrv(4.3, 7, 0.1, 4.10, 0.12).status == "above"


def test_trend_needs_three_valid_days() -> None:
    assert hrv_status([60.0, np.nan, 0.0, 55.0, np.nan, np.nan, np.nan], 4.1, 0.1) is None
    assert hrv_status([60.0, 58.0, np.nan, 55.0], 4.1, 0.1) is not None
    assert hrv_status([60.0, 58.0, 55.0], None, None).status is None  # type: ignore[union-attr]


def test_rolling_stats_windows_and_lag() -> None:
    x = np.array([1.0, np.nan, 3.0, 5.0, 7.0])
    s = rolling_stats(x, 3)
    assert s.count.tolist() == [1, 1, 2, 2, 3]
    assert s.mean[2:].tolist() == pytest.approx([2.0, 4.0, 5.0])
    assert s.sd[4] == pytest.approx(np.std([3, 5, 7], ddof=1))
    assert np.isnan(s.sd[0])
    lagged = rolling_stats(x, 3, lag=1)
    assert np.isnan(lagged.mean[0]) and lagged.mean[1] == 1.0 and lagged.mean[4] == pytest.approx(4.0)


def _history(days: int = 80, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rmssd = np.exp(rng.normal(4.1, 0.12, days))
    rhr = rng.normal(50, 2, days)
    return rmssd, rhr


def test_series_matches_direct_computation() -> None:
    rmssd, _ = _history()
    rmssd[10:20] = np.nan
    s = hrv_series(rmssd)
    i = 79
    ln = np.log(rmssd)
    week = ln[i - 6 : i + 1]
    base = ln[i - 60 : i]
    base = base[np.isfinite(base)]
    st = hrv_status_at(s, i)
    assert st is not None
    assert st.mean7 == pytest.approx(week.mean(), rel=1e-12)
    assert st.baseline_mean == pytest.approx(base.mean(), rel=1e-12)
    assert st.baseline_sd == pytest.approx(base.std(ddof=1), rel=1e-9)
    assert st.valid_days == 7


def test_no_baseline_before_14_days() -> None:
    rmssd, _ = _history(10)
    st = hrv_status_at(hrv_series(rmssd), 9)
    assert st is not None and st.status is None and st.baseline_mean is None


def test_rhr_status() -> None:
    rhr = np.r_[np.tile([48.0, 50.0, 52.0], 20), np.full(7, 56.0)]
    trend, base = rhr_series(rhr)
    st = rhr_status_at(trend, base, rhr.size - 1)
    assert st is not None
    # baseline = previous 60 days: 53 days of 48/50/52 and the first 6 days at 56
    prev = rhr[-61:-1]
    assert st.baseline_mean == pytest.approx(prev.mean())
    assert st.z == pytest.approx((56 - prev.mean()) / prev.std(ddof=1))
    assert st.flag
    assert rhr_status_at(*rhr_series(np.full(5, 50.0)), 4) is None


def test_scoring_convention() -> None:
    hrv = hrv_status(WEEK, 4.10, 0.12)
    r = score_readiness(hrv, None)
    beyond = (4.04 - 3.974457) / 0.12
    assert r.score == pytest.approx(round(100 - (30 + 20 * beyond), 1))
    assert r.band == "amber" and r.confidence == "high" and r.hrv_flag
    assert r.reasons == ("HRV 12% below your 60-day baseline",)
    assert set(r.missing) == {"resting_hr", "sleep", "soreness", "stress"}

    rhr = RhrStatus(rhr7=56.0, baseline_mean=50.0, baseline_sd=2.0, z=3.0, delta_bpm=6.0, flag=True)
    r = score_readiness(hrv, rhr, sleep_h=5.2, soreness=5, stress=4)
    assert "Resting HR 6 bpm above normal" in r.reasons
    assert "Short sleep: 5.2 h" in r.reasons
    assert "High muscle soreness: 5/5" in r.reasons and "High stress: 4/5" in r.reasons
    assert r.score == 0.0 and r.band == "red"
    assert r.rhr_flag and r.sleep_flag and r.soreness_flag and r.stress_flag


def test_secondary_inputs_alone() -> None:
    rhr = RhrStatus(56.0, 50.0, 4.0, 1.5, 6.0, True)
    r = score_readiness(None, rhr, sleep_h=7.5, soreness=2, stress=1)
    assert r.score == pytest.approx(80.0) and r.band == "green" and r.confidence == "medium"
    assert r.reasons == ("Resting HR 6 bpm above normal",)
    assert score_readiness(None, None, sleep_h=5.0).score == pytest.approx(80.0)


def test_in_band_hrv_is_green_and_says_so() -> None:
    r = score_readiness(classify_hrv(4.1, 7, 0.1, 4.1, 0.12), None)
    assert r.score == 100.0 and r.band == "green"
    assert r.reasons == ("HRV within your normal range",)


def test_missing_everything_never_crashes() -> None:
    r = assess_readiness(None, None)
    assert r.confidence == "low" and r.reasons == () and 0 <= r.score <= 100
    r = assess_readiness([], [np.nan] * 3, sleep_h=float("nan"), soreness=9, stress=-1)
    assert r.confidence == "low" and set(r.missing) == {"hrv", "resting_hr", "sleep", "soreness", "stress"}
    json.dumps(r.to_dict(), allow_nan=False)


def test_assess_readiness_on_history() -> None:
    rmssd, rhr = _history()
    rmssd[-7:] = np.exp(3.7)  # a clear drop this week
    r = assess_readiness(rmssd, rhr, sleep_h=8)
    assert r.hrv is not None and r.hrv.status == "below" and r.band in ("amber", "red")
    assert r.reasons[0].startswith("HRV ") and "below your 60-day baseline" in r.reasons[0]


def test_readiness_series_matches_single_day() -> None:
    rmssd, rhr = _history()
    sleep = np.full(80, 7.0)
    sleep[-1] = 5.0
    rows = readiness_series(80, rmssd_ms=rmssd, rhr_bpm=rhr, sleep_h=sleep)
    single = assess_readiness(rmssd, rhr, sleep_h=5.0)
    assert rows[-1] == single
    assert rows[0].confidence == "low"
    with pytest.raises(ValueError):
        readiness_series(10, rmssd_ms=rmssd)

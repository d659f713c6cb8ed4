"""The daily-history recompute that ties PMC, ACWR, monotony and readiness together."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from trainer.analysis.acwr import acwr_coupled
from trainer.analysis.daily import acwr_norm, daily_history, daily_series
from trainer.analysis.physiology import AnalysisSettings, TsbTiming
from trainer.analysis.pmc import compute_pmc

D0 = dt.date(2024, 1, 1)


def test_rows_line_up_with_the_component_functions() -> None:
    load = np.tile([0.0, 60, 80, 0, 100, 50, 150], 6)
    rows = daily_history(D0, load, settings=AnalysisSettings(tsb_timing=TsbTiming.SAME_DAY))
    assert len(rows) == 42 and rows[0].date == D0 and rows[-1].date == D0 + dt.timedelta(days=41)
    last = rows[-1]
    assert last.ctl == pytest.approx(40.7059, rel=1e-4)
    assert last.tsb == pytest.approx(-31.3582, rel=1e-4)
    assert last.acwr_coupled == pytest.approx(acwr_coupled(load)[-1])
    assert rows[26].acwr_coupled is None and rows[27].acwr_coupled is not None
    assert rows[5].monotony is None and rows[6].monotony is not None
    assert last.readiness_confidence == "low"
    json.dumps([r.to_dict() for r in rows], allow_nan=False)


def test_pmc_seed_passes_through() -> None:
    load = np.full(10, 50.0)
    full = compute_pmc(np.r_[np.full(5, 80.0), load], D0)
    rows = daily_history(D0 + dt.timedelta(days=5), load, pmc_seed=full.state_at(4))
    assert [r.ctl for r in rows] == pytest.approx(full.ctl[5:].tolist(), rel=1e-12)


def test_readiness_columns() -> None:
    rng = np.random.default_rng(3)
    n = 90
    rmssd = np.exp(rng.normal(4.1, 0.1, n))
    rmssd[-7:] = np.exp(3.6)
    rows = daily_history(D0, np.full(n, 40.0), rmssd_ms=rmssd, sleep_h=np.full(n, 7.5))
    assert rows[-1].readiness_band in ("amber", "red")
    assert rows[-1].readiness_confidence == "high"
    assert any("below your 60-day baseline" in r for r in rows[-1].readiness_reasons)


def test_acwr_norm() -> None:
    assert acwr_norm(np.r_[np.full(27, np.nan), np.full(20, 1.0)]) is None
    series = np.r_[np.full(27, np.nan), np.linspace(0.8, 1.2, 90)]
    assert acwr_norm(series) == pytest.approx(1.0)


def _wellness(n: int, seed: int) -> dict[str, np.ndarray]:
    """Readings on most days, gaps, and a few values the formulas must reject."""
    rng = np.random.default_rng(seed)
    series = {
        "rmssd_ms": np.exp(rng.normal(4.1, 0.15, n)),
        "rhr_bpm": rng.normal(50, 3, n),
        "sleep_h": rng.normal(7, 1.2, n),
        "soreness": rng.integers(0, 7, n).astype(float),
        "stress": np.full(n, np.nan),
    }
    for values in series.values():
        values[rng.random(n) < 0.3] = np.nan
    series["rhr_bpm"][::17] = 0.0
    return series


@pytest.mark.parametrize("seed", range(4))
def test_series_from_a_later_day_equals_the_tail_of_the_whole(seed: int) -> None:
    """daily_series(first=k) skips the per-day work for days 0..k-1 (a recompute's look-back
    window), so its values must equal the whole history's from day k on, exactly."""
    rng = np.random.default_rng(seed)
    n = 120
    load = np.where(rng.random(n) < 0.7, rng.gamma(4.0, 20.0, n), 0.0)
    wellness = _wellness(n, seed) if seed % 2 else {}
    whole = daily_series(D0, load, **wellness)
    rows = daily_history(D0, load, **wellness)
    for k in (0, 1, 27, 61, 119, 120):
        part = daily_series(D0, load, first=k, **wellness)
        assert part.start == D0 + dt.timedelta(days=k)
        assert repr(part.readiness) == repr(whole.readiness[k:])
        for name in ("load", "ctl", "atl", "tsb", "ramp", "acwr_ewma", "acwr_acute", "acwr_chronic", "monotony"):
            assert getattr(part, name) == getattr(whole, name)[k:], name
    assert [r.ctl for r in rows] == whole.ctl and [r.readiness_score for r in rows] == [
        r.score for r in whole.readiness
    ]


@pytest.mark.parametrize("n", range(1, 9))
def test_histories_shorter_than_a_week(n: int) -> None:
    """A new user's first days: every metric that needs a full window is undefined, none fails."""
    rows = daily_history(D0, np.full(n, 50.0), **_wellness(n, n))
    assert len(rows) == n
    assert all(r.acwr_coupled is None and r.acwr_uncoupled is None and r.acwr_ewma is None for r in rows)
    assert [r.monotony is None for r in rows] == [i < 6 for i in range(n)]

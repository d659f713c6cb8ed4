"""compute_rows and changed_rows without a database: what the recompute writes and what counts as a change."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from trainer.analysis.pmc import PmcState
from trainer.engine.inputs import DailyInputs
from trainer.engine.recompute import compute_rows
from trainer.engine.state_store import COLUMNS, changed_rows
from trainer.profile import UserSettings

START = dt.date(2024, 1, 1)


def _inputs(n: int, seed: int, wellness: bool) -> DailyInputs:
    rng = np.random.default_rng(seed)
    nan = np.full(n, np.nan)
    loads = np.where(rng.random(n) < 0.7, rng.gamma(4.0, 20.0, n), 0.0)
    if not wellness:
        return DailyInputs(START, loads, nan, nan, nan, nan, nan)
    rmssd = np.exp(rng.normal(4.1, 0.15, n))
    rmssd[rng.random(n) < 0.3] = np.nan
    return DailyInputs(START, loads, rmssd, rng.normal(50, 3, n), rng.normal(7, 1, n), nan, nan)


@pytest.mark.parametrize("wellness", [False, True])
def test_rows_from_a_later_day_equal_the_tail_of_all_rows(wellness: bool) -> None:
    inputs = _inputs(150, 1, wellness)
    seed = PmcState(40.0, 55.0, (38.0, 39.0, 40.0))
    whole = compute_rows(inputs, pmc_seed=seed, acwr_seed=(30.0, 35.0), settings=UserSettings())
    assert [list(r) for r in whole[:1]] == [["day", *COLUMNS]]
    assert whole[0]["day"] == START.isoformat() and whole[-1]["day"] == (START + dt.timedelta(days=149)).isoformat()
    for k in (1, 67, 149, 150):
        part = compute_rows(inputs, pmc_seed=seed, acwr_seed=(30.0, 35.0), settings=UserSettings(), first=k)
        assert repr(part) == repr(whole[k:])


def test_changed_rows_ignores_last_bit_differences_only() -> None:
    rows = compute_rows(_inputs(40, 2, True), pmc_seed=None, acwr_seed="zero", settings=UserSettings())
    stored = {r["day"]: {**r} for r in rows}
    assert changed_rows(rows, stored) == []
    day = [r["day"] for r in rows]
    stored[day[1]]["ctl"] *= 1 + 1e-13  # last bits: not a change
    stored[day[2]]["atl"] += 5e-10  # within the absolute tolerance
    stored[day[3]]["readiness_reasons"] = tuple(stored[day[3]]["readiness_reasons"])  # JSON list or tuple
    stored[day[4]]["ctl"] += 1e-6
    stored[day[5]]["acwr"] = 1.0 if stored[day[5]]["acwr"] is None else None
    stored[day[6]]["readiness_band"] = "purple"
    stored[day[7]]["readiness_reasons"] = ["something else"]
    del stored[day[8]]
    assert [r["day"] for r in changed_rows(rows, stored)] == day[4:9]

"""Acute:chronic workload ratio, Foster monotony and strain.

ACWR is a soft flag only (Impellizzeri et al. 2020; Lolli et al. 2019): it is never used
as a hard rule, and it is left undefined (NaN here, None in JSON) when chronic load is 0
or there are fewer than 28 days of history.  Series functions return float arrays with
NaN for "undefined" because that keeps them vectorised; `to_optional` converts for JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from trainer.analysis.physiology import MonotonySd
from trainer.analysis.pmc import ewma

__all__ = [
    "MIN_HISTORY_DAYS",
    "MONOTONY_CRITICAL",
    "MONOTONY_MAX",
    "MONOTONY_WARNING",
    "AcwrEwma",
    "EwmaSeed",
    "acwr_coupled",
    "acwr_ewma",
    "acwr_uncoupled",
    "monotony",
    "monotony_strain",
    "rolling_mean",
    "strain",
    "to_optional",
]

FloatArray = npt.NDArray[np.float64]
EwmaSeed = Literal["first", "zero"] | tuple[float, float]

MIN_HISTORY_DAYS = 28
MONOTONY_MAX = 10.0
MONOTONY_WARNING = 1.5
MONOTONY_CRITICAL = 2.0


def _loads(load: FloatArray | Sequence[float]) -> FloatArray:
    x = np.asarray(load, dtype=np.float64)
    return np.where(np.isfinite(x), x, 0.0)


def rolling_mean(load: FloatArray | Sequence[float], days: int) -> FloatArray:
    """Mean of the `days` days ending on each day; NaN until the window is full.

    Sliding windows (not cumulative-sum differences) so identical weeks give identical means.
    """
    x = _loads(load)
    out = np.full(x.size, np.nan)
    if x.size >= days:
        out[days - 1 :] = sliding_window_view(x, days).mean(axis=1)
    return out


def _ratio(acute: FloatArray, chronic: FloatArray, prior_days: int, min_history: int) -> FloatArray:
    out = np.full(acute.size, np.nan)
    enough = np.arange(acute.size) >= (min_history - 1 - prior_days)
    ok = enough & np.isfinite(acute) & np.isfinite(chronic) & (chronic > 0)
    out[ok] = acute[ok] / chronic[ok]
    return out


def acwr_coupled(load: FloatArray | Sequence[float], acute: int = 7, chronic: int = 28) -> FloatArray:
    """mean(last `acute` days) / mean(last `chronic` days, which include the acute ones)."""
    x = _loads(load)
    return _ratio(rolling_mean(x, acute), rolling_mean(x, chronic), 0, max(chronic, MIN_HISTORY_DAYS))


def acwr_uncoupled(load: FloatArray | Sequence[float], acute: int = 7, chronic: int = 28) -> FloatArray:
    """mean(days t-6..t) / mean(days t-27..t-7): the chronic window excludes the acute one."""
    x = _loads(load)
    a = rolling_mean(x, acute)
    c = np.full(x.size, np.nan)
    # max(): with fewer than `acute` days the slice end would count from the back (5 days gave a
    # 3-value chronic series for no slot and a broadcast error, failing every short history).
    c[acute:] = rolling_mean(x, chronic - acute)[: max(x.size - acute, 0)]
    return _ratio(a, c, 0, max(chronic, MIN_HISTORY_DAYS))


@dataclass(frozen=True, slots=True)
class AcwrEwma:
    ratio: FloatArray
    acute: FloatArray
    chronic: FloatArray


def acwr_ewma(
    load: FloatArray | Sequence[float],
    *,
    seed: EwmaSeed,
    acute: int = 7,
    chronic: int = 28,
    prior_days: int = 0,
) -> AcwrEwma:
    """Williams et al. 2017 EWMA ratio with lambda = 2/(N+1).

    The seed is not standardised, so it is a required argument: "first" (both averages
    start at day 1's load), "zero", or an explicit (acute, chronic) state from the day
    before - the last form resumes a saved computation exactly.  `prior_days` counts
    history before this slice for the 28-day rule.
    """
    x = _loads(load)
    if isinstance(seed, tuple):
        sa, sc = float(seed[0]), float(seed[1])
    elif seed == "first":
        sa = sc = float(x[0]) if x.size else 0.0
    elif seed == "zero":
        sa = sc = 0.0
    else:
        raise ValueError(f"unknown seed {seed!r}")
    ea = ewma(x, 2.0 / (acute + 1.0), sa)
    ec = ewma(x, 2.0 / (chronic + 1.0), sc)
    return AcwrEwma(_ratio(ea, ec, prior_days, MIN_HISTORY_DAYS), ea, ec)


def _ddof(sd: MonotonySd | str) -> int:
    return 0 if MonotonySd(sd) is MonotonySd.POPULATION else 1


def _monotony_from(mean: FloatArray, sd: FloatArray, total: FloatArray) -> FloatArray:
    """Foster mean/SD with Runalyze's guards: SD 0 -> 10, clamp [0, 10].

    App convention on top: a week with zero total load has monotony 0, not 10, so a full
    rest week never raises a "monotonous training" warning.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(sd > 0, mean / sd, MONOTONY_MAX)
    m = np.clip(m, 0.0, MONOTONY_MAX)
    return np.where(total > 0, m, 0.0)


def monotony_strain(
    load: FloatArray | Sequence[float], *, window: int = 7, sd: MonotonySd | str = MonotonySd.POPULATION
) -> tuple[FloatArray, FloatArray]:
    """Rolling monotony and strain (weekly sum x monotony); NaN until a full window exists."""
    x = _loads(load)
    mono = np.full(x.size, np.nan)
    stra = np.full(x.size, np.nan)
    if x.size >= window:
        w = sliding_window_view(x, window)
        total = w.sum(axis=1)
        m = _monotony_from(w.mean(axis=1), w.std(axis=1, ddof=_ddof(sd)), total)
        mono[window - 1 :] = m
        stra[window - 1 :] = total * m
    return mono, stra


def monotony(week: Sequence[float] | FloatArray, sd: MonotonySd | str = MonotonySd.POPULATION) -> float:
    """Monotony of one window of daily loads (missing days must be passed as 0)."""
    x = _loads(week)
    if x.size < 2:
        raise ValueError("need at least 2 days")
    m = _monotony_from(np.array([x.mean()]), np.array([x.std(ddof=_ddof(sd))]), np.array([x.sum()]))
    return float(m[0])


def strain(week: Sequence[float] | FloatArray, sd: MonotonySd | str = MonotonySd.POPULATION) -> float:
    """Foster strain: weekly load x monotony."""
    return float(_loads(week).sum()) * monotony(week, sd)


def to_optional(values: FloatArray) -> list[float | None]:
    """NaN/inf -> None so a series can go straight to JSON."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]

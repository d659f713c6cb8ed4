"""Performance Management Chart: CTL (fitness), ATL (fatigue), TSB (form), ramp rate.

Series are numpy arrays indexed by consecutive calendar days from `start`.  The EWMA is a
short loop over days on Python floats: ~1,100 days take well under a millisecond, and a
loop keeps the recurrence bit-identical whether computed in one go or resumed from a
saved state (a closed form over powers of (1-k) is not, and loses precision over years).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trainer.analysis.physiology import DEFAULT_SETTINGS, AnalysisSettings, TsbTiming, ewma_k

__all__ = [
    "RAMP_DAYS",
    "PmcSeries",
    "PmcState",
    "compute_pmc",
    "daily_load_series",
    "ewma",
    "rest_days_to_fresh",
]

FloatArray = npt.NDArray[np.float64]
RAMP_DAYS = 7


def _as_date(d: dt.date) -> dt.date:
    """datetime is a date subclass; keep only the calendar day the caller localised."""
    return d.date() if isinstance(d, dt.datetime) else d


def daily_load_series(
    items: Iterable[tuple[dt.date, float]],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[dt.date, FloatArray]:
    """Sum loads per calendar day into a dense series (rest days 0).

    Dates must already be the athlete's local calendar days (a datetime is truncated to its
    own date, so localise before calling).  Items outside [start, end] are ignored.
    Returns (first day, loads).  With no items, `start` is required.
    """
    pairs = [(_as_date(d), float(v)) for d, v in items]
    if start is None:
        if not pairs:
            raise ValueError("no items: pass start")
        start = min(d for d, _ in pairs)
    if end is None:
        end = max((d for d, _ in pairs), default=start - dt.timedelta(days=1))
    start, end = _as_date(start), _as_date(end)
    n = max((end - start).days + 1, 0)
    out = np.zeros(n, dtype=np.float64)
    if n == 0 or not pairs:
        return start, out
    idx = np.fromiter(((d - start).days for d, _ in pairs), dtype=np.int64, count=len(pairs))
    val = np.fromiter((v for _, v in pairs), dtype=np.float64, count=len(pairs))
    ok = (idx >= 0) & (idx < n) & np.isfinite(val)
    np.add.at(out, idx[ok], val[ok])
    return start, out


def ewma(values: FloatArray | Sequence[float], k: float, seed: float = 0.0) -> FloatArray:
    """y_t = y_{t-1} + k*(x_t - y_{t-1}), y_{-1} = seed.

    The values are collected in a list and converted once: storing each into the array costs a
    numpy scalar assignment per day, several times the arithmetic itself.
    """
    y = float(seed)
    keep = 1.0 - k
    out = []
    append = out.append
    for x in np.asarray(values, dtype=np.float64).tolist():
        y = keep * y + k * x
        append(y)
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PmcState:
    """State at the end of one day, enough to resume the computation exactly.

    ctl_history holds the last RAMP_DAYS CTL values, oldest first, for the ramp rate; a
    shorter history is padded with `ctl` (i.e. CTL assumed flat before the seed).
    """

    ctl: float = 0.0
    atl: float = 0.0
    ctl_history: tuple[float, ...] = ()

    def padded_history(self) -> list[float]:
        h = list(self.ctl_history)[-RAMP_DAYS:]
        return [self.ctl] * (RAMP_DAYS - len(h)) + h


@dataclass(frozen=True, slots=True)
class PmcSeries:
    start: dt.date
    load: FloatArray
    ctl: FloatArray
    atl: FloatArray
    tsb: FloatArray
    ramp: FloatArray
    prior_ctl: tuple[float, ...] = ()  # the RAMP_DAYS CTL values before `start`

    def index_of(self, day: dt.date) -> int:
        i = (_as_date(day) - self.start).days
        if not 0 <= i < self.ctl.size:
            raise IndexError(f"{day} outside the series")
        return i

    def state_at(self, i: int) -> PmcState:
        """State after day i, to seed an incremental recompute from day i+1."""
        lo = max(0, i - RAMP_DAYS + 1)
        history = (*self.prior_ctl, *self.ctl[lo : i + 1].tolist())[-RAMP_DAYS:]
        return PmcState(float(self.ctl[i]), float(self.atl[i]), history)


def compute_pmc(
    daily_load: FloatArray | Sequence[float],
    start: dt.date,
    *,
    seed: PmcState | None = None,
    settings: AnalysisSettings = DEFAULT_SETTINGS,
) -> PmcSeries:
    """CTL/ATL by EWMA, TSB by the timing setting, ramp = CTL_t - CTL_{t-7}.

    `seed` is the state at the end of the day before `start` (zeros by default, like
    GoldenCheetah starting the day before the first ride).  With PREVIOUS_DAY timing,
    TSB_t = CTL_{t-1} - ATL_{t-1} (TrainingPeaks/GC): today's form before today's session.
    """
    load = np.asarray(daily_load, dtype=np.float64)
    load = np.where(np.isfinite(load), load, 0.0)
    seed = seed or PmcState()
    ctl = ewma(load, ewma_k(settings.ctl_days, settings.ewma), seed.ctl)
    atl = ewma(load, ewma_k(settings.atl_days, settings.ewma), seed.atl)
    if settings.tsb_timing is TsbTiming.SAME_DAY:
        tsb = ctl - atl
    else:
        tsb = np.empty_like(ctl)
        tsb[:1] = seed.ctl - seed.atl
        tsb[1:] = ctl[:-1] - atl[:-1]
    before = seed.padded_history()
    prior = np.concatenate([np.asarray(before), ctl])
    ramp = ctl - prior[: ctl.size]
    return PmcSeries(_as_date(start), load, ctl, atl, tsb, ramp, tuple(before))


def rest_days_to_fresh(ctl: float, atl: float, *, k_ctl: float, k_atl: float) -> float:
    """Runalyze: rest days until same-day TSB >= 0, ln(CTL/ATL) / ln((1-k_atl)/(1-k_ctl)).

    CTL is floored at 1 as in Runalyze so a beginner's estimate stays finite; 0 if already fresh.
    """
    ctl = max(ctl, 1.0)
    if atl <= ctl:
        return 0.0
    return math.log(ctl / atl) / math.log((1.0 - k_atl) / (1.0 - k_ctl))

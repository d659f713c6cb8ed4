"""Morning readiness from HRV (lnRMSSD), resting HR, sleep and self-reports.

HRV trend vs a personal SWC band is the evidence-based part (Plews 2012-2014, Vesterinen
2016, Javaloyes 2019).  Resting HR, sleep and self-reports are secondary inputs.  The
score itself is an app convention (see `score_readiness`), not a published formula.

Inputs are daily series ending *today*, one value per calendar day, NaN for no reading.
Missing data lowers the confidence and removes reasons; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "HrvSeries",
    "HrvStatus",
    "Readiness",
    "ReadinessSettings",
    "RhrStatus",
    "RollingStats",
    "assess_readiness",
    "classify_hrv",
    "hrv_series",
    "hrv_status",
    "hrv_status_at",
    "ln_rmssd",
    "readiness_series",
    "rhr_series",
    "rhr_status_at",
    "rolling_stats",
    "score_readiness",
]

FloatArray = npt.NDArray[np.float64]
Band = Literal["green", "amber", "red"]
Confidence = Literal["high", "medium", "low"]
HrvState = Literal["below", "within", "above"]
_S = TypeVar("_S")


@dataclass(frozen=True, slots=True)
class ReadinessSettings:
    """Thresholds; swc_sd 0.5 per HRV4Training/Plews (coaches may widen to 1.0)."""

    swc_sd: float = 0.5
    trend_days: int = 7
    trend_min_days: int = 3  # Plews 2014: >= 3 valid days per week
    baseline_days: int = 60  # HRV4Training "normal values"
    baseline_min_days: int = 14
    rhr_z_flag: float = 0.5  # mirrors the SWC rule (app convention)
    short_sleep_h: float = 6.0  # no published threshold: app convention
    high_self_report: int = 4  # on the 1-5 scale, 5 worst
    # Top of each self-report scale as the user entered it (the app stores soreness 1-10 and
    # stress 0-100); values are compared on the 1-5 scale but reasons quote the user's scale.
    soreness_max: float = 5.0
    stress_max: float = 5.0
    green_min: float = 75.0
    amber_min: float = 50.0


DEFAULT_READINESS = ReadinessSettings()


def ln_rmssd(rmssd_ms: npt.ArrayLike) -> FloatArray:
    """ln(rMSSD); non-positive or missing readings become NaN (missing), not errors."""
    x = np.asarray(rmssd_ms, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & (x > 0)
    out[ok] = np.log(x[ok])
    return out


# --------------------------------------------------------------------------- rolling stats


@dataclass(frozen=True, slots=True)
class RollingStats:
    mean: FloatArray
    sd: FloatArray  # ddof=1; NaN with fewer than 2 values
    count: npt.NDArray[np.int64]


def rolling_stats(x: FloatArray, window: int, *, lag: int = 0) -> RollingStats:
    """NaN-aware mean/SD/count of the `window` days ending `lag` days before each day."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n and not np.isfinite(x).any():
        # No readings at all (a user without a wellness source): the general path below would
        # also give count 0 and NaN mean/SD everywhere, only at the cost of a dozen array passes.
        return RollingStats(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64))
    padded = np.concatenate([np.full(window - 1 + lag, np.nan), x])[: n + window - 1]
    w = sliding_window_view(padded, window)
    valid = np.isfinite(w)
    count = valid.sum(axis=1)
    filled = np.where(valid, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / count
        dev = np.where(valid, w - mean[:, None], 0.0)
        sd = np.sqrt((dev * dev).sum(axis=1) / (count - 1))
    mean = np.where(count > 0, mean, np.nan)
    sd = np.where(count > 1, sd, np.nan)
    return RollingStats(mean, sd, count.astype(np.int64))


# --------------------------------------------------------------------------- HRV


@dataclass(frozen=True, slots=True)
class HrvSeries:
    ln: FloatArray
    trend: RollingStats
    baseline: RollingStats


def hrv_series(rmssd_ms: npt.ArrayLike, settings: ReadinessSettings = DEFAULT_READINESS) -> HrvSeries:
    """7-day trend of lnRMSSD and its baseline over the previous 60 days (excluding today)."""
    ln = ln_rmssd(rmssd_ms)
    return HrvSeries(
        ln,
        rolling_stats(ln, settings.trend_days),
        rolling_stats(ln, settings.baseline_days, lag=1),
    )


@dataclass(frozen=True, slots=True)
class HrvStatus:
    """Trend vs baseline on one day; baseline fields are None until there is a baseline."""

    mean7: float
    valid_days: int
    sd7: float | None
    cv_pct: float | None
    baseline_mean: float | None = None
    baseline_sd: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    z: float | None = None
    pct_vs_baseline: float | None = None
    status: HrvState | None = None


def _opt(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def classify_hrv(
    mean7: float,
    valid_days: int,
    sd7: float | None,
    baseline_mean: float | None,
    baseline_sd: float | None,
    settings: ReadinessSettings = DEFAULT_READINESS,
) -> HrvStatus:
    """Place a 7-day lnRMSSD mean against the SWC band baseline +/- swc_sd * SD."""
    cv = None if sd7 is None or mean7 <= 0 else 100.0 * sd7 / mean7
    if baseline_mean is None or baseline_sd is None or not baseline_sd > 0:
        return HrvStatus(mean7, valid_days, sd7, cv)
    low = baseline_mean - settings.swc_sd * baseline_sd
    high = baseline_mean + settings.swc_sd * baseline_sd
    status: HrvState = "below" if mean7 < low else "above" if mean7 > high else "within"
    return HrvStatus(
        mean7,
        valid_days,
        sd7,
        cv,
        baseline_mean,
        baseline_sd,
        low,
        high,
        (mean7 - baseline_mean) / baseline_sd,
        100.0 * math.expm1(mean7 - baseline_mean),  # ratio of geometric-mean rMSSD, in %
        status,
    )


def hrv_status(
    week_rmssd_ms: npt.ArrayLike,
    baseline_mean: float | None,
    baseline_sd: float | None,
    settings: ReadinessSettings = DEFAULT_READINESS,
) -> HrvStatus | None:
    """Status from this week's raw rMSSD readings and a known lnRMSSD baseline."""
    ln = ln_rmssd(week_rmssd_ms)
    ln = ln[np.isfinite(ln)]
    if ln.size < settings.trend_min_days:
        return None
    sd7 = float(ln.std(ddof=1)) if ln.size > 1 else None
    return classify_hrv(float(ln.mean()), int(ln.size), sd7, baseline_mean, baseline_sd, settings)


def hrv_status_at(series: HrvSeries, i: int, settings: ReadinessSettings = DEFAULT_READINESS) -> HrvStatus | None:
    """None when the week has fewer than trend_min_days readings: a trend needs >= 3 days."""
    trend, base = series.trend, series.baseline
    return _hrv_status(
        int(trend.count[i]),
        float(trend.mean[i]),
        float(trend.sd[i]),
        int(base.count[i]),
        float(base.mean[i]),
        float(base.sd[i]),
        settings,
    )


def _hrv_status(
    n7: int,
    mean7: float,
    sd7: float,
    n_base: int,
    base_mean: float,
    base_sd: float,
    settings: ReadinessSettings,
) -> HrvStatus | None:
    """hrv_status_at on one day's plain Python values (readiness_series feeds it whole lists)."""
    if n7 < settings.trend_min_days:
        return None
    enough_base = n_base >= settings.baseline_min_days
    return classify_hrv(
        mean7,
        n7,
        _opt(sd7),
        _opt(base_mean) if enough_base else None,
        _opt(base_sd) if enough_base else None,
        settings,
    )


# --------------------------------------------------------------------------- resting HR


@dataclass(frozen=True, slots=True)
class RhrStatus:
    rhr7: float
    baseline_mean: float
    baseline_sd: float
    z: float
    delta_bpm: float
    flag: bool


def rhr_series(
    rhr_bpm: npt.ArrayLike, settings: ReadinessSettings = DEFAULT_READINESS
) -> tuple[RollingStats, RollingStats]:
    """(7-day trend, previous-60-day baseline) of resting HR; implausible values dropped."""
    x = np.asarray(rhr_bpm, dtype=np.float64).copy()
    x[~((x >= 20) & (x <= 150))] = np.nan
    return rolling_stats(x, settings.trend_days), rolling_stats(x, settings.baseline_days, lag=1)


def rhr_status_at(
    trend: RollingStats, baseline: RollingStats, i: int, settings: ReadinessSettings = DEFAULT_READINESS
) -> RhrStatus | None:
    """z = (RHR7 - mean60) / SD60; flag above +0.5 SD (app convention mirroring SWC)."""
    return _rhr_status(
        int(trend.count[i]),
        float(trend.mean[i]),
        int(baseline.count[i]),
        float(baseline.mean[i]),
        float(baseline.sd[i]),
        settings,
    )


def _rhr_status(
    n7: int, rhr7: float, n_base: int, base: float, sd: float, settings: ReadinessSettings
) -> RhrStatus | None:
    """rhr_status_at on one day's plain Python values (readiness_series feeds it whole lists)."""
    if n7 < settings.trend_min_days or n_base < settings.baseline_min_days:
        return None
    if not sd > 0:
        return None
    z = (rhr7 - base) / sd
    return RhrStatus(rhr7, base, sd, z, rhr7 - base, z > settings.rhr_z_flag)


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class Readiness:
    score: float
    band: Band
    confidence: Confidence
    reasons: tuple[str, ...]
    missing: tuple[str, ...]
    hrv: HrvStatus | None = None
    rhr: RhrStatus | None = None
    hrv_flag: bool = False
    rhr_flag: bool = False
    sleep_flag: bool = False
    soreness_flag: bool = False
    stress_flag: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _self_report(value: float | None, scale_max: float = 5.0) -> tuple[float, float] | None:
    """(value as entered, its 1-5 equivalent), 5 worst; anything outside 1..scale_max is not reported.

    On the native 1-5 scale the value is rounded to a whole step, as before; other scales are
    mapped linearly (8/10 -> 4) so one threshold serves every scale.
    """
    if value is None or not math.isfinite(value) or not 1 <= value <= scale_max:
        return None
    if scale_max == 5.0:
        v = float(round(value))
        return v, v
    return float(value), value * 5.0 / scale_max


def _hrv_penalty(hrv: HrvStatus | None) -> tuple[float, str | None]:
    if hrv is None or hrv.status is None or hrv.band_low is None or not hrv.baseline_sd:
        return 0.0, None
    pct = hrv.pct_vs_baseline or 0.0
    if hrv.status == "within":
        return 0.0, "HRV within your normal range"
    if hrv.status == "below":
        beyond = (hrv.band_low - hrv.mean7) / hrv.baseline_sd
        return min(60.0, 30.0 + 20.0 * beyond), f"HRV {abs(pct):.0f}% below your 60-day baseline"
    return 30.0, f"HRV {pct:.0f}% above your 60-day baseline (outside your normal range)"


def score_readiness(
    hrv: HrvStatus | None,
    rhr: RhrStatus | None,
    *,
    sleep_h: float | None = None,
    soreness: float | None = None,
    stress: float | None = None,
    settings: ReadinessSettings = DEFAULT_READINESS,
) -> Readiness:
    """App convention: 100 minus penalties, clamped to [0, 100].

    - HRV 7-day mean below the SWC band: 30 + 20 per baseline SD beyond the band edge (max 60);
      above the band: 30.  Any out-of-band HRV therefore lands at most amber, as the
      HRV-guided-training studies change such days to low intensity.
    - Resting HR z > 0.5: 10 + 10 per SD above 0.5 (max 30).
    - Sleep < 6 h: 10 + 10 per hour short of 6 (max 20).
    - Soreness / stress (1-5): 4 -> 5, 5 -> 10 each; other scales are mapped to 1-5 first
      (settings.soreness_max / stress_max), so 8/10 -> 5 and 100/100 -> 10.
    Band: green >= 75, amber >= 50, red below.  Confidence: high with an HRV baseline,
    medium with only a resting-HR baseline or an HRV trend, low otherwise.
    """
    reasons: list[str] = []
    missing: list[str] = []
    penalty, text = _hrv_penalty(hrv)
    if text:
        reasons.append(text)
    if hrv is None or hrv.status is None:
        missing.append("hrv")

    rhr_flag = bool(rhr is not None and rhr.flag)
    if rhr is None:
        missing.append("resting_hr")
    elif rhr_flag:
        penalty += min(30.0, 10.0 + 10.0 * (rhr.z - settings.rhr_z_flag))
        reasons.append(f"Resting HR {rhr.delta_bpm:.0f} bpm above normal")

    sleep_flag = False
    if sleep_h is None or not math.isfinite(sleep_h) or sleep_h < 0:
        missing.append("sleep")
    elif sleep_h < settings.short_sleep_h:
        sleep_flag = True
        penalty += min(20.0, 10.0 + 10.0 * (settings.short_sleep_h - sleep_h))
        reasons.append(f"Short sleep: {sleep_h:.1f} h")

    flags = {}
    for name, label, value, top in (
        ("soreness", "muscle soreness", soreness, settings.soreness_max),
        ("stress", "stress", stress, settings.stress_max),
    ):
        reported = _self_report(value, top)
        flags[name] = reported is not None and reported[1] >= settings.high_self_report
        if reported is None:
            missing.append(name)
        elif flags[name]:
            entered, v5 = reported
            penalty += 5.0 * (v5 - settings.high_self_report + 1)
            reasons.append(f"High {label}: {entered:.0f}/{top:.0f}")

    score = round(min(100.0, max(0.0, 100.0 - penalty)), 1)
    band: Band = "green" if score >= settings.green_min else "amber" if score >= settings.amber_min else "red"
    if hrv is not None and hrv.status is not None:
        confidence: Confidence = "high"
    elif rhr is not None or hrv is not None:
        confidence = "medium"
    else:
        confidence = "low"
    return Readiness(
        score=score,
        band=band,
        confidence=confidence,
        reasons=tuple(reasons),
        missing=tuple(missing),
        hrv=hrv,
        rhr=rhr,
        hrv_flag=bool(hrv is not None and hrv.status in ("below", "above")),
        rhr_flag=rhr_flag,
        sleep_flag=sleep_flag,
        soreness_flag=flags["soreness"],
        stress_flag=flags["stress"],
    )


def assess_readiness(
    rmssd_ms: npt.ArrayLike | None,
    rhr_bpm: npt.ArrayLike | None,
    *,
    sleep_h: float | None = None,
    soreness: float | None = None,
    stress: float | None = None,
    settings: ReadinessSettings = DEFAULT_READINESS,
) -> Readiness:
    """Readiness for the last day of the given histories (each ending today)."""
    hrv = rhr = None
    if rmssd_ms is not None and np.size(rmssd_ms) > 0:
        s = hrv_series(rmssd_ms, settings)
        hrv = hrv_status_at(s, s.ln.size - 1, settings)
    if rhr_bpm is not None and np.size(rhr_bpm) > 0:
        t, b = rhr_series(rhr_bpm, settings)
        rhr = rhr_status_at(t, b, t.mean.size - 1, settings)
    return score_readiness(hrv, rhr, sleep_h=sleep_h, soreness=soreness, stress=stress, settings=settings)


def _statuses(
    status: Callable[..., _S | None],
    settings: ReadinessSettings,
    first: int,
    columns: tuple[npt.NDArray[Any], ...],
) -> list[_S | None]:
    """`status` per day from `first` on, over the columns' plain values; the first column is the
    7-day reading count, so a history without any trend (no readings) needs no per-day work."""
    count7 = columns[0][first:]
    if not count7.size or int(count7.max()) < settings.trend_min_days:
        return [None] * count7.size
    return [status(*day, settings) for day in zip(*(c[first:].tolist() for c in columns), strict=True)]


def readiness_series(
    n_days: int,
    *,
    rmssd_ms: npt.ArrayLike | None = None,
    rhr_bpm: npt.ArrayLike | None = None,
    sleep_h: npt.ArrayLike | None = None,
    soreness: npt.ArrayLike | None = None,
    stress: npt.ArrayLike | None = None,
    settings: ReadinessSettings = DEFAULT_READINESS,
    first: int = 0,
) -> list[Readiness]:
    """Readiness for every day of a history from index `first` on (earlier days still feed the
    rolling baselines); rolling statistics computed once, vectorised.

    The per-day part runs on plain Python values (one `tolist` per series instead of numpy scalar
    indexing per day), and days with no reading of any kind share one Readiness, because
    score_readiness is a pure function of its inputs and the result is immutable: a user without
    a wellness source (activities only) costs one scoring per history, not one per day.
    """
    nan = np.full(n_days, np.nan)

    def fit(x: npt.ArrayLike | None) -> FloatArray:
        if x is None:
            return nan
        arr = np.asarray(x, dtype=np.float64)
        if arr.size != n_days:
            raise ValueError("every daily series must have n_days values")
        return arr

    def values(x: FloatArray) -> list[float | None]:
        return [v if math.isfinite(v) else None for v in x[first:].tolist()]

    inputs = [fit(x) for x in (rmssd_ms, rhr_bpm, sleep_h, soreness, stress)]
    if n_days and not any(np.isfinite(x).any() for x in inputs):
        # Not a single reading (an activities-only user): every day is the same blank day.
        return [score_readiness(None, None, settings=settings)] * max(n_days - first, 0)
    hs = hrv_series(inputs[0], settings)
    rt, rb = rhr_series(inputs[1], settings)
    sl, so, st = (values(x) for x in inputs[2:])
    hrv = _statuses(
        _hrv_status,
        settings,
        first,
        (hs.trend.count, hs.trend.mean, hs.trend.sd, hs.baseline.count, hs.baseline.mean, hs.baseline.sd),
    )
    rhr = _statuses(_rhr_status, settings, first, (rt.count, rt.mean, rb.count, rb.mean, rb.sd))
    blank: Readiness | None = None
    out: list[Readiness] = []
    for h, r, sleep, sore, stress_ in zip(hrv, rhr, sl, so, st, strict=True):
        if h is None and r is None and sleep is None and sore is None and stress_ is None:
            if blank is None:
                blank = score_readiness(None, None, settings=settings)
            out.append(blank)
        else:
            out.append(score_readiness(h, r, sleep_h=sleep, soreness=sore, stress=stress_, settings=settings))
    return out

"""Per-activity training load from heart rate (or session RPE when there is no HR).

All sample maths is vectorised numpy: a 4 h 1 Hz file is 14,400 samples and is analysed
on every upload and on every settings change, for every activity in a user's history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from trainer.analysis.physiology import (
    DEFAULT_SETTINGS,
    AnalysisSettings,
    Physiology,
    trimp_coefficients,
)
from trainer.analysis.zones import time_in_zones, zones_for

__all__ = [
    "DEFAULT_SRPE_SCALE",
    "EDWARDS_PERCENTS",
    "GC_ZONAL_LTHR_LOWER",
    "GC_ZONAL_WEIGHTS",
    "LTHR_ESTIMATE_HRR_FRACTION",
    "ActivityLoad",
    "CleanHr",
    "aerobic_decoupling",
    "analyze_activity",
    "clean_hr",
    "edwards_from_hr",
    "edwards_trimp",
    "fit_srpe_scale",
    "gc_zonal_points_from_hr",
    "hr_tss",
    "hr_tss_if2",
    "hrr_fraction",
    "lucia_from_hr",
    "lucia_trimp",
    "nominal_interval",
    "session_rpe",
    "trimp_average_hr",
    "trimp_reference",
    "trimp_samples",
    "zone_points",
]

FloatArray = npt.NDArray[np.float64]
LoadSource = Literal["hr", "srpe", "none"]

# Edwards: %HRmax lower edges of zones 1..5, weights 1..5; below 50 % counts 0.
EDWARDS_PERCENTS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
# GoldenCheetah "TRIMP Zonal Points" defaults (HrZones.cpp): %LTHR lower bounds and weights.
GC_ZONAL_LTHR_LOWER: tuple[float, ...] = (0.0, 0.68, 0.83, 0.94, 1.05)
GC_ZONAL_WEIGHTS: tuple[float, ...] = (0.9, 1.1, 1.2, 2.0, 5.0)
# App convention: with no LTHR on file, assume LTHR at 85 % of HR reserve.
LTHR_ESTIMATE_HRR_FRACTION = 0.85
# App convention: 1 h at RPE 7 ("very hard", ~threshold) = 100, the hrTSS of 1 h at LTHR.
DEFAULT_SRPE_SCALE = 100.0 / (7.0 * 60.0)
# Speed below this (m/s) is "stopped" and excluded from speed/HR decoupling.
_MOVING_SPEED = 0.5


# --------------------------------------------------------------------------- cleaning


@dataclass(frozen=True, slots=True)
class CleanHr:
    """Cleaned HR samples with the seconds each one stands for.

    `index` maps each kept sample back to the caller's arrays so speed/power can be aligned.
    """

    index: npt.NDArray[np.intp]
    hr: FloatArray
    dt_s: FloatArray
    n_samples: int
    spikes_replaced: int
    nominal_s: float = 1.0
    elapsed_s: float = 0.0

    @property
    def valid_fraction(self) -> float:
        return self.hr.size / self.n_samples if self.n_samples else 0.0

    @property
    def seconds(self) -> float:
        return float(self.dt_s.sum())


def nominal_interval(time_s: FloatArray) -> float:
    """Median positive sampling interval of sorted times; robust to pauses and smart recording."""
    return _nominal_from_diffs(np.diff(time_s))


def _nominal_from_diffs(d: FloatArray) -> float:
    if d.size and d[0] > 0 and bool((d == d[0]).all()):
        return float(d[0])  # fixed-rate recording: skip the median
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def sample_dt(time_s: FloatArray, nominal_s: float, max_gap_s: float) -> FloatArray:
    """Seconds credited to each sample: the time until the next sample, the last sample one
    nominal interval.  An interval longer than max_gap_s (paused watch, lost strap) is not
    time spent at the last HR, so that sample is credited one nominal interval instead."""
    if time_s.size == 0:
        return np.empty(0, dtype=np.float64)
    dt = np.empty_like(time_s)
    dt[:-1] = np.diff(time_s)
    dt[-1] = nominal_s
    dt[dt > max_gap_s] = nominal_s
    np.maximum(dt, 0.0, out=dt)
    return dt


def _replace_spikes(hr: FloatArray, spike_bpm: float) -> tuple[FloatArray, int]:
    """A single sample jumping > spike_bpm away from both neighbours in the same direction is
    an optical/strap artefact: replace it by the median of its two neighbours (their mean)."""
    if hr.size < 3:
        return hr, 0
    mid = hr[1:-1]
    d_prev = mid - hr[:-2]
    d_next = mid - hr[2:]
    spike = ((d_prev > spike_bpm) & (d_next > spike_bpm)) | ((d_prev < -spike_bpm) & (d_next < -spike_bpm))
    n = int(spike.sum())
    if n == 0:
        return hr, 0
    out = hr.copy()
    out[1:-1][spike] = 0.5 * (hr[:-2][spike] + hr[2:][spike])
    return out, n


def clean_hr(time_s: npt.ArrayLike, hr: npt.ArrayLike, settings: AnalysisSettings = DEFAULT_SETTINGS) -> CleanHr:
    """Apply the documented HR cleaning rules (range filter, spike repair, gap cap)."""
    t = np.asarray(time_s, dtype=np.float64)
    h = np.asarray(hr, dtype=np.float64)
    if t.shape != h.shape or t.ndim != 1:
        raise ValueError("time_s and hr must be 1-D arrays of the same length")
    ok_t = np.isfinite(t)
    n_samples = int(ok_t.sum())
    index = np.arange(t.size)
    tt, hh = t, h
    if n_samples < t.size:
        index, tt, hh = index[ok_t], t[ok_t], h[ok_t]
    d = np.diff(tt)
    if d.size and bool((d < 0).any()):
        order = np.argsort(tt, kind="stable")
        index, tt, hh = index[order], tt[order], hh[order]
        d = np.diff(tt)
    nominal = _nominal_from_diffs(d)
    elapsed = float(tt[-1] - tt[0]) + nominal if tt.size else 0.0
    keep = (hh >= settings.hr_min_bpm) & (hh <= settings.hr_max_bpm)  # NaN compares False
    if not keep.all():
        index, tt, hh = index[keep], tt[keep], hh[keep]
    hv, n_spikes = _replace_spikes(hh, settings.spike_bpm)
    dt = sample_dt(tt, nominal, settings.max_gap_s)
    return CleanHr(index, hv, dt, n_samples, n_spikes, nominal, elapsed)


# --------------------------------------------------------------------------- TRIMP family


def hrr_fraction(hr: npt.ArrayLike, hr_rest: float, hr_max: float) -> FloatArray:
    """Fraction of HR reserve, clamped at 0 (below-rest HR earns no load)."""
    x = np.subtract(np.asarray(hr, dtype=np.float64), hr_rest)
    x *= 1.0 / (hr_max - hr_rest)
    return np.maximum(x, 0.0, out=x)


def trimp_samples(hr: FloatArray, dt_s: FloatArray, hr_rest: float, hr_max: float, a: float, b: float) -> float:
    """Banister TRIMP integrated per sample; higher than the average-HR form for variable
    sessions because the weighting is convex."""
    x = hrr_fraction(hr, hr_rest, hr_max)
    w = np.multiply(x, b)
    np.exp(w, out=w)
    w *= x
    return float(np.dot(dt_s, w)) * a / 60.0


def trimp_average_hr(avg_hr: float, minutes: float, hr_rest: float, hr_max: float, a: float, b: float) -> float:
    """GoldenCheetah-style TRIMP from one average HR; kept for comparison with GC numbers."""
    x = max((avg_hr - hr_rest) / (hr_max - hr_rest), 0.0)
    return minutes * x * a * math.exp(b * x)


def trimp_reference(lthr: float, hr_rest: float, hr_max: float, a: float, b: float) -> float:
    """TRIMP of 60 min at LTHR: the denominator that makes hrTSS 100 for that hour."""
    return trimp_average_hr(lthr, 60.0, hr_rest, hr_max, a, b)


def hr_tss(trimp: float, trimp_ref: float) -> float:
    """GoldenCheetah TRIMP(100): 100 * TRIMP / TRIMP_ref."""
    return 100.0 * trimp / trimp_ref if trimp_ref > 0 else 0.0


def hr_tss_if2(avg_hr: float, minutes: float, lthr: float) -> float:
    """The simple hours * (HRavg/LTHR)^2 * 100 form used by many apps."""
    return minutes / 60.0 * (avg_hr / lthr) ** 2 * 100.0


def zone_points(minutes: Sequence[float] | FloatArray, weights: Sequence[float] | FloatArray) -> float:
    """Sum of minutes-in-zone times zone weight (Edwards, Lucia, GC zonal points)."""
    m = np.asarray(minutes, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if m.shape != w.shape:
        raise ValueError("minutes and weights must have the same length")
    return float(np.dot(m, w))


def edwards_trimp(zone_minutes: Sequence[float] | FloatArray) -> float:
    """Edwards: minutes in the five %HRmax zones weighted 1..5."""
    return zone_points(zone_minutes, (1.0, 2.0, 3.0, 4.0, 5.0))


def edwards_from_hr(hr: FloatArray, dt_s: FloatArray, hr_max: float) -> float:
    """Edwards TRIMP straight from samples; time below 50 % HRmax counts 0."""
    secs = time_in_zones(hr, dt_s, np.asarray(EDWARDS_PERCENTS) * hr_max)
    return edwards_trimp(secs[1:] / 60.0)


def lucia_trimp(zone_minutes: Sequence[float] | FloatArray) -> float:
    """Lucia: minutes below VT1 x1, between VT1 and VT2 x2, above VT2 x3."""
    return zone_points(zone_minutes, (1.0, 2.0, 3.0))


def lucia_from_hr(hr: FloatArray, dt_s: FloatArray, vt1_bpm: float, vt2_bpm: float) -> float:
    """Lucia TRIMP from samples; HR equal to VT2 still counts as the middle zone."""
    if not vt1_bpm < vt2_bpm:
        raise ValueError("need vt1 < vt2")
    secs = time_in_zones(hr, dt_s, np.array([vt1_bpm, math.nextafter(vt2_bpm, math.inf)]))
    return lucia_trimp(secs / 60.0)


def gc_zonal_points_from_hr(hr: FloatArray, dt_s: FloatArray, lthr: float) -> float:
    """GoldenCheetah "TRIMP Zonal Points" with its default zones and weights."""
    secs = time_in_zones(hr, dt_s, np.asarray(GC_ZONAL_LTHR_LOWER[1:]) * lthr)
    return zone_points(secs / 60.0, GC_ZONAL_WEIGHTS)


# --------------------------------------------------------------------------- sRPE


def session_rpe(rpe: float, minutes: float) -> float:
    """Foster sRPE in arbitrary units: CR-10 RPE x minutes."""
    if rpe < 0 or minutes < 0:
        raise ValueError("rpe and minutes must be non-negative")
    return float(rpe) * float(minutes)


def fit_srpe_scale(hr_tss_values: npt.ArrayLike, srpe_values: npt.ArrayLike, *, min_sessions: int = 5) -> float | None:
    """Per-athlete k for load = k * sRPE: least squares through the origin on sessions that
    have both numbers.  None until there are enough sessions to trust it."""
    h = np.asarray(hr_tss_values, dtype=np.float64)
    s = np.asarray(srpe_values, dtype=np.float64)
    ok = np.isfinite(h) & np.isfinite(s) & (s > 0) & (h >= 0)
    if int(ok.sum()) < min_sessions:
        return None
    return float(np.dot(h[ok], s[ok]) / np.dot(s[ok], s[ok]))


# --------------------------------------------------------------------------- decoupling


def aerobic_decoupling(
    hr: FloatArray, dt_s: FloatArray, output: FloatArray, *, min_seconds: float = 600.0
) -> float | None:
    """Output:HR drift in %, first half vs second half of the (HR-valid) time.

    Positive means HR rose for the same output (cardiac drift).  Each half's efficiency is
    time-weighted mean output / time-weighted mean HR.  None when too short or undefined.
    """
    ok = np.isfinite(output) & np.isfinite(hr) & (dt_s > 0)
    hr, dt, out = hr[ok], dt_s[ok], output[ok]
    total = float(dt.sum())
    if total < min_seconds:
        return None
    start = np.cumsum(dt) - dt
    first = start < total / 2.0
    second = ~first
    if not first.any() or not second.any():
        return None
    ef1 = float(np.dot(out[first], dt[first]) / np.dot(hr[first], dt[first]))
    ef2 = float(np.dot(out[second], dt[second]) / np.dot(hr[second], dt[second]))
    if ef1 <= 0 or not math.isfinite(ef1) or not math.isfinite(ef2):
        return None
    return (ef1 - ef2) / ef1 * 100.0


# --------------------------------------------------------------------------- entry point


@dataclass(frozen=True, slots=True)
class ActivityLoad:
    """Everything the app stores for one activity.  Only finite floats or None: goes to JSON."""

    load: float
    load_source: LoadSource
    duration_s: float
    hr_seconds: float
    hr_valid_fraction: float
    hr_spikes_replaced: int
    avg_hr: float | None = None
    max_hr: float | None = None
    trimp: float | None = None
    trimp_avg: float | None = None
    edwards: float | None = None
    lucia: float | None = None
    hr_tss: float | None = None
    hr_tss_if2: float | None = None
    lthr_used: float | None = None
    lthr_estimated: bool = False
    srpe: float | None = None
    zone_names: list[str] = field(default_factory=list)
    zone_seconds: list[float] = field(default_factory=list)
    decoupling_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _duration(time_s: FloatArray | None, duration_s: float | None, clean: CleanHr | None) -> float:
    """Moving time from the caller if known (GC/Foster use moving time), else elapsed."""
    if duration_s is not None and math.isfinite(duration_s) and duration_s >= 0:
        return float(duration_s)
    if clean is not None:
        return clean.elapsed_s
    if time_s is None:
        return 0.0
    t = time_s[np.isfinite(time_s)]
    if t.size == 0:
        return 0.0
    return float(t.max() - t.min()) + nominal_interval(np.sort(t))


def analyze_activity(
    time_s: npt.ArrayLike | None,
    hr: npt.ArrayLike | None,
    physiology: Physiology,
    *,
    speed: npt.ArrayLike | None = None,
    power: npt.ArrayLike | None = None,
    rpe: float | None = None,
    duration_s: float | None = None,
    sport: str = "run",
    vt1_bpm: float | None = None,
    vt2_bpm: float | None = None,
    settings: AnalysisSettings = DEFAULT_SETTINGS,
) -> ActivityLoad:
    """Clean HR, compute every HR metric, and pick the single PMC load.

    Load rule: hrTSS when valid HR covers >= settings.min_hr_valid_fraction of the samples;
    else k * sRPE if an RPE was given (k = settings.srpe_scale, else DEFAULT_SRPE_SCALE);
    else hrTSS of whatever HR is valid (a lower bound beats nothing); else 0.
    """
    t = None if time_s is None else np.asarray(time_s, dtype=np.float64)
    clean = None
    if t is not None and hr is not None:
        clean = clean_hr(t, hr, settings)
    duration = _duration(t, duration_s, clean)
    rpe_ok = rpe is not None and math.isfinite(rpe) and 0.0 <= rpe <= 10.0  # CR-10; else "not given"
    srpe = session_rpe(rpe, duration / 60.0) if rpe_ok and rpe is not None else None
    table = zones_for(physiology, settings.zone_model, sport)
    names = table.names
    if clean is None or clean.hr.size == 0 or clean.seconds <= 0:
        return _without_hr(duration, srpe, names, clean, settings)

    a, b = trimp_coefficients(physiology.sex, settings.trimp_coefficients)
    rest, hmax = physiology.hr_rest, physiology.hr_max
    h, dt = clean.hr, clean.dt_s
    seconds = clean.seconds
    minutes = seconds / 60.0
    avg_hr = float(np.dot(h, dt) / seconds)
    trimp = trimp_samples(h, dt, rest, hmax, a, b)
    lthr = physiology.lthr
    estimated = lthr is None
    if lthr is None:
        lthr = rest + LTHR_ESTIMATE_HRR_FRACTION * (hmax - rest)
    tss = hr_tss(trimp, trimp_reference(lthr, rest, hmax, a, b))
    lucia = None
    if vt1_bpm is not None and vt2_bpm is not None:
        lucia = lucia_from_hr(h, dt, vt1_bpm, vt2_bpm)

    if clean.valid_fraction >= settings.min_hr_valid_fraction or srpe is None:
        load, source = tss, "hr"
    else:
        load, source = _srpe_load(srpe, settings)

    return ActivityLoad(
        load=_finite(load) or 0.0,
        load_source=source,
        duration_s=duration,
        hr_seconds=seconds,
        hr_valid_fraction=clean.valid_fraction,
        hr_spikes_replaced=clean.spikes_replaced,
        avg_hr=_finite(avg_hr),
        max_hr=_finite(float(h.max())),
        trimp=_finite(trimp),
        trimp_avg=_finite(trimp_average_hr(avg_hr, minutes, rest, hmax, a, b)),
        edwards=_finite(edwards_from_hr(h, dt, hmax)),
        lucia=_finite(lucia),
        hr_tss=_finite(tss),
        hr_tss_if2=_finite(hr_tss_if2(avg_hr, minutes, lthr)),
        lthr_used=lthr,
        lthr_estimated=estimated,
        srpe=_finite(srpe),
        zone_names=names,
        zone_seconds=[float(s) for s in time_in_zones(h, dt, table)],
        decoupling_pct=_finite(_decoupling(clean, speed, power)),
    )


def _srpe_load(srpe: float | None, settings: AnalysisSettings) -> tuple[float, LoadSource]:
    if srpe is None:
        return 0.0, "none"
    k = settings.srpe_scale if settings.srpe_scale is not None else DEFAULT_SRPE_SCALE
    return k * srpe, "srpe"


def _without_hr(
    duration: float, srpe: float | None, names: list[str], clean: CleanHr | None, settings: AnalysisSettings
) -> ActivityLoad:
    load, source = _srpe_load(srpe, settings)
    return ActivityLoad(
        load=_finite(load) or 0.0,
        load_source=source,
        duration_s=duration,
        hr_seconds=0.0,
        hr_valid_fraction=0.0,
        hr_spikes_replaced=0 if clean is None else clean.spikes_replaced,
        srpe=_finite(srpe),
        zone_names=names,
        zone_seconds=[0.0] * len(names),
    )


def _aligned(values: npt.ArrayLike, clean: CleanHr) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size <= (int(clean.index.max()) if clean.index.size else -1):
        raise ValueError("speed/power must be 1-D and as long as time_s")
    return arr[clean.index]


def _decoupling(clean: CleanHr, speed: npt.ArrayLike | None, power: npt.ArrayLike | None) -> float | None:
    """Power:HR when power exists (coasting zeros are real output), else speed:HR while moving."""
    if power is not None:
        out = _aligned(power, clean)
        out = np.where(out >= 0, out, np.nan)
    elif speed is not None:
        out = _aligned(speed, clean)
        out = np.where(out >= _MOVING_SPEED, out, np.nan)
    else:
        return None
    return aerobic_decoupling(clean.hr, clean.dt_s, out)

"""Benchmark the analysis hot paths.

1. One 4 h, 1 Hz activity (14,400 samples, noise, spikes, dropouts and a pause):
   the full `analyze_activity`, and HR cleaning + TRIMP + time-in-zones vectorised vs the
   same steps as a plain Python loop (results cross-checked).  Goals: < 5 ms, >= 20x.
2. A 3-year daily-history recompute for one user (PMC + ACWR + monotony + readiness,
   ~1,100 days).  Goal: < 200 ms.

Run: python bench/analysis.py
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from trainer.analysis.daily import daily_history
from trainer.analysis.load import analyze_activity, clean_hr, trimp_samples
from trainer.analysis.physiology import (
    DEFAULT_SETTINGS,
    AnalysisSettings,
    Physiology,
    Sex,
    trimp_coefficients,
)
from trainer.analysis.zones import karvonen_zones, time_in_zones

PHYS = Physiology(Sex.MALE, hr_rest=48, hr_max=188, lthr=168)


def synthetic_activity(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 h at 1 Hz: warm-up, drifting steady state, 6 intervals, noise, spikes, a pause."""
    rng = np.random.default_rng(seed)
    n = 4 * 3600
    t = np.arange(n, dtype=np.float64)
    t[7200:] += 300.0  # a 5-minute pause (watch auto-paused): a gap in the time axis
    base = 100 + 45 * (1 - np.exp(-np.arange(n) / 600.0)) + np.linspace(0, 8, n)  # warm-up + drift
    for k in range(6):  # 6 x 4 min hard
        s = 9000 + k * 480
        base[s : s + 240] += 25
    hr = base + rng.normal(0, 2.0, n)
    spikes = rng.choice(n, 40, replace=False)
    hr[spikes] += rng.choice([-70.0, 80.0], spikes.size)
    drop = rng.choice(n - 20, 10, replace=False)
    for d in drop:  # strap dropouts reading 0
        hr[d : d + 8] = 0.0
    speed = 3.0 + rng.normal(0, 0.15, n) - np.linspace(0, 0.2, n)
    speed[3000:3060] = 0.0  # traffic light
    return t, np.round(hr), speed


# --------------------------------------------------------------------------- plain loop


def loop_trimp_zones(
    time_s: list[float], hr: list[float], settings: AnalysisSettings = DEFAULT_SETTINGS
) -> tuple[float, list[float]]:
    """Reference implementation with Python loops: same cleaning, TRIMP and zones."""
    a, b = trimp_coefficients(PHYS.sex, settings.trimp_coefficients)
    rest, reserve = PHYS.hr_rest, PHYS.hr_max - PHYS.hr_rest
    diffs = sorted(time_s[i + 1] - time_s[i] for i in range(len(time_s) - 1) if time_s[i + 1] > time_s[i])
    m = len(diffs)
    nominal = diffs[m // 2] if m % 2 else 0.5 * (diffs[m // 2 - 1] + diffs[m // 2])
    kt, kh = [], []
    for ti, hi in zip(time_s, hr, strict=True):
        if hi == hi and settings.hr_min_bpm <= hi <= settings.hr_max_bpm:
            kt.append(ti)
            kh.append(hi)
    fixed = list(kh)
    for i in range(1, len(kh) - 1):
        dp, dn = kh[i] - kh[i - 1], kh[i] - kh[i + 1]
        if abs(dp) > settings.spike_bpm and abs(dn) > settings.spike_bpm and (dp > 0) == (dn > 0):
            fixed[i] = 0.5 * (kh[i - 1] + kh[i + 1])
    edges = karvonen_zones(PHYS.hr_rest, PHYS.hr_max).edges().tolist()
    zones = [0.0] * (len(edges) + 1)
    trimp = 0.0
    for i, h in enumerate(fixed):
        dt_s = kt[i + 1] - kt[i] if i + 1 < len(kt) else nominal
        if dt_s > settings.max_gap_s:
            dt_s = nominal
        x = max((h - rest) / reserve, 0.0)
        trimp += dt_s * x * math.exp(b * x)
        z = 0
        while z < len(edges) and h >= edges[z]:
            z += 1
        zones[z] += dt_s
    return trimp * a / 60.0, zones


def vector_trimp_zones(time_s: np.ndarray, hr: np.ndarray) -> tuple[float, np.ndarray]:
    a, b = trimp_coefficients(PHYS.sex, DEFAULT_SETTINGS.trimp_coefficients)
    c = clean_hr(time_s, hr)
    trimp = trimp_samples(c.hr, c.dt_s, PHYS.hr_rest, PHYS.hr_max, a, b)
    return trimp, time_in_zones(c.hr, c.dt_s, karvonen_zones(PHYS.hr_rest, PHYS.hr_max))


# --------------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches / imports
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(runs)


def synthetic_history(days: int = 1100, seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    week = np.array([0.0, 60, 80, 0, 100, 50, 150])
    load = np.tile(week, days // 7 + 1)[:days] * rng.uniform(0.7, 1.3, days)
    rmssd = np.exp(rng.normal(4.1, 0.12, days))
    rhr = rng.normal(50, 2.5, days)
    sleep = rng.normal(7.2, 0.8, days)
    soreness = rng.integers(1, 6, days).astype(float)
    stress = rng.integers(1, 6, days).astype(float)
    for arr in (rmssd, rhr, sleep, soreness, stress):
        arr[rng.random(days) < 0.25] = np.nan  # missed mornings
    return {"load": load, "rmssd": rmssd, "rhr": rhr, "sleep": sleep, "soreness": soreness, "stress": stress}


def main() -> int:
    t, hr, speed = synthetic_activity()
    t_list, hr_list = t.tolist(), hr.tolist()

    loop_trimp, loop_zones = loop_trimp_zones(t_list, hr_list)
    vec_trimp, vec_zones = vector_trimp_zones(t, hr)
    assert math.isclose(loop_trimp, vec_trimp, rel_tol=1e-9), (loop_trimp, vec_trimp)
    assert np.allclose(loop_zones, vec_zones), (loop_zones, vec_zones)

    full_ms = median_ms(lambda: analyze_activity(t, hr, PHYS, speed=speed), 200)
    vec_ms = median_ms(lambda: vector_trimp_zones(t, hr), 200)
    loop_ms = median_ms(lambda: loop_trimp_zones(t_list, hr_list), 15)
    res = analyze_activity(t, hr, PHYS, speed=speed)

    print(f"activity: {t.size:,} samples (4 h @ 1 Hz, noise, 40 spikes, 10 dropouts, 5-min pause)")
    print(
        f"  result: load {res.load:.1f} (hrTSS), TRIMP {res.trimp:.1f}, "
        f"valid HR {res.hr_valid_fraction:.1%}, {res.hr_spikes_replaced} spikes fixed, "
        f"decoupling {res.decoupling_pct:.2f} %"
    )
    print(f"  full analyze_activity (all metrics)      {full_ms:8.3f} ms   goal < 5 ms")
    print(f"  cleaning + TRIMP + zones, numpy          {vec_ms:8.3f} ms")
    print(f"  cleaning + TRIMP + zones, Python loop    {loop_ms:8.3f} ms")
    print(f"  speedup, same work (loop / numpy)        {loop_ms / vec_ms:8.1f} x   goal >= 20x")
    print(f"  loop vs the whole analyze_activity       {loop_ms / full_ms:8.1f} x")

    h = synthetic_history()
    n = h["load"].size

    def recompute() -> object:
        return daily_history(
            dt.date(2022, 1, 1),
            h["load"],
            rmssd_ms=h["rmssd"],
            rhr_bpm=h["rhr"],
            sleep_h=h["sleep"],
            soreness=h["soreness"],
            stress=h["stress"],
        )

    hist_ms = median_ms(recompute, 15)
    print(f"history: {n:,} days (PMC + ACWR x3 + monotony/strain + readiness)")
    print(f"  daily_history recompute                  {hist_ms:8.3f} ms   goal < 200 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

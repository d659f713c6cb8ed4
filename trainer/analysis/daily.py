"""One row of derived metrics per calendar day: the full recompute after a settings change
or a backfilled activity.  Combines pmc, acwr and readiness and converts NaN to None so
rows can be stored or sent as JSON directly.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.analysis.acwr import EwmaSeed, acwr_coupled, acwr_ewma, acwr_uncoupled, monotony_strain
from trainer.analysis.physiology import DEFAULT_SETTINGS, AnalysisSettings
from trainer.analysis.pmc import PmcState, compute_pmc
from trainer.analysis.readiness import DEFAULT_READINESS, Readiness, ReadinessSettings, readiness_series

__all__ = ["DailyMetrics", "DailySeries", "acwr_norm", "daily_history", "daily_series"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DailyMetrics:
    date: dt.date
    load: float
    ctl: float
    atl: float
    tsb: float
    ramp: float
    acwr_coupled: float | None
    acwr_uncoupled: float | None
    acwr_ewma: float | None
    monotony: float | None
    strain: float | None
    readiness_score: float
    readiness_band: str
    readiness_confidence: str
    readiness_reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date"] = self.date.isoformat()
        d["readiness_reasons"] = list(self.readiness_reasons)
        return d


def _opt(values: FloatArray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def acwr_norm(acwr: FloatArray | Sequence[float], *, window: int = 90, min_values: int = 28) -> float | None:
    """The athlete's usual ACWR: median of the defined values over the last `window` days.

    Used by the plan rules as "far above your norm"; None until enough values exist.
    """
    x = np.asarray(acwr, dtype=np.float64)[-window:]
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size >= min_values else None


@dataclass(frozen=True, slots=True)
class DailySeries:
    """The stored daily metrics as plain Python lists, one entry per day from `start` on.

    The form the recompute stores (trainer.engine.recompute builds its rows from it): columns
    rather than one object per day, so days that are only history for a recompute window cost no
    per-day Python work at all.
    """

    start: dt.date
    load: list[float]
    ctl: list[float]
    atl: list[float]
    tsb: list[float]
    ramp: list[float]
    acwr_ewma: list[float | None]
    acwr_acute: list[float]  # the EWMA states themselves, so a later run can resume them exactly
    acwr_chronic: list[float]
    monotony: list[float | None]
    strain: list[float | None]
    readiness: list[Readiness]


def daily_series(
    start: dt.date,
    loads: FloatArray | Sequence[float],
    *,
    rmssd_ms: npt.ArrayLike | None = None,
    rhr_bpm: npt.ArrayLike | None = None,
    sleep_h: npt.ArrayLike | None = None,
    soreness: npt.ArrayLike | None = None,
    stress: npt.ArrayLike | None = None,
    pmc_seed: PmcState | None = None,
    acwr_seed: EwmaSeed = "zero",
    settings: AnalysisSettings = DEFAULT_SETTINGS,
    readiness_settings: ReadinessSettings = DEFAULT_READINESS,
    first: int = 0,
) -> DailySeries:
    """The metrics of `daily_history` except the two rolling-mean ACWRs, for the days from index
    `first` on; every day before still feeds the EWMAs and the rolling windows."""
    load = np.asarray(loads, dtype=np.float64)
    pmc = compute_pmc(load, start, seed=pmc_seed, settings=settings)
    ewma = acwr_ewma(load, seed=acwr_seed)
    mono, strain = monotony_strain(load, sd=settings.monotony_sd)
    ready = readiness_series(
        load.size,
        rmssd_ms=rmssd_ms,
        rhr_bpm=rhr_bpm,
        sleep_h=sleep_h,
        soreness=soreness,
        stress=stress,
        settings=readiness_settings,
        first=first,
    )
    tail = slice(first, None)
    return DailySeries(
        start + dt.timedelta(days=first),
        pmc.load[tail].tolist(),
        pmc.ctl[tail].tolist(),
        pmc.atl[tail].tolist(),
        pmc.tsb[tail].tolist(),
        pmc.ramp[tail].tolist(),
        _opt(ewma.ratio[tail]),
        ewma.acute[tail].tolist(),
        ewma.chronic[tail].tolist(),
        _opt(mono[tail]),
        _opt(strain[tail]),
        ready,
    )


def daily_history(
    start: dt.date,
    loads: FloatArray | Sequence[float],
    *,
    rmssd_ms: npt.ArrayLike | None = None,
    rhr_bpm: npt.ArrayLike | None = None,
    sleep_h: npt.ArrayLike | None = None,
    soreness: npt.ArrayLike | None = None,
    stress: npt.ArrayLike | None = None,
    pmc_seed: PmcState | None = None,
    acwr_seed: EwmaSeed = "zero",
    settings: AnalysisSettings = DEFAULT_SETTINGS,
    readiness_settings: ReadinessSettings = DEFAULT_READINESS,
) -> list[DailyMetrics]:
    """All daily metrics from `start`; every input series has one value per day (NaN = none).

    ACWR-EWMA is seeded with zero by default, the same convention as the PMC start.
    """
    load = np.asarray(loads, dtype=np.float64)
    s = daily_series(
        start,
        load,
        rmssd_ms=rmssd_ms,
        rhr_bpm=rhr_bpm,
        sleep_h=sleep_h,
        soreness=soreness,
        stress=stress,
        pmc_seed=pmc_seed,
        acwr_seed=acwr_seed,
        settings=settings,
        readiness_settings=readiness_settings,
    )
    coupled = _opt(acwr_coupled(load))
    uncoupled = _opt(acwr_uncoupled(load))
    one = dt.timedelta(days=1)
    return [
        DailyMetrics(
            start + i * one,
            s.load[i],
            s.ctl[i],
            s.atl[i],
            s.tsb[i],
            s.ramp[i],
            coupled[i],
            uncoupled[i],
            s.acwr_ewma[i],
            s.monotony[i],
            s.strain[i],
            r.score,
            r.band,
            r.confidence,
            r.reasons,
        )
        for i, r in enumerate(s.readiness)
    ]

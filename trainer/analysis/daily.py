"""One row of derived metrics per calendar day: the full recompute after a settings change
or a backfilled activity.  Combines pmc, acwr and readiness and converts NaN to None so
rows can be stored or sent as JSON directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.analysis.acwr import EwmaSeed, acwr_coupled, acwr_ewma, acwr_uncoupled, monotony_strain
from trainer.analysis.physiology import DEFAULT_SETTINGS, AnalysisSettings
from trainer.analysis.pmc import PmcState, compute_pmc
from trainer.analysis.readiness import DEFAULT_READINESS, ReadinessSettings, readiness_series

__all__ = ["DailyMetrics", "acwr_norm", "daily_history"]

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
    return [v if np.isfinite(v) else None for v in values.tolist()]


def acwr_norm(acwr: FloatArray | Sequence[float], *, window: int = 90, min_values: int = 28) -> float | None:
    """The athlete's usual ACWR: median of the defined values over the last `window` days.

    Used by the plan rules as "far above your norm"; None until enough values exist.
    """
    x = np.asarray(acwr, dtype=np.float64)[-window:]
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size >= min_values else None


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
    n = load.size
    pmc = compute_pmc(load, start, seed=pmc_seed, settings=settings)
    coupled = _opt(acwr_coupled(load))
    uncoupled = _opt(acwr_uncoupled(load))
    ewma = _opt(acwr_ewma(load, seed=acwr_seed).ratio)
    mono, strain = monotony_strain(load, sd=settings.monotony_sd)
    mono_l, strain_l = _opt(mono), _opt(strain)
    ready = readiness_series(
        n,
        rmssd_ms=rmssd_ms,
        rhr_bpm=rhr_bpm,
        sleep_h=sleep_h,
        soreness=soreness,
        stress=stress,
        settings=readiness_settings,
    )
    cols = (pmc.load.tolist(), pmc.ctl.tolist(), pmc.atl.tolist(), pmc.tsb.tolist(), pmc.ramp.tolist())
    one = dt.timedelta(days=1)
    return [
        DailyMetrics(
            start + i * one,
            cols[0][i],
            cols[1][i],
            cols[2][i],
            cols[3][i],
            cols[4][i],
            coupled[i],
            uncoupled[i],
            ewma[i],
            mono_l[i],
            strain_l[i],
            r.score,
            r.band,
            r.confidence,
            r.reasons,
        )
        for i, r in enumerate(ready)
    ]

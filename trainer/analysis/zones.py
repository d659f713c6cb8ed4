"""Heart-rate zones, max-HR estimates and Daniels-Gilbert VDOT.

Zones are returned as bpm boundaries because the app displays bpm; classification uses
only each zone's lower edge, so the zones always tile the whole HR axis (the first zone is
open below, the last open above) and every valid sample lands in exactly one zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trainer.analysis.physiology import Physiology, ZoneModel, tanaka_hr_max

__all__ = [
    "FRIEL_BIKE",
    "FRIEL_RUN",
    "KARVONEN_PERCENTS",
    "HrZone",
    "ZoneTable",
    "daniels_percent_max",
    "daniels_vo2",
    "fox_hr_max",
    "friel_zones",
    "karvonen_target",
    "karvonen_zones",
    "tanaka_hr_max",
    "time_in_zones",
    "vdot",
    "zones_for",
]

FloatArray = npt.NDArray[np.float64]

# Karvonen zone edges in fraction of HR reserve: Z1 50-60 ... Z5 90-100.
KARVONEN_PERCENTS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# Friel %LTHR tables: (name, low %, high %, low is strict).  None = open end.
_FrielRow = tuple[str, float | None, float | None, bool]
FRIEL_RUN: tuple[_FrielRow, ...] = (
    ("Z1", None, 0.85, False),
    ("Z2", 0.85, 0.89, False),
    ("Z3", 0.90, 0.94, False),
    ("Z4", 0.95, 0.99, False),
    ("Z5a", 1.00, 1.02, False),
    ("Z5b", 1.03, 1.06, False),
    ("Z5c", 1.06, None, True),
)
FRIEL_BIKE: tuple[_FrielRow, ...] = (
    ("Z1", None, 0.81, False),
    ("Z2", 0.81, 0.89, False),
    ("Z3", 0.90, 0.93, False),
    ("Z4", 0.94, 0.99, False),
    ("Z5a", 1.00, 1.02, False),
    ("Z5b", 1.03, 1.06, False),
    ("Z5c", 1.06, None, True),
)


@dataclass(frozen=True, slots=True)
class HrZone:
    """One zone for display; `low_strict` marks '> low' (Friel Z5c '> 106 %')."""

    name: str
    low_bpm: float | None
    high_bpm: float | None
    low_strict: bool = False


@dataclass(frozen=True, slots=True)
class ZoneTable:
    zones: tuple[HrZone, ...]

    @property
    def names(self) -> list[str]:
        return [z.name for z in self.zones]

    def edges(self) -> FloatArray:
        """Classification edges (lower bound of zones 2..n); strict bounds nudged up one ulp."""
        out = []
        for z in self.zones[1:]:
            if z.low_bpm is None:
                raise ValueError(f"zone {z.name} needs a lower bound")
            out.append(math.nextafter(z.low_bpm, math.inf) if z.low_strict else z.low_bpm)
        return np.asarray(out, dtype=np.float64)


def karvonen_target(fraction: float, hr_rest: float, hr_max: float) -> float:
    """Karvonen: HRrest + p*(HRmax-HRrest)."""
    return hr_rest + fraction * (hr_max - hr_rest)


def karvonen_zones(hr_rest: float, hr_max: float, percents: tuple[float, ...] = KARVONEN_PERCENTS) -> ZoneTable:
    """Five %HRR zones; Z1 also collects time below 50 % so no valid sample is lost."""
    bpm = [karvonen_target(p, hr_rest, hr_max) for p in percents]
    zones = tuple(HrZone(f"Z{i + 1}", bpm[i], bpm[i + 1]) for i in range(len(bpm) - 1))
    return ZoneTable(zones)


def friel_zones(lthr: float, sport: str = "run") -> ZoneTable:
    """Friel %LTHR zones for run (default) or bike; other sports use the run table."""
    rows = FRIEL_BIKE if sport == "bike" else FRIEL_RUN
    return ZoneTable(
        tuple(
            HrZone(
                name,
                None if lo is None else lo * lthr,
                None if hi is None else hi * lthr,
                strict,
            )
            for name, lo, hi, strict in rows
        )
    )


def zones_for(physiology: Physiology, model: ZoneModel | str, sport: str = "run") -> ZoneTable:
    """Zone table for the chosen model; LTHR model without an LTHR falls back to Karvonen
    (documented) because activity analysis must never fail on missing settings."""
    if ZoneModel(model) is ZoneModel.LTHR and physiology.lthr is not None:
        return friel_zones(physiology.lthr, sport)
    return karvonen_zones(physiology.hr_rest, physiology.hr_max)


def time_in_zones(hr: FloatArray, dt_s: FloatArray, table: ZoneTable | FloatArray) -> FloatArray:
    """Seconds per zone for cleaned (finite) HR; `table` may be a ZoneTable or raw ascending
    classification edges (a sample equal to an edge belongs to the upper zone)."""
    edges = table.edges() if isinstance(table, ZoneTable) else np.asarray(table, dtype=np.float64)
    # Seconds at or above each edge, then differences: for the handful of zone edges this is
    # ~2x faster than searchsorted + weighted bincount on a 4 h file.
    above = np.empty(edges.size + 2)
    above[0] = dt_s.sum()
    for i, e in enumerate(edges.tolist()):
        above[i + 1] = dt_s[hr >= e].sum()
    above[-1] = 0.0
    return np.maximum(above[:-1] - above[1:], 0.0)


def fox_hr_max(age: float) -> float:
    """220 - age; kept for users who want to match older tools, Tanaka is the default."""
    return 220.0 - float(age)


def daniels_vo2(velocity_m_min: float) -> float:
    """Oxygen cost of running at v (m/min), Daniels-Gilbert (Runalyze's 0.182253)."""
    v = float(velocity_m_min)
    return -4.6 + 0.182253 * v + 0.000104 * v * v


def daniels_percent_max(minutes: float) -> float:
    """Fraction of VO2max sustainable for t minutes, Daniels-Gilbert."""
    t = float(minutes)
    return 0.8 + 0.1894393 * math.exp(-0.012778 * t) + 0.2989558 * math.exp(-0.1932605 * t)


def vdot(distance_m: float, time_s: float) -> float:
    """VDOT from a race result: VO2(v) / %max(t)."""
    if distance_m <= 0 or time_s <= 0:
        raise ValueError("distance and time must be positive")
    minutes = time_s / 60.0
    return daniels_vo2(distance_m / minutes) / daniels_percent_max(minutes)

"""What the daily recompute reads: daily training loads and daily wellness inputs, per local day.

Both are returned as dense arrays over a day range (one value per calendar day, 0 load on rest
days, NaN where nothing was recorded), the shape trainer.analysis.daily expects.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from trainer.analysis.acwr import MIN_HISTORY_DAYS
from trainer.analysis.pmc import daily_load_series
from trainer.db import Queries, Row
from trainer.engine.days import ONE_DAY, day_start_ms, local_day
from trainer.engine.physiology import READINESS_SETTINGS

__all__ = ["LOOKBACK_DAYS", "DailyInputs", "History", "history", "history_start", "read_inputs"]

FloatArray = npt.NDArray[np.float64]

# Which source's reading wins when several exist for one day: the athlete's own entry in the app
# first (they know best how they slept), then the most recently updated device reading.
_APP_SOURCE = "app"
# Inputs one day's values depend on reach back this far: the readiness baseline (the 60 days before
# the day), ACWR (28 days), monotony (7 days). Older days enter only through the EWMA states.
LOOKBACK_DAYS = max(READINESS_SETTINGS.baseline_days, READINESS_SETTINGS.trend_days, MIN_HISTORY_DAYS)
_METRIC_COLUMNS = ("resting_hr", "hrv_rmssd_ms", "sleep_s", "stress", "soreness")


@dataclass(frozen=True, slots=True)
class DailyInputs:
    start: dt.date
    loads: FloatArray
    rmssd_ms: FloatArray
    rhr_bpm: FloatArray
    sleep_h: FloatArray
    soreness: FloatArray
    stress: FloatArray

    @property
    def days(self) -> int:
        return int(self.loads.size)


@dataclass(frozen=True, slots=True)
class History:
    """Where a user's data begins: the first local day of each kind (None: none of that kind)."""

    activities_from: dt.date | None
    metrics_from: dt.date | None

    @property
    def start(self) -> dt.date | None:
        """The first local day with any activity or daily reading (None: no data at all)."""
        return min((d for d in (self.activities_from, self.metrics_from) if d is not None), default=None)


async def history(db: Queries, user_id: str, zone: ZoneInfo) -> History:
    """The first day of each kind of input, in one statement (every recompute starts here, and
    each statement is a trip to the database: SQLite's connection thread, PostgreSQL's socket)."""
    row = await db.fetchrow(
        """SELECT (SELECT MIN(start_time) FROM activities WHERE user_id = $1) AS first_ms,
                  (SELECT MIN(day) FROM daily_metrics WHERE user_id = $1) AS first_day""",
        user_id,
    )
    first_ms, first_day = (row["first_ms"], row["first_day"]) if row is not None else (None, None)
    return History(
        local_day(int(first_ms), zone) if first_ms is not None else None,
        dt.date.fromisoformat(str(first_day)) if first_day is not None else None,
    )


async def history_start(db: Queries, user_id: str, zone: ZoneInfo) -> dt.date | None:
    """The user's first local day with any activity or daily reading (None: no data at all).

    The daily series starts here from a zero state, like GoldenCheetah starting the day before the
    first ride; no rows exist before it.
    """
    return (await history(db, user_id, zone)).start


async def read_inputs(
    db: Queries,
    user_id: str,
    zone: ZoneInfo,
    start: dt.date,
    end: dt.date,
    *,
    known: History | None = None,
) -> DailyInputs:
    """Loads and wellness series for the local days start..end inclusive.

    With `known` (read in the same transaction), a kind of input the user has none of is not
    queried: most users have activities but no daily readings, and that saves a statement.
    """
    n = (end - start).days + 1
    rows: list[Row] = []
    if known is None or known.activities_from is not None:
        rows = await db.fetch(
            """SELECT start_time, training_load FROM activities
               WHERE user_id = $1 AND start_time >= $2 AND start_time < $3 AND training_load IS NOT NULL""",
            user_id,
            day_start_ms(start, zone),
            day_start_ms(end + ONE_DAY, zone),
        )
    _, loads = daily_load_series(
        ((local_day(int(r["start_time"]), zone), float(r["training_load"])) for r in rows), start=start, end=end
    )
    series = {c: np.full(n, np.nan) for c in _METRIC_COLUMNS}
    if known is not None and known.metrics_from is None:
        metrics: list[Row] = []
    else:
        metrics = await db.fetch(
            f"""SELECT day, source, {", ".join(_METRIC_COLUMNS)} FROM daily_metrics
            WHERE user_id = $1 AND day >= $2 AND day <= $3
            ORDER BY CASE WHEN source = '{_APP_SOURCE}' THEN 0 ELSE 1 END, updated_stamp DESC""",
            user_id,
            start.isoformat(),
            end.isoformat(),
        )
    for row in metrics:
        i = (dt.date.fromisoformat(str(row["day"])) - start).days
        for column in _METRIC_COLUMNS:
            value = row[column]
            if value is not None and math.isnan(series[column][i]) and math.isfinite(float(value)):
                series[column][i] = float(value)  # first non-null in precedence order wins
    return DailyInputs(
        start=start,
        loads=loads,
        rmssd_ms=series["hrv_rmssd_ms"],
        rhr_bpm=series["resting_hr"],
        sleep_h=series["sleep_s"] / 3600.0,
        soreness=series["soreness"],
        stress=series["stress"],
    )

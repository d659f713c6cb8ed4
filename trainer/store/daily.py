"""Vendor wellness numbers (sleep, HRV, resting HR, stress) merged into the user's daily_metrics row.

daily_metrics is one row per user and day that both the app (self-reports: soreness, fatigue, mood,
notes, and any value typed in by hand) and vendors fill. Vendors deliver a day in pieces (Garmin
sends dailies, sleeps and HRV separately, and re-sends them after every watch sync), so each
source's pieces are merged in daily_vendor_values and the merged values are written into the row.

A value is the vendor's to update only while it is still what the vendor merge last wrote there
(`written`); once the user changed it in the app, it is theirs and no vendor overwrites it. The
self-report columns are never touched.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from trainer import clock
from trainer.db import Transaction
from trainer.normalized import DailySummary
from trainer.store.stamps import next_stamp
from trainer.sync.writes import upsert_server_row

__all__ = ["VENDOR_COLUMNS", "save_daily_summary"]

VENDOR_COLUMNS: dict[str, str] = {
    "resting_hr": "resting_hr_bpm",
    "hrv_rmssd_ms": "hrv_rmssd_ms",
    "sleep_s": "sleep_s",
    "sleep_score": "sleep_score",
    "stress": "stress_avg",
}
"""daily_metrics column -> DailySummary field, for the columns vendors may fill."""


async def save_daily_summary(tx: Transaction, user_id: str, summary: DailySummary) -> date:
    """Merge one vendor summary into the user's day; returns the day (recompute readiness from it)."""
    stamp = await next_stamp(tx, user_id)  # first: serializes this user's writers
    day = summary.day.isoformat()
    vendor_row = await tx.fetchrow(
        "SELECT summaries, written FROM daily_vendor_values WHERE user_id = $1 AND day = $2", user_id, day
    )
    summaries: dict[str, Any] = dict(vendor_row["summaries"]) if vendor_row else {}
    written: dict[str, Any] = dict(vendor_row["written"]) if vendor_row else {}

    previous = summaries.get(summary.source)
    merged = DailySummary.model_validate(previous).merged_with(summary) if previous else summary
    summaries[summary.source] = merged.model_dump(mode="json")

    metrics = await tx.fetchrow(
        f"""SELECT id, {", ".join(VENDOR_COLUMNS)} FROM daily_metrics WHERE user_id = $1 AND day = $2
            ORDER BY created_stamp, id LIMIT 1""",
        user_id,
        day,
    )
    patch: dict[str, Any] = {}
    for column, field in VENDOR_COLUMNS.items():
        value = getattr(merged, field)
        if value is None:
            continue
        value = float(value)
        current = None if metrics is None else metrics[column]
        if current is not None and column not in written:
            continue  # entered by the user before any vendor value arrived
        if current is not None and current != written[column]:
            continue  # the user changed the vendor's value: theirs now
        if current != value:
            patch[column] = value
        written[column] = value

    if patch:
        row: dict[str, Any] = dict(patch)
        if metrics is None:
            row |= {"day": day, "source": summary.source}
        else:
            row["id"] = metrics["id"]
        await upsert_server_row(tx, user_id, "daily_metrics", row, stamp=stamp)
    await tx.execute(
        """INSERT INTO daily_vendor_values (user_id, day, summaries, written, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (user_id, day) DO UPDATE SET summaries = excluded.summaries, written = excluded.written,
               updated_at = excluded.updated_at""",
        user_id,
        day,
        summaries,
        written,
        clock.now_ms(),
    )
    return summary.day

"""Re-analyse stored activities when the user's physiology settings change.

A new HRmax, HRrest, LTHR, sex, birth year (when HRmax is estimated from age) or zone model changes
every activity's load: the same hour at 150 bpm is a different effort for a different athlete. This
re-runs the per-activity analysis from the stored streams through the same function the import
used (trainer.activity_load.load_for), patches the activities whose numbers changed, and recomputes
the daily state from the earliest of them. A time-zone change only moves days: a full recompute.

Bounded on purpose, because it runs after a settings change: activities from the last `days` days
(default 365), newest first, at most `limit` (default 1000). Older activities keep the loads they
were given; their effect on today's CTL has decayed to almost nothing anyway (e^(-365/42) < 0.02 %).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trainer import clock
from trainer.activity_load import load_for
from trainer.analysis.load import ActivityLoad
from trainer.db import Database, Row
from trainer.engine.days import local_day, today, user_zone
from trainer.engine.physiology import analysis_settings_for, physiology_for
from trainer.engine.recompute import RecomputeResult, recompute_user
from trainer.normalized import Activity, ImportedActivity, Sport
from trainer.profile import UserSettings
from trainer.store import users
from trainer.store.activities import get_streams
from trainer.store.stamps import next_stamp
from trainer.sync.writes import patch_server_rows

__all__ = ["ReanalysisResult", "after_settings_change", "reanalyse_activities", "reanalyse_user", "what_changed"]

DEFAULT_DAYS = 365
DEFAULT_LIMIT = 1000
_BATCH = 200  # activities patched per transaction (one statement each): short write locks on SQLite
_CHANNELS = ("heart_rate", "speed_m_s", "power_w")
_COLUMNS = "id, sport, start_time, duration_s, moving_time_s, avg_hr, rpe, training_load, trimp, hr_tss"


@dataclass(frozen=True)
class ReanalysisResult:
    examined: int
    changed: int
    recompute: RecomputeResult | None


def what_changed(old: UserSettings, new: UserSettings) -> Literal["activities", "days", None]:
    """'activities' when per-activity loads change, 'days' when only the day boundaries move."""
    if physiology_for(old) != physiology_for(new) or analysis_settings_for(old) != analysis_settings_for(new):
        return "activities"
    if old.timezone != new.timezone:
        return "days"
    return None


async def after_settings_change(
    db: Database, user_id: str, old: UserSettings, new: UserSettings
) -> ReanalysisResult | None:
    """What to run after the user's settings were saved (call it after the commit)."""
    match what_changed(old, new):
        case "activities":
            return await reanalyse_user(db, user_id)
        case "days":
            return ReanalysisResult(0, 0, await recompute_user(db, user_id, None))
    return None


def _imported(row: Row, streams: Any) -> ImportedActivity:
    """The stored activity in the shape load_for takes (only the fields the load depends on)."""
    try:
        sport = Sport(row["sport"])
    except ValueError:
        sport = Sport.OTHER
    activity = Activity(
        source="app",
        external_id=str(row["id"]),
        sport=sport,
        start_time=clock.ms_to_datetime(int(row["start_time"])),
        duration_s=row["duration_s"],
        moving_time_s=row["moving_time_s"],
        avg_hr_bpm=row["avg_hr"],
    )
    return ImportedActivity(activity=activity, streams=streams)


def _differs(row: Row, load: ActivityLoad) -> bool:
    pairs = ((row["training_load"], load.load), (row["trimp"], load.trimp), (row["hr_tss"], load.hr_tss))
    for old, new in pairs:
        if (old is None) != (new is None):
            return True
        if old is not None and new is not None and not math.isclose(float(old), float(new), rel_tol=1e-9):
            return True
    return False


async def reanalyse_user(
    db: Database, user_id: str, *, days: int = DEFAULT_DAYS, limit: int = DEFAULT_LIMIT
) -> ReanalysisResult:
    """Recompute the loads of the user's recent activities with their current settings."""
    settings = UserSettings.model_validate((await users.get(db, user_id)).settings)
    zone = user_zone(settings)
    since = today(zone) - dt.timedelta(days=days)
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM activities WHERE user_id = $1 AND start_time >= $2
            ORDER BY start_time DESC LIMIT $3""",
        user_id,
        clock.datetime_to_ms(dt.datetime.combine(since, dt.time(0), tzinfo=zone)),
        limit,
    )
    changed = await _patch_loads(db, user_id, settings, rows)
    recomputed = await recompute_user(db, user_id, min(changed)) if changed else None
    return ReanalysisResult(examined=len(rows), changed=len(changed), recompute=recomputed)


async def reanalyse_activities(db: Database, user_id: str, ids: Sequence[str]) -> list[dt.date]:
    """Recompute the loads of these activities (e.g. just pushed from the app with a new RPE or
    heart rate); returns the local days whose load changed. No daily recompute: the caller does it."""
    if not ids:
        return []
    settings = UserSettings.model_validate((await users.get(db, user_id)).settings)
    placeholders = ", ".join(f"${i + 2}" for i in range(len(ids)))
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM activities WHERE user_id = $1 AND id IN ({placeholders})", user_id, *ids
    )
    return await _patch_loads(db, user_id, settings, rows)


async def _with_streams(db: Database, user_id: str, rows: list[Row]) -> set[str]:
    """Which of these activities have stored streams (one query, not one per activity: app-entered
    activities usually have none, and a bulk push must not pay a round trip for each)."""
    ids = [str(r["id"]) for r in rows]
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        placeholders = ", ".join(f"${n + 2}" for n in range(len(chunk)))
        found.update(
            r["activity_id"]
            for r in await db.fetch(
                f"SELECT activity_id FROM activity_streams WHERE user_id = $1 AND activity_id IN ({placeholders})",
                user_id,
                *chunk,
            )
        )
    return found


async def _patch_loads(db: Database, user_id: str, settings: UserSettings, rows: list[Row]) -> list[dt.date]:
    zone = user_zone(settings)
    patches: list[tuple[Row, ActivityLoad]] = []
    streamed = await _with_streams(db, user_id, rows)
    for row in rows:
        streams = await get_streams(db, user_id, str(row["id"]), _CHANNELS) if str(row["id"]) in streamed else None
        load = load_for(settings, _imported(row, streams), rpe=row["rpe"])
        if load is not None and _differs(row, load):
            patches.append((row, load))
    for i in range(0, len(patches), _BATCH):
        batch = [
            {
                "id": row["id"],
                "trimp": load.trimp,
                "hr_tss": load.hr_tss,
                "training_load": load.load,
                "analysis": load.to_dict(),
            }
            for row, load in patches[i : i + _BATCH]
        ]
        async with db.transaction() as tx:
            await patch_server_rows(tx, user_id, "activities", batch, stamp=await next_stamp(tx, user_id))
    return [local_day(int(r["start_time"]), zone) for r, _ in patches]

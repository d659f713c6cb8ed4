"""What runs after a user changed analysis inputs outside the ingest pipeline.

The app edits activities (an RPE for a watch-less session, a corrected heart rate) and daily
readings (morning HRV, soreness) through sync; a user changes their physiology settings through
`user.updateSettings`. Both commit first; then the loads and the daily state follow here, so the
next pull and the dashboard agree with what the user just entered. A failure here is logged and
does not undo the user's committed change: the next trigger or dashboard call catches up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from trainer.db import Database
from trainer.engine.days import local_day, user_zone
from trainer.engine.reanalysis import after_settings_change, reanalyse_activities
from trainer.engine.recompute import recompute_user
from trainer.profile import UserSettings
from trainer.store import users

log = logging.getLogger("trainer.engine")

INPUT_TABLES = ("activities", "daily_metrics")


async def after_push(db: Database, user_id: str, changes: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
    """Re-analyse pushed activities and recompute the daily state from the earliest touched day."""
    touched = {name: changes.get(name) or {} for name in INPUT_TABLES}
    if not any(entry.get(kind) for entry in touched.values() for kind in ("created", "updated", "deleted")):
        return
    try:
        settings = UserSettings.model_validate((await users.get(db, user_id)).settings)
        pushed = [r for kind in ("created", "updated") for r in touched["activities"].get(kind) or () if _is_record(r)]
        days = await reanalyse_activities(db, user_id, [str(r["id"]) for r in pushed])
        deleted = any(entry.get("deleted") for entry in touched.values())
        days += _pushed_days(touched, pushed, settings)
        await recompute_user(db, user_id, None if deleted or not days else min(days))
    except Exception:
        log.exception("recompute after a sync push failed", extra={"user_id": user_id})


async def after_settings_saved(db: Database, user_id: str, old: UserSettings, new: UserSettings) -> None:
    try:
        await after_settings_change(db, user_id, old, new)
    except Exception:
        log.exception("re-analysis after a settings change failed", extra={"user_id": user_id})


def _is_record(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("id"), str)


def _pushed_days(
    touched: Mapping[str, Mapping[str, Sequence[Any]]], activities: list[Mapping[str, Any]], settings: UserSettings
) -> list[dt.date]:
    zone = user_zone(settings)
    days: list[dt.date] = []
    for record in activities:
        start = record.get("start_time")
        if isinstance(start, int | float) and start > 0:
            days.append(local_day(int(start), zone))
    for kind in ("created", "updated"):
        for record in touched["daily_metrics"].get(kind) or ():
            try:
                days.append(dt.date.fromisoformat(str(record.get("day"))))
            except (AttributeError, ValueError):
                continue  # a record the push rejected or sanitized; nothing to recompute for it
    return days

"""Users, activities and daily readings for engine tests, written the way the server writes them
(stamped server writes through trainer.sync.writes), so the engine reads exactly what ingest stores."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from trainer import clock
from trainer.db import Database, Queries
from trainer.store import users
from trainer.sync.writes import delete_server_row, upsert_server_row


async def make_user(db: Database, **settings: Any) -> str:
    user = await users.create(db, email=f"{uuid.uuid4().hex[:10]}@example.com", password_hash="x")
    await users.set_settings(db, user.id, {"timezone": "UTC", **settings})
    return user.id


def local_ms(day: dt.date, hour: float, tz: str) -> int:
    """Epoch ms of a local wall-clock time (hour may be fractional)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
    return clock.datetime_to_ms(start + dt.timedelta(hours=hour))


async def add_activity(
    db: Database, user_id: str, start_ms: int, load: float, *, duration_s: float = 3600.0, **extra: Any
) -> str:
    async with db.transaction() as tx:
        return await upsert_server_row(
            tx,
            user_id,
            "activities",
            {
                "source": "file",
                "sport": "run",
                "start_time": start_ms,
                "duration_s": duration_s,
                "training_load": float(load),
                **extra,
            },
        )


async def add_metrics(db: Database, user_id: str, day: dt.date, **values: Any) -> str:
    async with db.transaction() as tx:
        return await upsert_server_row(tx, user_id, "daily_metrics", {"day": day, **values})


async def delete_activity(db: Database, user_id: str, activity_id: str) -> None:
    async with db.transaction() as tx:
        await delete_server_row(tx, user_id, "activities", activity_id)


async def state_rows(db: Queries, user_id: str) -> dict[str, dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM daily_state WHERE user_id = $1 ORDER BY day", user_id)
    return {str(r["day"]): r for r in rows}


def at_noon_utc(day: dt.date) -> float:
    """A clock.frozen() instant on `day`."""
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp()

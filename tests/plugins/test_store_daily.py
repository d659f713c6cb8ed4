"""store.daily: vendor wellness pieces merged into the user's day without overwriting what the user
entered or changed."""

from __future__ import annotations

from datetime import date

from tests.plugins.conftest import new_user
from trainer.db import Database
from trainer.normalized import DailySummary
from trainer.store import daily
from trainer.sync.writes import upsert_server_row

DAY = date(2024, 5, 19)


async def save(db: Database, user_id: str, **fields) -> date:  # type: ignore[no-untyped-def]
    summary = DailySummary(source="garmin", external_id=fields.pop("external_id", "x1"), day=DAY, **fields)
    async with db.transaction() as tx:
        return await daily.save_daily_summary(tx, user_id, summary)


async def row(db: Database, user_id: str) -> dict:
    rows = await db.fetch(
        """SELECT resting_hr, hrv_rmssd_ms, sleep_s, sleep_score, stress, soreness, mood, notes, source,
                  updated_stamp FROM daily_metrics WHERE user_id = $1""",
        user_id,
    )
    assert len(rows) == 1, rows
    return rows[0]


async def test_pieces_of_one_day_fill_one_row(db: Database) -> None:
    user = await new_user(db)
    assert await save(db, user, external_id="daily", resting_hr_bpm=48, stress_avg=31) == DAY
    await save(db, user, external_id="sleep", sleep_s=27_000, sleep_score=84)
    await save(db, user, external_id="hrv", hrv_rmssd_ms=62)
    got = await row(db, user)
    assert (got["resting_hr"], got["stress"], got["sleep_s"], got["sleep_score"], got["hrv_rmssd_ms"]) == (
        48,
        31,
        27_000,
        84,
        62,
    )
    assert got["source"] == "garmin"


async def test_not_enough_data_sentinels_are_not_stored(db: Database) -> None:
    user = await new_user(db)
    await save(db, user, resting_hr_bpm=50, stress_avg=-1)  # Garmin: -1 = not enough data
    assert (await row(db, user))["stress"] is None


async def test_self_reports_and_user_values_are_never_overwritten(db: Database) -> None:
    user = await new_user(db)
    async with db.transaction() as tx:  # the app synced the user's morning check-in first
        await upsert_server_row(
            tx, user, "daily_metrics", {"day": DAY, "soreness": 3, "mood": 8, "notes": "legs ok", "sleep_s": 25_000.0}
        )
    await save(db, user, resting_hr_bpm=48, sleep_s=27_000)
    got = await row(db, user)
    assert (got["soreness"], got["mood"], got["notes"]) == (3, 8, "legs ok")
    assert got["sleep_s"] == 25_000  # entered by the user before any vendor value: theirs
    assert got["resting_hr"] == 48

    # The user corrects the vendor's resting HR in the app; a re-sent summary must not undo it.
    async with db.transaction() as tx:
        row_id = await tx.fetchval("SELECT id FROM daily_metrics WHERE user_id = $1", user)
        await upsert_server_row(tx, user, "daily_metrics", {"id": row_id, "resting_hr": 45.0})
    await save(db, user, resting_hr_bpm=49, hrv_rmssd_ms=60)
    got = await row(db, user)
    assert got["resting_hr"] == 45 and got["hrv_rmssd_ms"] == 60


async def test_a_vendor_updates_its_own_values_and_a_resend_changes_nothing(db: Database) -> None:
    user = await new_user(db)
    await save(db, user, resting_hr_bpm=48)
    await save(db, user, resting_hr_bpm=47)  # the watch synced again with a better reading
    first = await row(db, user)
    assert first["resting_hr"] == 47
    await save(db, user, resting_hr_bpm=47)
    assert (await row(db, user))["updated_stamp"] == first["updated_stamp"]  # nothing new for devices

"""Which processed events become which messages (the pipeline hook's side), on both databases."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from tests.notify.conftest import new_user
from trainer import clock
from trainer.db import Database
from trainer.ingest.hooks import ProcessedEvent, on_activity_processed
from trainer.notify.outbox import list_for_user
from trainer.profile import UserSettings

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC


async def readiness_today(db: Database, user_id: str, score: float, band: str) -> None:
    await db.execute(
        """INSERT INTO daily_state (id, user_id, day, load, ctl, atl, tsb, ramp, acwr_acute, acwr_chronic,
                                    readiness_score, readiness_band, readiness_confidence, readiness_reasons,
                                    created_stamp, updated_stamp)
           VALUES ($1, $2, $3, 0, 0, 0, 0, 0, 0, 0, $4, $5, 'low', $6, 1, 1)""",
        f"state-{user_id}",
        user_id,
        dt.date(2025, 6, 15).isoformat(),
        score,
        band,
        [],
    )


async def hook(db: Database, event: ProcessedEvent) -> None:
    async with db.transaction() as tx:
        await on_activity_processed(tx, event)


async def messages(db: Database, user_id: str) -> list[tuple[str, dict]]:
    return sorted((r["template_key"], r["params"]) for r in await list_for_user(db, user_id))


async def test_a_red_morning_tells_of_the_plan_and_readiness_once_a_day(db: Database):
    alice = await new_user(db, "alice@example.com")
    with clock.frozen(T0):
        await readiness_today(db, alice, 31.6, "red")
        for inbox_id in ("sleep", "hrv", "daily"):  # one morning's events, each re-adapting the plan
            event = ProcessedEvent(
                inbox_id,
                alice,
                "garmin",
                "daily",
                dailies=[dt.date(2025, 6, 15)],
                recompute=SimpleNamespace(plan_changes=2),
            )
            await hook(db, event)
    assert await messages(db, alice) == [
        ("low_readiness", {"day": "2025-06-15", "readiness": 31.6}),
        ("plan_adapted", {"changed": 2, "reason": "readiness is low"}),
    ]


async def test_the_settings_the_recompute_read_decide_the_users_day(db: Database):
    """The hook takes the user's settings from the recompute that ran in the same transaction: here
    they put the user at UTC+14, where it is already the 16th (no reading stored yet, so no low
    readiness message), while the stored row says UTC (the 15th, red)."""
    alice = await new_user(db, "alice@example.com")
    with clock.frozen(T0):
        await readiness_today(db, alice, 31.6, "red")
        recompute = SimpleNamespace(plan_changes=0, settings=UserSettings(timezone="Pacific/Kiritimati"))
        await hook(
            db, ProcessedEvent("e1", alice, "garmin", "daily", dailies=[dt.date(2025, 6, 15)], recompute=recompute)
        )
        assert await messages(db, alice) == []
        await hook(db, ProcessedEvent("e2", alice, "garmin", "daily", dailies=[dt.date(2025, 6, 15)]))
    assert await messages(db, alice) == [("low_readiness", {"day": "2025-06-15", "readiness": 31.6})]


async def test_green_days_and_unchanged_plans_say_nothing(db: Database):
    alice = await new_user(db, "alice@example.com")
    with clock.frozen(T0):
        await readiness_today(db, alice, 81.0, "green")
        await hook(db, ProcessedEvent("e1", alice, "garmin", "daily", dailies=[dt.date(2025, 6, 15)]))
    assert await messages(db, alice) == []


async def test_a_revoked_vendor_is_told_once_per_event(db: Database):
    alice = await new_user(db, "alice@example.com")
    event = ProcessedEvent("e1", alice, "strava", "deauthorize", disconnected=True)
    await hook(db, event)
    await hook(db, event)
    assert await messages(db, alice) == [("vendor_connection_lost", {"plugin": "strava", "vendor": "Strava"})]

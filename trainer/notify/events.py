"""Which processed pipeline events deserve a message, written into the outbox with the event.

Runs inside the transaction that marks the inbox event done (trainer/ingest/hooks.py), so it only
reads and inserts: no provider is called here. Every message's dedupe key names its real-world
cause (the activity, the inbox event, the user's day), so an event processed twice — or two events
about the same activity — still yields one message. Plan changes and low readiness are told at
most once a day: a morning's sleep, HRV and summary events each re-run the adaptation.

What is *not* worth a buzz: activities from a history import (older than RECENT_S; the backfill
sends one "import finished" instead) and more than MAX_ACTIVITIES from one event (a bulk upload).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import ValidationError

from trainer import clock
from trainer.db import Transaction
from trainer.notify.outbox import enqueue
from trainer.profile import UserSettings

if TYPE_CHECKING:
    from trainer.ingest.hooks import ProcessedEvent

log = logging.getLogger("trainer.notify")
_DATABASE_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)

RECENT_S = 48 * 3600
MAX_ACTIVITIES = 3
LOW_READINESS_BANDS = ("red",)


async def notify_processed(tx: Transaction, event: ProcessedEvent) -> list[str]:
    """Enqueue what `event` should tell its user; returns the new notification ids.

    A bug here must not hold the user's data back: the error is logged and the event still
    completes (a missed message is the lesser loss than an activity that never arrives). A
    database error is different: PostgreSQL has then aborted the whole transaction, and swallowing
    it would let the pipeline believe the event was marked done, so it propagates (the event is
    retried).
    """
    try:
        return await _notify(tx, event)
    except _DATABASE_ERRORS:
        raise
    except Exception:
        log.exception("inbox %s: notifications not written", event.inbox_id)
        return []


async def _notify(tx: Transaction, event: ProcessedEvent) -> list[str]:
    settings = _recomputed_settings(event)
    if settings is None:
        settings = await _settings(tx, event.user_id)
    if settings is None:
        return []
    today = clock.now().astimezone(ZoneInfo(settings.timezone)).date()
    readiness = await _readiness(tx, event.user_id, today)
    written: list[str | None] = []
    for activity in await _recent_activities(tx, event.user_id, event.created):
        params = {
            "activity_id": activity["id"],
            "sport": activity["sport"],
            "distance_m": activity["distance_m"],
            "load": activity["training_load"],
            "readiness": readiness["readiness_score"] if readiness else None,
        }
        key = f"activity_analyzed:{activity['id']}"
        written.append(await enqueue(tx, event.user_id, "activity_analyzed", "activity_analyzed", params, key))
    plan_changes = getattr(event.recompute, "plan_changes", 0) or 0
    if plan_changes > 0:
        key = f"plan_adapted:{today.isoformat()}"  # one nudge a day, however many events adapt it
        params = {"changed": plan_changes, "reason": _reason(readiness)}
        written.append(await enqueue(tx, event.user_id, "plan_adapted", "plan_adapted", params, key))
    if readiness and readiness["readiness_band"] in LOW_READINESS_BANDS and (event.dailies or event.created):
        key = f"low_readiness:{today.isoformat()}"  # once a day, however many events re-read it
        params = {"readiness": readiness["readiness_score"], "day": today.isoformat()}
        written.append(await enqueue(tx, event.user_id, "low_readiness", "low_readiness", params, key))
    if event.disconnected:
        key = f"connection_lost:{event.inbox_id}"
        params = {"vendor": event.plugin.replace("_", " ").title(), "plugin": event.plugin}
        written.append(await enqueue(tx, event.user_id, "connection_lost", "vendor_connection_lost", params, key))
    return [w for w in written if w is not None]


def _recomputed_settings(event: ProcessedEvent) -> UserSettings | None:
    """The settings the event's recompute read in this same transaction, if one ran: the user
    exists and the settings are valid then (the recompute fails otherwise), so reading them again
    would only cost a statement (a round trip on PostgreSQL)."""
    settings = getattr(event.recompute, "settings", None)
    return settings if isinstance(settings, UserSettings) else None


async def _settings(tx: Transaction, user_id: str) -> UserSettings | None:
    row = await tx.fetchrow("SELECT settings FROM users WHERE id = $1", user_id)
    if row is None:
        return None
    try:
        return UserSettings.model_validate(row["settings"] or {})
    except ValidationError:
        return UserSettings()


async def _recent_activities(tx: Transaction, user_id: str, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    marks = ", ".join(f"${i + 3}" for i in range(len(ids)))
    rows = await tx.fetch(
        f"""SELECT id, sport, distance_m, training_load, start_time FROM activities
            WHERE user_id = $1 AND start_time >= $2 AND id IN ({marks})
            ORDER BY start_time DESC, id LIMIT {MAX_ACTIVITIES}""",
        user_id,
        clock.now_ms() - RECENT_S * 1000,
        *ids,
    )
    return rows


async def _readiness(tx: Transaction, user_id: str, today: dt.date) -> dict[str, Any] | None:
    """Today's readiness as the recompute just stored it (None before the first reading)."""
    return await tx.fetchrow(
        "SELECT readiness_score, readiness_band FROM daily_state WHERE user_id = $1 AND day = $2",
        user_id,
        today.isoformat(),
    )


def _reason(readiness: dict[str, Any] | None) -> str | None:
    if readiness and readiness["readiness_band"] in LOW_READINESS_BANDS:
        return "readiness is low"
    return None

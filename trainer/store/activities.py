"""Activities that arrive from a source (vendor API, file import): stored once, however many sources.

An athlete who records on a Garmin watch that uploads to Strava, and who also imports the FIT file,
delivers one workout three times. It is stored as one activity: a new arrival that starts within
`MATCH_WINDOW_S` of an activity from another source, with similar duration and distance, joins it.
Each source's (source, external_id) is kept in activity_sources, so later updates and deletions from
any of them find the same row, and the activities row holds the data of the richest source (streams
beat summaries; then more known fields). A poorer source only fills columns the row lacks.

Every write goes through trainer.sync.writes, so it takes the user's change stamp and reaches the
app on its next pull; the stamp is taken first, which also serializes one user's writers, so two
sources arriving at once cannot both create the activity. Streams are stored with the compact codec
in activity_streams and are served only through `activities.getStreams`, never through sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from trainer import clock
from trainer.analysis import streams_codec
from trainer.db import Queries, Row, Transaction
from trainer.errors import NotFound
from trainer.normalized import Activity, ImportedActivity, Streams
from trainer.store.stamps import next_stamp
from trainer.sync.writes import delete_server_row, insert_server_row, upsert_server_row

__all__ = [
    "MATCH_WINDOW_S",
    "LoadLike",
    "SaveResult",
    "delete_all_from_source",
    "delete_by_external",
    "find_id",
    "get_streams",
    "richness",
    "save_imported",
]

MATCH_WINDOW_S = 60
"""Two recordings of one workout start within this many seconds of each other."""
DURATION_TOLERANCE = 0.10
DURATION_SLACK_S = 120.0
DISTANCE_TOLERANCE = 0.10
DISTANCE_SLACK_M = 250.0

_SUMMARY_FIELDS = (
    "name",
    "duration_s",
    "moving_time_s",
    "distance_m",
    "elevation_gain_m",
    "calories_kcal",
    "avg_hr_bpm",
    "max_hr_bpm",
    "avg_power_w",
    "max_power_w",
    "normalized_power_w",
    "avg_cadence_rpm",
    "avg_speed_m_s",
    "device_name",
)
# Columns a poorer source may fill when the richer one left them empty.
_FILLABLE = (
    "name",
    "moving_time_s",
    "distance_m",
    "elevation_gain_m",
    "calories_kcal",
    "avg_hr",
    "max_hr",
    "avg_power_w",
    "max_power_w",
    "normalized_power_w",
    "avg_cadence",
    "avg_speed_m_s",
    "device",
)
_ROW_COLUMNS = (
    "id, source, external_id, start_time, utc_offset_s, duration_s, distance_m, sport, name, moving_time_s, "
    "elevation_gain_m, calories_kcal, avg_hr, max_hr, avg_power_w, max_power_w, normalized_power_w, avg_cadence, "
    "avg_speed_m_s, device, manual, trimp, hr_tss, training_load, analysis"
)


class LoadLike(Protocol):
    """What is stored of an activity's training load (trainer.analysis.load.ActivityLoad)."""

    @property
    def trimp(self) -> float | None: ...
    @property
    def hr_tss(self) -> float | None: ...
    @property
    def load(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SaveResult:
    activity_id: str
    created: bool
    """A new activity row; False when an existing one was updated or this was a duplicate."""
    day: date
    """Local calendar day of the start: recompute daily state from here."""
    merged: bool = False
    """This source joined an activity another source had delivered (a cross-source duplicate)."""
    changed: bool = True
    """The activity row changed (False: a re-delivery of exactly what is stored)."""


def richness(imported: ImportedActivity) -> int:
    """How much a version of an activity holds: sample streams dominate, then known summary fields."""
    activity = imported.activity
    score = sum(1 for name in _SUMMARY_FIELDS if getattr(activity, name) is not None)
    if imported.streams is not None:
        score += 100 + 10 * len(imported.streams.channels())
    return score


def local_day(start_ms: int, utc_offset_s: int | None) -> date:
    return (datetime.fromtimestamp(start_ms / 1000, tz=UTC) + timedelta(seconds=utc_offset_s or 0)).date()


async def save_imported(
    tx: Transaction, user_id: str, imported: ImportedActivity, *, load: LoadLike | None = None
) -> SaveResult:
    """Store one imported activity: update it if this source delivered it before, join a duplicate
    from another source, or create it. See the module docstring for the rules."""
    activity = imported.activity
    stamp = await next_stamp(tx, user_id)  # first: the user's lock makes the duplicate search race-free
    score = richness(imported)
    activity_id = await _linked_id(tx, user_id, activity.source, activity.external_id)
    merged = False
    if activity_id is None:
        activity_id = await _find_duplicate(tx, user_id, activity)
        merged = activity_id is not None
    existing = None if activity_id is None else await _row(tx, user_id, activity_id)
    columns = _columns(activity)
    if existing is None:
        patch = {k: v for k, v in columns.items() if v is not None} | _load_columns(load)
        activity_id = await insert_server_row(tx, user_id, "activities", patch, stamp=stamp)
        await _write_streams(tx, user_id, activity_id, imported.streams)
        await _link(tx, user_id, activity, activity_id, score)
        return SaveResult(activity_id, True, local_day(columns["start_time"], activity.utc_offset_s))

    assert activity_id is not None
    is_primary = (existing["source"], existing["external_id"]) == (activity.source, activity.external_id)
    if not is_primary:
        primary_score = await _score(tx, user_id, existing["source"], existing["external_id"])
        is_primary = score > primary_score
    if is_primary:
        patch = {k: v for k, v in columns.items() if v is not None}
        if load is not None:
            patch |= _load_columns(load)
        await _write_streams(tx, user_id, activity_id, imported.streams)
    else:
        patch = {k: columns[k] for k in _FILLABLE if _empty(existing[k]) and columns.get(k) is not None}
        if existing["training_load"] is None and load is not None:
            patch |= _load_columns(load)
    changed = {k: v for k, v in patch.items() if existing.get(k) != v}
    if changed:
        await upsert_server_row(tx, user_id, "activities", {"id": activity_id, **changed}, stamp=stamp)
    await _link(tx, user_id, activity, activity_id, score)
    day = local_day(existing["start_time"], existing["utc_offset_s"]) if not is_primary else None
    return SaveResult(
        activity_id,
        False,
        day or local_day(columns["start_time"], activity.utc_offset_s),
        merged=merged,
        changed=bool(changed),
    )


async def delete_by_external(tx: Transaction, user_id: str, source: str, external_id: str) -> date | None:
    """The source says this activity no longer exists: forget that source's copy.

    Returns the local day of a deleted activity (recompute from there), or None when nothing was
    deleted: unknown, or another source still has the workout (the row stays and, if the deleted
    source was the one shown, is attributed to the remaining richest source).
    """
    activity_id = await _linked_id(tx, user_id, source, external_id)
    if activity_id is None:
        return None
    stamp = await next_stamp(tx, user_id)
    existing = await _row(tx, user_id, activity_id)
    await tx.execute(
        "DELETE FROM activity_sources WHERE user_id = $1 AND source = $2 AND external_id = $3",
        user_id,
        source,
        external_id,
    )
    if existing is None:
        return None
    remaining = await tx.fetch(
        """SELECT source, external_id FROM activity_sources WHERE user_id = $1 AND activity_id = $2
           ORDER BY richness DESC, created_at""",
        user_id,
        activity_id,
    )
    if remaining:
        if (existing["source"], existing["external_id"]) == (source, external_id):
            heir = remaining[0]
            await upsert_server_row(
                tx,
                user_id,
                "activities",
                {"id": activity_id, "source": heir["source"], "external_id": heir["external_id"]},
                stamp=stamp,
            )
        return None
    await delete_server_row(tx, user_id, "activities", activity_id, stamp=stamp)
    return local_day(existing["start_time"], existing["utc_offset_s"])


async def delete_all_from_source(tx: Transaction, user_id: str, source: str) -> list[date]:
    """Forget everything one source delivered (a vendor whose terms require it on disconnect).

    Activities that another source also delivered stay. Returns the days of deleted activities.
    """
    rows = await tx.fetch(
        "SELECT external_id FROM activity_sources WHERE user_id = $1 AND source = $2", user_id, source
    )
    days = [await delete_by_external(tx, user_id, source, r["external_id"]) for r in rows]
    return sorted({d for d in days if d is not None})


async def find_id(db: Queries, user_id: str, source: str, external_id: str) -> str | None:
    """The activity this source's object was stored as, if any."""
    return await _linked_id(db, user_id, source, external_id)


async def get_streams(
    db: Queries, user_id: str, activity_id: str, types: Iterable[str] | None = None
) -> Streams | None:
    """The activity's sample streams (only `types` decoded, time always), None when it has none.

    NotFound when the user has no such activity: another user's id looks exactly like a missing one.
    """
    row = await db.fetchrow(
        """SELECT a.id, s.data FROM activities a
           LEFT JOIN activity_streams s ON s.activity_id = a.id AND s.user_id = a.user_id
           WHERE a.id = $1 AND a.user_id = $2""",
        activity_id,
        user_id,
    )
    if row is None:
        raise NotFound("no such activity")
    if row["data"] is None:
        return None
    return streams_codec.decode(bytes(row["data"]), types)


# -- internals ---------------------------------------------------------------------------------


def _columns(activity: Activity) -> dict[str, Any]:
    return {
        "source": activity.source,
        "external_id": activity.external_id,
        "sport": activity.sport.value,
        "name": activity.name,
        "start_time": clock.datetime_to_ms(activity.start_time),
        "utc_offset_s": activity.utc_offset_s,
        "duration_s": activity.duration_s,
        "moving_time_s": activity.moving_time_s,
        "distance_m": activity.distance_m,
        "elevation_gain_m": activity.elevation_gain_m,
        "calories_kcal": activity.calories_kcal,
        "avg_hr": activity.avg_hr_bpm,
        "max_hr": activity.max_hr_bpm,
        "avg_power_w": activity.avg_power_w,
        "max_power_w": activity.max_power_w,
        "normalized_power_w": activity.normalized_power_w,
        "avg_cadence": activity.avg_cadence_rpm,
        "avg_speed_m_s": activity.avg_speed_m_s,
        "device": activity.device_name,
        "manual": activity.manual,
    }


def _load_columns(load: LoadLike | None) -> dict[str, Any]:
    if load is None:
        return {}
    return {"trimp": load.trimp, "hr_tss": load.hr_tss, "training_load": load.load, "analysis": load.to_dict()}


def _empty(value: Any) -> bool:
    return value is None or value == ""


async def _row(db: Queries, user_id: str, activity_id: str) -> Row | None:
    return await db.fetchrow(
        f"SELECT {_ROW_COLUMNS} FROM activities WHERE id = $1 AND user_id = $2", activity_id, user_id
    )


async def _linked_id(db: Queries, user_id: str, source: str, external_id: str) -> str | None:
    """The activity of (source, external_id): through activity_sources, else a row written without one.

    One statement (COALESCE evaluates its second lookup only when the first finds nothing): every
    imported activity asks this, and on PostgreSQL each statement is a round trip."""
    return await db.fetchval(
        """SELECT COALESCE(
               (SELECT activity_id FROM activity_sources WHERE user_id = $1 AND source = $2 AND external_id = $3),
               (SELECT id FROM activities WHERE user_id = $1 AND source = $2 AND external_id = $3))""",
        user_id,
        source,
        external_id,
    )


async def _score(db: Queries, user_id: str, source: str, external_id: str | None) -> int:
    if external_id is None:
        return 1 << 30  # the user's own entry: never replaced by an import
    value = await db.fetchval(
        "SELECT richness FROM activity_sources WHERE user_id = $1 AND source = $2 AND external_id = $3",
        user_id,
        source,
        external_id,
    )
    return int(value) if value is not None else 0


async def _find_duplicate(db: Queries, user_id: str, activity: Activity) -> str | None:
    """An activity from another source that is this workout: same start (within a minute), similar
    duration and distance. The user's own entries (no external id) are never matched."""
    start = clock.datetime_to_ms(activity.start_time)
    window = MATCH_WINDOW_S * 1000
    candidates = await db.fetch(
        """SELECT id, start_time, duration_s, distance_m FROM activities
           WHERE user_id = $1 AND start_time BETWEEN $2 AND $3 AND external_id IS NOT NULL""",
        user_id,
        start - window,
        start + window,
    )
    candidates.sort(key=lambda r: abs(r["start_time"] - start))
    for row in candidates:
        if not _similar(activity.duration_s, row["duration_s"] or None, DURATION_TOLERANCE, DURATION_SLACK_S):
            continue
        if not _similar(activity.distance_m, row["distance_m"] or None, DISTANCE_TOLERANCE, DISTANCE_SLACK_M):
            continue
        same_source = await db.fetchval(
            "SELECT 1 FROM activity_sources WHERE user_id = $1 AND activity_id = $2 AND source = $3",
            user_id,
            row["id"],
            activity.source,
        )
        if not same_source:  # two activities of one source are two workouts, however close
            return row["id"]
    return None


def _similar(a: float | None, b: float | None, tolerance: float, slack: float) -> bool:
    """Unknown on either side does not contradict; otherwise within `tolerance` or `slack`."""
    if not a or not b:
        return True
    return abs(a - b) <= max(slack, tolerance * max(a, b))


async def _link(tx: Transaction, user_id: str, activity: Activity, activity_id: str, score: int) -> None:
    now = clock.now_ms()
    await tx.execute(
        """INSERT INTO activity_sources (user_id, source, external_id, activity_id, richness, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           ON CONFLICT (user_id, source, external_id) DO UPDATE SET activity_id = excluded.activity_id,
               richness = excluded.richness, updated_at = excluded.updated_at""",
        user_id,
        activity.source,
        activity.external_id,
        activity_id,
        score,
        now,
    )


async def _write_streams(tx: Transaction, user_id: str, activity_id: str, streams: Streams | None) -> None:
    if streams is None:
        return
    blob = streams_codec.encode(streams)
    await tx.execute(
        """INSERT INTO activity_streams (activity_id, user_id, codec_version, sample_count, data)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (activity_id) DO UPDATE SET codec_version = excluded.codec_version,
               sample_count = excluded.sample_count, data = excluded.data
           WHERE activity_streams.user_id = excluded.user_id""",
        activity_id,
        user_id,
        streams_codec.FORMAT_VERSION,
        len(streams),
        blob,
    )

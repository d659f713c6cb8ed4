"""store.activities: upsert by (user, source, external id), one workout from several sources stored
once (keeping the richer data and every source's id), deletions, streams only for their owner."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from tests.plugins.conftest import imported, new_user
from trainer.activity_load import load_for
from trainer.db import Database
from trainer.errors import NotFound
from trainer.profile import UserSettings
from trainer.store import activities

START = datetime(2024, 5, 19, 6, 30, tzinfo=UTC)


async def save(db: Database, user_id: str, item, **kw):  # type: ignore[no-untyped-def]
    async with db.transaction() as tx:
        return await activities.save_imported(tx, user_id, item, **kw)


async def rows(db: Database, user_id: str) -> list[dict]:
    return await db.fetch(
        "SELECT id, source, external_id, name, distance_m, avg_hr, updated_stamp FROM activities WHERE user_id = $1",
        user_id,
    )


async def sources(db: Database, activity_id: str) -> set[tuple[str, str]]:
    found = await db.fetch("SELECT source, external_id FROM activity_sources WHERE activity_id = $1", activity_id)
    return {(r["source"], r["external_id"]) for r in found}


async def test_upsert_is_keyed_by_source_and_external_id(db: Database) -> None:
    user = await new_user(db)
    first = await save(db, user, imported("strava", "1", START, name="Tempo"))
    assert first.created and first.day == date(2024, 5, 19)
    stamp = (await rows(db, user))[0]["updated_stamp"]

    again = await save(db, user, imported("strava", "1", START, name="Tempo"))
    assert (again.activity_id, again.created, again.changed) == (first.activity_id, False, False)
    assert (await rows(db, user))[0]["updated_stamp"] == stamp  # a re-delivery is not a change to sync

    renamed = await save(db, user, imported("strava", "1", START, name="Tempo run, windy"))
    assert renamed.changed and not renamed.created
    [row] = await rows(db, user)
    assert row["name"] == "Tempo run, windy" and row["updated_stamp"] > stamp


async def test_a_row_stored_without_its_source_link_is_still_found_by_external_id(db: Database) -> None:
    """Rows written before activity_sources existed have only their own (source, external_id)."""
    user = await new_user(db)
    first = await save(db, user, imported("strava", "1", START, name="Tempo"))
    await db.execute("DELETE FROM activity_sources WHERE activity_id = $1", first.activity_id)
    again = await save(db, user, imported("strava", "1", START + timedelta(hours=5), name="Tempo, later"))
    assert (again.activity_id, again.created) == (first.activity_id, False)
    assert [r["name"] for r in await rows(db, user)] == ["Tempo, later"]
    assert await sources(db, first.activity_id) == {("strava", "1")}  # linked again


async def test_the_same_workout_from_another_source_is_stored_once(db: Database) -> None:
    user = await new_user(db)
    from_file = await save(db, user, imported("file", "abc", START, distance_m=10_050, samples=600))
    from_strava = await save(
        db, user, imported("strava", "42", START + timedelta(seconds=20), duration_s=3590, distance_m=9_980, name="Run")
    )
    assert from_strava.activity_id == from_file.activity_id
    assert from_strava.merged and not from_strava.created
    [row] = await rows(db, user)
    assert (row["source"], row["external_id"]) == ("file", "abc")  # the file has streams: it stays the data
    assert row["name"] == "Run"  # ...but the poorer source fills what the file lacked
    assert row["distance_m"] == 10_050
    assert await sources(db, row["id"]) == {("file", "abc"), ("strava", "42")}
    # A later update from either source finds the same activity.
    assert (await save(db, user, imported("strava", "42", START, name="Long run"))).activity_id == row["id"]


async def test_a_richer_source_takes_over_an_activity(db: Database) -> None:
    user = await new_user(db)
    summary = await save(db, user, imported("garmin", "5001", START, avg_hr_bpm=140))
    detailed = await save(db, user, imported("strava", "77", START, samples=900, avg_hr_bpm=143, name="Morning Run"))
    assert detailed.activity_id == summary.activity_id and detailed.changed
    [row] = await rows(db, user)
    assert (row["source"], row["external_id"], row["avg_hr"]) == ("strava", "77", 143)
    streams = await activities.get_streams(db, user, row["id"], ["heart_rate"])
    assert streams is not None and len(streams) == 900


@pytest.mark.parametrize(
    ("offset_s", "duration_s", "distance_m", "source"),
    [
        (90, 3600, 10_000, "strava"),  # starts too far apart
        (5, 7200, 10_000, "strava"),  # twice as long
        (5, 3600, 21_000, "strava"),  # twice as far
        (5, 3600, 10_000, "garmin"),  # the same source twice: two workouts, however close
    ],
)
async def test_different_workouts_are_not_merged(
    db: Database, offset_s: int, duration_s: float, distance_m: float, source: str
) -> None:
    user = await new_user(db)
    await save(db, user, imported("garmin", "1", START))
    other = await save(
        db,
        user,
        imported(source, "2", START + timedelta(seconds=offset_s), duration_s=duration_s, distance_m=distance_m),
    )
    assert other.created and not other.merged
    assert len(await rows(db, user)) == 2


async def test_the_users_own_entries_are_never_matched(db: Database) -> None:
    user = await new_user(db)
    from trainer.sync.writes import upsert_server_row

    async with db.transaction() as tx:
        await upsert_server_row(
            tx, user, "activities", {"start_time": int(START.timestamp() * 1000), "duration_s": 3600.0}
        )
    result = await save(db, user, imported("strava", "9", START))
    assert result.created
    assert len(await rows(db, user)) == 2


async def test_two_sources_arriving_together_create_one_activity(db: Database) -> None:
    user = await new_user(db)
    results = await asyncio.gather(
        save(db, user, imported("garmin", "g1", START)),
        save(db, user, imported("strava", "s1", START + timedelta(seconds=3))),
        save(db, user, imported("file", "f1", START + timedelta(seconds=1), samples=300)),
    )
    assert len({r.activity_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(await sources(db, results[0].activity_id)) == 3


async def test_deleting_one_source_keeps_a_workout_another_source_has(db: Database) -> None:
    user = await new_user(db)
    kept = await save(db, user, imported("strava", "s", START, samples=300))
    await save(db, user, imported("garmin", "g", START))
    async with db.transaction() as tx:
        assert await activities.delete_by_external(tx, user, "strava", "s") is None
    [row] = await rows(db, user)
    assert row["id"] == kept.activity_id and (row["source"], row["external_id"]) == ("garmin", "g")
    async with db.transaction() as tx:
        assert await activities.delete_by_external(tx, user, "garmin", "g") == date(2024, 5, 19)
        assert await activities.delete_by_external(tx, user, "garmin", "g") is None  # already gone
    assert await rows(db, user) == []
    tombstone = await db.fetchval(
        "SELECT row_id FROM sync_tombstones WHERE table_name = 'activities' AND user_id = $1", user
    )
    assert tombstone == kept.activity_id  # devices that pull later delete their copy
    assert await db.fetchval("SELECT count(*) FROM activity_streams WHERE user_id = $1", user) == 0


async def test_delete_all_from_source_leaves_what_others_also_delivered(db: Database) -> None:
    user = await new_user(db)
    await save(db, user, imported("strava", "only", START))
    shared = await save(db, user, imported("strava", "both", START + timedelta(days=1)))
    await save(db, user, imported("file", "f", START + timedelta(days=1)))
    async with db.transaction() as tx:
        days = await activities.delete_all_from_source(tx, user, "strava")
    assert days == [date(2024, 5, 19)]
    [row] = await rows(db, user)
    assert row["id"] == shared.activity_id and row["source"] == "file"


async def test_streams_are_the_owners_only(db: Database) -> None:
    owner = await new_user(db, "owner@example.com")
    other = await new_user(db, "other@example.com")
    with_streams = await save(db, owner, imported("file", "x", START, samples=1200))
    without = await save(db, owner, imported("strava", "y", START + timedelta(days=2)))

    streams = await activities.get_streams(db, owner, with_streams.activity_id, ["heart_rate"])
    assert streams is not None and len(streams) == 1200
    assert streams.speed_m_s is None and streams.heart_rate is not None  # only what was asked is decoded
    np.testing.assert_allclose(streams.heart_rate[:3], 130 + 10 * np.sin(np.arange(3) / 60), atol=0.5)
    assert await activities.get_streams(db, owner, without.activity_id) is None
    with pytest.raises(NotFound):
        await activities.get_streams(db, other, with_streams.activity_id)
    with pytest.raises(NotFound):
        await activities.get_streams(db, owner, "no-such-activity")


async def test_the_training_load_is_stored_with_the_activity(db: Database) -> None:
    user = await new_user(db)
    item = imported("file", "hr", START, samples=1800)
    load = load_for(UserSettings(hr_max=190, hr_rest=50), item)
    assert load is not None
    result = await save(db, user, item, load=load)
    row = await db.fetchrow(
        "SELECT trimp, hr_tss, training_load, analysis FROM activities WHERE id = $1", result.activity_id
    )
    assert row["training_load"] == pytest.approx(load.load) and row["trimp"] == pytest.approx(load.trimp)
    assert row["hr_tss"] == pytest.approx(load.hr_tss)
    assert row["analysis"]["load_source"] == "hr" and row["analysis"]["zone_names"] == load.zone_names

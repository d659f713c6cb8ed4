"""trainer.sync.writes: the server-side write API other code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.sync.conftest import changes, ids, raw, record
from trainer.errors import NotFound
from trainer.store.stamps import next_stamp
from trainer.sync.writes import delete_server_row, insert_server_row, patch_server_rows, upsert_server_row


async def test_a_server_write_reaches_every_device_including_the_last_editor(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    t_tablet = (await tablet.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "a1", avg_hr=150)]}), t0)
    async with db.transaction() as tx:
        assert await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "trimp": 91.5}) == "a1"
    for device, since in ((phone, t0), (tablet, t_tablet)):
        row = record(await device.pull(since), "activities", "a1")
        assert row["trimp"] == 91.5 and row["avg_hr"] == 150  # a patch: other columns kept


async def test_activities_are_identified_by_source_and_external_id(phone, db):
    activity = {"source": "garmin", "external_id": "g-77", "start_time": dt.datetime(2024, 5, 1, 6, tzinfo=dt.UTC)}
    async with db.transaction() as tx:
        first = await upsert_server_row(tx, phone.user_id, "activities", activity)
    async with db.transaction() as tx:
        second = await upsert_server_row(tx, phone.user_id, "activities", {**activity, "name": "Morning run"})
    assert first == second
    row = await db.fetchrow("SELECT name, start_time FROM activities WHERE id = $1", first)
    assert row == {"name": "Morning run", "start_time": 1_714_543_200_000}


async def test_a_new_row_under_a_fresh_id_reaches_devices_as_created(phone, tablet, db):
    t0 = (await tablet.pull(None))["timestamp"]
    activity = {"source": "strava", "external_id": "s-1", "start_time": dt.datetime(2024, 5, 2, 7, tzinfo=dt.UTC)}
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        row_id = await insert_server_row(tx, phone.user_id, "activities", {**activity, "trimp": 40.0}, stamp=stamp)
    pulled = await tablet.pull(t0)
    assert ids(pulled, "activities", "created") == [row_id]
    assert record(pulled, "activities", row_id)["trimp"] == 40.0
    async with db.transaction() as tx:
        with pytest.raises(ValueError, match="makes its own id"):
            await insert_server_row(tx, phone.user_id, "activities", {"id": row_id, **activity}, stamp=stamp)
        with pytest.raises(ValueError, match="needs"):
            await insert_server_row(
                tx, phone.user_id, "activities", {"source": "strava", "external_id": "s-2"}, stamp=stamp
            )


async def test_one_stamp_for_a_batch_and_deletion_cascades(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        await upsert_server_row(tx, phone.user_id, "training_plans", {"id": "p1", "name": "10k"}, stamp=stamp)
        for day in (1, 2, 3):
            await upsert_server_row(
                tx,
                phone.user_id,
                "scheduled_workouts",
                {"id": f"w{day}", "plan_id": "p1", "day": dt.date(2024, 6, day), "adaptation_reason": None},
                stamp=stamp,
            )
    assert await db.fetchval("SELECT count(DISTINCT updated_stamp) FROM scheduled_workouts") == 1
    t1 = (await phone.pull(t0))["timestamp"]
    async with db.transaction() as tx:
        assert await delete_server_row(tx, phone.user_id, "training_plans", "p1") is True
        assert await delete_server_row(tx, phone.user_id, "training_plans", "p1") is False
    pulled = await phone.pull(t1)
    assert ids(pulled, "training_plans", "deleted") == ["p1"]
    assert ids(pulled, "scheduled_workouts", "deleted") == ["w1", "w2", "w3"]


async def test_server_writes_are_checked_strictly(phone, intruder, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, intruder.user_id, "training_plans", {"id": "theirs"})
    bad = [
        ("activities", {"id": "a1", "start_time": 1, "avg_hr": float("nan")}),
        ("activities", {"id": "a1", "start_time": 1, "sport": 7}),
        ("activities", {"id": "a1", "start_time": 1, "password_hash": "x"}),
        ("activities", {"id": "a1", "duration_s": 5}),  # a new activity needs start_time
        ("activities", {"id": "bad id", "start_time": 1}),
        ("daily_metrics", {"id": "m1", "day": "01/02/2024"}),
        ("scheduled_workouts", {"id": "w1", "day": "2024-01-01", "plan_id": "theirs"}),
        ("users", {"id": "u"}),
    ]
    for table, row in bad:
        with pytest.raises((ValueError, KeyError, NotFound)):
            async with db.transaction() as tx:
                await upsert_server_row(tx, phone.user_id, table, row)
    with pytest.raises(NotFound):
        async with db.transaction() as tx:
            await upsert_server_row(tx, phone.user_id, "training_plans", {"id": "theirs", "name": "mine now"})
    assert await db.fetchval("SELECT name FROM training_plans WHERE id = 'theirs'") == ""
    assert await db.fetchval("SELECT count(*) FROM activities") == 0


async def test_bulk_patches_reach_every_device_and_skip_other_users_rows(phone, intruder, db):
    t0 = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        for i in range(3):
            await upsert_server_row(
                tx, phone.user_id, "activities", {"id": f"a{i}", "start_time": 1_700_000_000_000}, stamp=stamp
            )
        other = await next_stamp(tx, intruder.user_id)
        await upsert_server_row(
            tx, intruder.user_id, "activities", {"id": "theirs", "start_time": 1_700_000_000_000}, stamp=other
        )
    t1 = (await phone.pull(t0))["timestamp"]
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        patches = [{"id": f"a{i}", "trimp": 10.0 * i, "training_load": 5.0 * i} for i in range(3)]
        await patch_server_rows(
            tx,
            phone.user_id,
            "activities",
            [*patches, {"id": "theirs", "trimp": 1.0, "training_load": 1.0}],
            stamp=stamp,
        )
    pulled = await phone.pull(t1)
    assert sorted((r["id"], r["trimp"]) for r in pulled["changes"]["activities"]["updated"]) == [
        ("a0", 0.0),
        ("a1", 10.0),
        ("a2", 20.0),
    ]
    assert (await db.fetchrow("SELECT trimp FROM activities WHERE id = 'theirs'"))["trimp"] is None

"""Tombstone retention: purged after tombstone_retention_days, and what that means for stale devices."""

from __future__ import annotations

from tests.sync.conftest import changes, ids, raw
from trainer import clock
from trainer.sync.retention import purge_expired
from trainer.sync.writes import delete_server_row, upsert_server_row

DAY_S = 86_400


async def test_expired_tombstones_are_purged_and_stale_devices_reset(phone, tablet, db, settings):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "keep", "start_time": 1})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "gone", "start_time": 1})
    stale = (await tablet.pull(None))["timestamp"]
    async with db.transaction() as tx:
        await delete_server_row(tx, phone.user_id, "activities", "gone")
    fresh = (await phone.pull(None))["timestamp"]
    assert await purge_expired(db, settings.tombstone_retention_days) == 0  # too young
    with clock.shifted((settings.tombstone_retention_days + 1) * DAY_S):
        assert await purge_expired(db, settings.tombstone_retention_days) == 1
    assert await db.fetchval("SELECT count(*) FROM sync_tombstones") == 0
    # a device that pulled after the deletion is unaffected
    assert (await phone.pull(fresh))["resetRequired"] is False
    # the tablet may have missed the deletion: full snapshot, reset
    pulled = await tablet.pull(stale)
    assert pulled["resetRequired"] is True and ids(pulled, "activities", "created") == ["keep"]
    # and it cannot push on its stale timestamp (it could resurrect what was deleted)
    status, _ = await tablet.push_raw(changes(activities={"updated": [raw("activities", "gone")]}), stale)
    assert status == 409


async def test_a_push_purges_the_pushing_users_expired_tombstones(phone, db, settings):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "gone", "start_time": 1})
        await delete_server_row(tx, phone.user_id, "activities", "gone")
    age_ms = (settings.tombstone_retention_days + 1) * DAY_S * 1000
    await db.execute("UPDATE sync_tombstones SET deleted_stamp = deleted_stamp - $1", age_ms)  # an old deletion
    t = (await phone.pull(None))["timestamp"]
    await phone.push(changes(daily_metrics={"created": [raw("daily_metrics", "m1")]}), t)
    assert await db.fetchval("SELECT count(*) FROM sync_tombstones") == 0

"""sync.pullChanges: every pull rule of the WatermelonDB contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from tests.helpers import call, data, error_code
from tests.sync.conftest import changes, ids, raw, record
from trainer.store.stamps import next_stamp
from trainer.sync.tables import TABLES
from trainer.sync.writes import delete_server_row, upsert_server_row


async def test_first_sync_is_every_table_with_three_arrays_and_a_positive_integer_timestamp(phone):
    pulled = await phone.pull(None)
    assert set(pulled["changes"]) == set(TABLES)
    for entry in pulled["changes"].values():
        assert entry == {"created": [], "updated": [], "deleted": []}
    assert isinstance(pulled["timestamp"], int) and pulled["timestamp"] > 0
    assert pulled["resetRequired"] is False


async def test_null_words_from_a_query_string_mean_first_sync(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1})
    for value in (None, 0, "null", "undefined"):
        pulled = await phone.pull(value)
        assert ids(pulled, "activities", "created") == ["a1"], value


async def test_first_sync_sends_all_rows_as_created_in_client_types(phone, db):
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        await upsert_server_row(
            tx,
            phone.user_id,
            "activities",
            {
                "id": "a1",
                "source": "garmin",
                "external_id": "g-1",
                "start_time": 1_700_000_000_000,
                "duration_s": 3600,
                "manual": True,
                "trimp": 80.5,
                "analysis": {"zones": [1, 2]},
            },
            stamp=stamp,
        )
        await upsert_server_row(
            tx, phone.user_id, "training_plans", {"id": "p1", "race_date": "2024-09-01"}, stamp=stamp
        )
        await upsert_server_row(
            tx, phone.user_id, "scheduled_workouts", {"id": "w1", "plan_id": "p1", "day": "2024-06-01"}, stamp=stamp
        )
        await upsert_server_row(tx, phone.user_id, "daily_metrics", {"id": "m1", "day": "2024-06-01", "mood": 4})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "gone", "start_time": 5}, stamp=stamp)
        await delete_server_row(tx, phone.user_id, "activities", "gone", stamp=stamp)
    pulled = await phone.pull(None)
    activity = record(pulled, "activities", "a1")
    assert set(activity) == {"id", *TABLES["activities"].by_name}  # no _status/_changed, no external_id
    assert activity["start_time"] == 1_700_000_000_000
    assert activity["duration_s"] == 3600.0 and activity["manual"] is True and activity["trimp"] == 80.5
    assert json.loads(activity["analysis"]) == {"zones": [1, 2]}
    assert activity["source"] == "garmin"
    assert record(pulled, "training_plans", "p1")["race_date"] == "2024-09-01"
    assert record(pulled, "training_plans", "p1")["options"] == "{}"
    assert record(pulled, "scheduled_workouts", "w1")["plan_id"] == "p1"
    assert record(pulled, "daily_metrics", "m1")["mood"] == 4
    for entry in pulled["changes"].values():
        assert entry["updated"] == [] and entry["deleted"] == []  # turbo-login shape
    assert ids(pulled, "activities", "created") == ["a1"]


async def test_incremental_pull_splits_created_updated_deleted(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "old", "start_time": 1})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "doomed", "start_time": 1})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "quiet", "start_time": 1})
    first = await phone.pull(None)
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "old", "name": "renamed"})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "new", "start_time": 2})
        await delete_server_row(tx, phone.user_id, "activities", "doomed")
    pulled = await phone.pull(first["timestamp"])
    assert ids(pulled, "activities", "created") == ["new"]
    assert ids(pulled, "activities", "updated") == ["old"]
    assert ids(pulled, "activities", "deleted") == ["doomed"]
    assert record(pulled, "activities", "old")["name"] == "renamed"
    assert pulled["timestamp"] > first["timestamp"]
    again = await phone.pull(pulled["timestamp"])
    assert all(entry == {"created": [], "updated": [], "deleted": []} for entry in again["changes"].values())
    assert again["timestamp"] == pulled["timestamp"]


async def test_an_id_deleted_then_created_again_appears_once(phone, tablet, db):
    start = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "daily_metrics", {"id": "m1", "day": "2024-01-01"})
        await delete_server_row(tx, phone.user_id, "daily_metrics", "m1")
    await tablet.push(
        changes(daily_metrics={"created": [raw("daily_metrics", "m1")]}), (await tablet.pull(None))["timestamp"]
    )
    pulled = await phone.pull(start)
    entry = pulled["changes"]["daily_metrics"]
    assert [r["id"] for r in entry["created"]] == ["m1"] and entry["updated"] == [] and entry["deleted"] == []


async def test_a_device_is_not_sent_its_own_changes_but_other_devices_are(phone, tablet):
    t0 = (await phone.pull(None))["timestamp"]
    await tablet.pull(None)
    await phone.push(changes(activities={"created": [raw("activities", "run1", name="Tempo")]}), t0)
    own = await phone.pull(t0)
    assert ids(own, "activities", "created") == []  # WatermelonDB #649: no echo
    other = await tablet.pull(t0)
    assert ids(other, "activities", "created") == ["run1"]
    await phone.push(changes(activities={"deleted": ["run1"]}), own["timestamp"])
    assert ids(await phone.pull(own["timestamp"]), "activities", "deleted") == []
    assert ids(await tablet.pull(other["timestamp"]), "activities", "deleted") == ["run1"]


async def test_a_server_change_after_the_devices_own_change_is_never_lost(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "run1")]}), t0)
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "run1", "trimp": 42.0})
    pulled = await phone.pull(t0)
    # `updated`, not `created`: the phone created the row, so it holds it (no "already exists locally")
    assert ids(pulled, "activities", "updated") == ["run1"] and ids(pulled, "activities", "created") == []
    assert record(pulled, "activities", "run1")["trimp"] == 42.0


async def test_a_value_the_server_cleaned_goes_back_to_the_pushing_device(phone):
    t0 = (await phone.pull(None))["timestamp"]
    pushed = raw("activities", "run1", name="x" * 500, avg_hr=999, trimp=12345)
    await phone.push(changes(activities={"created": [pushed]}), t0)
    back = record(await phone.pull(t0), "activities", "run1")
    assert back["name"] == "x" * 200 and back["avg_hr"] is None and back["trimp"] is None


async def test_device_unknown_gets_everything_changed(client, phone):
    from tests.sync.conftest import sign_in

    anonymous = await sign_in(client, "athlete@example.com", None)
    t0 = (await anonymous.pull(None))["timestamp"]
    await anonymous.push(changes(activities={"created": [raw("activities", "run1")]}), t0)
    assert ids(await anonymous.pull(t0), "activities", "created") == ["run1"]


async def test_streams_are_never_pulled(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1})
        await tx.execute(
            "INSERT INTO activity_streams (activity_id, user_id, codec_version, sample_count, data) "
            "VALUES ($1, $2, 1, 3, $3)",
            "a1",
            phone.user_id,
            b"\x00\x01\x02",
        )
    pulled = await phone.pull(None)
    assert set(pulled["changes"]) == set(TABLES)
    assert "activity_streams" not in json.dumps(pulled)


async def test_migration_sends_whole_new_tables_and_rows_with_values_in_new_columns(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "training_plans", {"id": "p1", "name": "Marathon"})
        await upsert_server_row(tx, phone.user_id, "training_plans", {"id": "p2"})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1, "rpe": 7})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a2", "start_time": 1})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a3", "start_time": 1, "device": "Edge"})
    t0 = (await phone.pull(None))["timestamp"]
    migration = {
        "from": 1,
        "tables": ["training_plans", "no_such_table"],
        "columns": [
            {"table": "activities", "columns": ["rpe", "password_hash", "user_id"]},
            {"table": "users", "columns": ["email"]},
        ],
    }
    pulled = await phone.pull(t0, migration=migration)
    assert ids(pulled, "training_plans", "created") == ["p1", "p2"]
    assert ids(pulled, "activities", "updated") == ["a1"]  # only the non-default rpe; a3's device was not asked for
    assert "users" not in pulled["changes"]


async def test_a_device_older_than_the_purge_horizon_gets_a_full_snapshot_with_reset(phone, db):
    from trainer.sync.retention import purge_user

    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "keep", "start_time": 1})
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "gone", "start_time": 1})
    stale = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        await delete_server_row(tx, phone.user_id, "activities", "gone")
    async with db.transaction() as tx:
        assert await purge_user(tx, phone.user_id, before=2**62) == 1
    pulled = await phone.pull(stale)
    assert pulled["resetRequired"] is True
    assert ids(pulled, "activities", "created") == ["keep"]
    assert all(e["updated"] == [] and e["deleted"] == [] for e in pulled["changes"].values())
    after = await phone.pull(pulled["timestamp"])
    assert after["resetRequired"] is False


async def test_a_timestamp_this_server_never_issued_gets_a_full_snapshot(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1})
    now = (await phone.pull(None))["timestamp"]
    pulled = await phone.pull(now + 10**9)  # e.g. the database was restored from an older backup
    assert pulled["resetRequired"] is True and ids(pulled, "activities", "created") == ["a1"]


async def test_bad_pull_input_is_a_clear_400(phone):
    status, body = await call(phone.client, "sync.pullChanges", {"lastPulledAt": "yesterday"}, token=phone.token)
    assert status == 400 and error_code(body) == "BAD_REQUEST"
    status, body = await call(phone.client, "sync.pullChanges", {"lastPulledAt": None})
    assert status == 401 and error_code(body) == "UNAUTHORIZED"


async def test_pull_in_a_batch_request_is_whole(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1})
    resp = await phone.client.get(
        "/trpc/sync.pullChanges,user.getProfile",
        params={"batch": "1", "input": json.dumps({"0": {"lastPulledAt": None}})},
        headers={"Authorization": f"Bearer {phone.token}"},
    )
    assert resp.status == 200
    first, second = await resp.json()
    assert ids(data(first), "activities", "created") == ["a1"]
    assert data(second)["email"] == "athlete@example.com"

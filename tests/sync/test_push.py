"""sync.pushChanges: every push rule of the WatermelonDB contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from tests.helpers import error_code
from tests.sync.conftest import changes, ids, raw, record
from trainer.sync.writes import delete_server_row, upsert_server_row


async def _row(db, table: str, row_id: str) -> dict | None:
    return await db.fetchrow(f"SELECT * FROM {table} WHERE id = $1", row_id)


async def _tombstone(db, table: str, row_id: str) -> dict | None:
    return await db.fetchrow("SELECT * FROM sync_tombstones WHERE table_name = $1 AND row_id = $2", table, row_id)


async def test_created_is_an_upsert_so_a_lost_confirmation_can_be_pushed_again(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    record_v1 = raw("activities", "run1", name="Easy")
    await phone.push(changes(activities={"created": [record_v1]}), t0)
    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(changes(activities={"created": [{**record_v1, "name": "Easy run"}]}), t1)
    row = await _row(db, "activities", "run1")
    assert row["name"] == "Easy run" and row["user_id"] == phone.user_id and row["changed_by_device"] == "phone-1"
    assert row["created_stamp"] < row["updated_stamp"]


async def test_a_re_push_of_its_own_change_with_an_old_timestamp_is_not_a_conflict(phone):
    t0 = (await phone.pull(None))["timestamp"]
    record_v1 = raw("activities", "run1")
    await phone.push(changes(activities={"created": [record_v1]}), t0)
    await phone.push(changes(activities={"created": [record_v1]}), t0)  # the first 200 never reached the app


async def test_updated_that_does_not_exist_is_created(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(daily_metrics={"updated": [raw("daily_metrics", "m1", mood=3)]}), t0)
    assert (await _row(db, "daily_metrics", "m1"))["mood"] == 3


async def test_updated_that_the_server_deleted_is_a_conflict_and_nothing_is_applied(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "run1")]}), t0)
    t1 = (await tablet.pull(None))["timestamp"]
    await tablet.push(changes(activities={"deleted": ["run1"]}), t1)
    status, body = await phone.push_raw(
        changes(
            activities={"updated": [raw("activities", "run1", name="edited")]},
            daily_metrics={"created": [raw("daily_metrics", "m1")]},
        ),
        t1,
    )
    assert status == 409 and error_code(body) == "CONFLICT"
    assert body["error"]["data"]["conflicts"] == {"activities": ["run1"]}
    assert await _row(db, "daily_metrics", "m1") is None  # all or nothing
    assert await _row(db, "activities", "run1") is None


async def test_deleted_that_does_not_exist_is_ignored(phone):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"deleted": ["never-existed"]}), t0)


async def test_a_record_changed_on_the_server_since_last_pull_is_a_conflict(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "run1", name="A")]}), t0)
    tablet_t = (await tablet.pull(None))["timestamp"]
    phone_t = (await phone.pull(t0))["timestamp"]
    await tablet.push(changes(activities={"updated": [raw("activities", "run1", name="from tablet")]}), tablet_t)
    for kind, payload in (("updated", raw("activities", "run1", notes="phone")), ("deleted", "run1")):
        status, body = await phone.push_raw(changes(activities={kind: [payload]}), phone_t)
        assert status == 409 and error_code(body) == "CONFLICT", kind
    assert (await _row(db, "activities", "run1"))["name"] == "from tablet"
    # what synchronize() does next: pull (gets the tablet's change), then push again -> accepted
    pulled = await phone.pull(phone_t)
    assert record(pulled, "activities", "run1")["name"] == "from tablet"
    await phone.push(
        changes(activities={"updated": [raw("activities", "run1", name="from tablet", notes="phone")]}),
        pulled["timestamp"],
    )
    row = await _row(db, "activities", "run1")
    assert (row["name"], row["notes"]) == ("from tablet", "phone")


async def test_a_server_side_change_also_conflicts(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "run1")]}), t0)
    t1 = (await phone.pull(t0))["timestamp"]
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "run1", "trimp": 50.0})
    status, _ = await phone.push_raw(changes(activities={"updated": [raw("activities", "run1", rpe=5)]}), t1)
    assert status == 409


async def test_computed_columns_are_read_only(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "a1", "start_time": 1, "trimp": 10.0})
        await upsert_server_row(tx, phone.user_id, "training_plans", {"id": "p1", "current_phase": "base"})
        await upsert_server_row(
            tx, phone.user_id, "scheduled_workouts", {"id": "w1", "day": "2024-01-01", "adaptation_reason": "tired"}
        )
    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(
        changes(
            activities={"updated": [raw("activities", "a1", trimp=999, hr_tss=1, training_load=2, analysis="{}")]},
            training_plans={"updated": [raw("training_plans", "p1", current_phase="race", name="mine")]},
            scheduled_workouts={"updated": [raw("scheduled_workouts", "w1", day="2024-01-01", adaptation_reason="x")]},
        ),
        t1,
    )
    activity = await _row(db, "activities", "a1")
    assert activity["trimp"] == 10.0 and activity["hr_tss"] is None and activity["analysis"] is None
    plan = await _row(db, "training_plans", "p1")
    assert plan["current_phase"] == "base" and plan["name"] == "mine"
    assert (await _row(db, "scheduled_workouts", "w1"))["adaptation_reason"] == "tired"
    # the device holds wrong copies of computed values, so the rows come back to it
    back = await phone.pull(t1)
    assert ids(back, "activities", "updated") == ["a1"] and record(back, "activities", "a1")["trimp"] == 10.0


async def test_slightly_wrong_values_are_cleaned_not_rejected(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    activity = raw(
        "activities",
        "a1",
        name="n" * 1000,
        notes="nul\x00byte",
        duration_s="3600",  # numeric string
        avg_hr=400,  # impossible measurement -> null
        rpe=15,  # user scale -> clamped
        manual="true",
        utc_offset_s=7200.4,
        distance_m=float("1e300"),
        device=12345,
        sport={"not": "a string"},
        brand_new_column="ignored",
    )
    plan = raw("training_plans", "p1", options="not json", race_date="2024-13-45", start_date="2024-06-01T08:00:00Z")
    plan2 = raw("training_plans", "p2", options='{"note": "a\\u0000b", "k\\u0000": [1]}', name="x\x00y")
    workout = raw("scheduled_workouts", "w1", kind="yoga", target_load=-5, plan_id="p1")
    metric = raw("daily_metrics", "m1", soreness=0, sleep_score=120, hrv_rmssd_ms="abc")
    pushed = changes(
        activities={"created": [activity]},
        training_plans={"created": [plan, plan2]},
        scheduled_workouts={"created": [workout]},
        daily_metrics={"created": [metric]},
        unknown_table={"created": [{"id": "zzz"}]},
    )
    result = await phone.push(pushed, t0)
    assert result["experimentalRejectedIds"] is None
    a = await _row(db, "activities", "a1")
    assert len(a["name"]) == 200 and a["notes"] == "nulbyte" and a["duration_s"] == 3600.0
    assert a["avg_hr"] is None and a["rpe"] == 10 and a["manual"] is True and a["utc_offset_s"] == 7200
    assert a["distance_m"] is None and a["device"] == "12345" and a["sport"] == "other"
    p = await _row(db, "training_plans", "p1")
    assert p["options"] == {} and p["race_date"] is None and str(p["start_date"]) == "2024-06-01"
    p2 = await _row(db, "training_plans", "p2")  # NUL is stripped (PostgreSQL cannot store it), never refused
    assert p2["options"] == {"note": "ab", "k": [1]} and p2["name"] == "xy"
    w = await _row(db, "scheduled_workouts", "w1")
    assert w["kind"] == "easy" and w["target_load"] is None and w["plan_id"] == "p1"
    m = await _row(db, "daily_metrics", "m1")
    assert m["soreness"] == 1 and m["sleep_score"] == 100 and m["hrv_rmssd_ms"] is None


async def test_a_record_without_a_usable_required_value_is_rejected_alone(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    result = await phone.push(
        changes(
            daily_metrics={"created": [raw("daily_metrics", "bad", day=""), raw("daily_metrics", "good")]},
            activities={"created": [raw("activities", "nostart", start_time="soon")]},
        ),
        t0,
    )
    assert result["experimentalRejectedIds"] == {"activities": ["nostart"], "daily_metrics": ["bad"]}
    assert await _row(db, "daily_metrics", "good") is not None
    assert await _row(db, "daily_metrics", "bad") is None
    # an existing row keeps its value instead
    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(changes(daily_metrics={"updated": [raw("daily_metrics", "good", day="garbage", mood=2)]}), t1)
    row = await _row(db, "daily_metrics", "good")
    assert str(row["day"]) == "2024-05-01" and row["mood"] == 2


async def test_malformed_ids_refuse_the_whole_push(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    for bad in ("has space", "x" * 65, "", 17, None):
        status, body = await phone.push_raw(
            changes(activities={"created": [raw("activities", "ok1"), raw("activities", bad)]}), t0
        )
        assert status == 400 and error_code(body) == "BAD_REQUEST", bad
    status, _ = await phone.push_raw(changes(activities={"deleted": ["../etc"]}), t0)
    assert status == 400
    assert await _row(db, "activities", "ok1") is None


async def test_deleting_a_plan_deletes_and_tombstones_its_workouts(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(
        changes(
            training_plans={"created": [raw("training_plans", "p1")]},
            scheduled_workouts={
                "created": [
                    raw("scheduled_workouts", "w1", plan_id="p1"),
                    raw("scheduled_workouts", "w2", plan_id="p1"),
                    raw("scheduled_workouts", "solo"),
                ]
            },
        ),
        t0,
    )
    t1 = (await phone.pull(t0))["timestamp"]
    tablet_t = (await tablet.pull(None))["timestamp"]
    await phone.push(changes(training_plans={"deleted": ["p1"]}), t1)
    assert await _row(db, "scheduled_workouts", "w1") is None and await _row(db, "scheduled_workouts", "solo")
    assert (await _tombstone(db, "scheduled_workouts", "w1"))["changed_by_device"] is None
    # the deleting device did not delete the children itself, so it must receive their deletion
    phone_pull = await phone.pull(t1)
    assert ids(phone_pull, "scheduled_workouts", "deleted") == ["w1", "w2"]
    assert ids(phone_pull, "training_plans", "deleted") == []
    tablet_pull = await tablet.pull(tablet_t)
    assert ids(tablet_pull, "training_plans", "deleted") == ["p1"]
    assert ids(tablet_pull, "scheduled_workouts", "deleted") == ["w1", "w2"]


async def test_a_child_of_a_missing_parent_is_dropped_so_no_orphans(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(training_plans={"created": [raw("training_plans", "p1")]}), t0)
    tablet_t = (await tablet.pull(None))["timestamp"]
    phone_t = (await phone.pull(t0))["timestamp"]
    await tablet.push(changes(training_plans={"deleted": ["p1"]}), tablet_t)
    # the phone, offline, added a workout to the plan the tablet deleted
    pulled = await phone.pull(phone_t)
    assert ids(pulled, "training_plans", "deleted") == ["p1"]
    await phone.push(
        changes(scheduled_workouts={"created": [raw("scheduled_workouts", "w9", plan_id="p1")]}), pulled["timestamp"]
    )
    assert await _row(db, "scheduled_workouts", "w9") is None
    assert ids(await phone.pull(pulled["timestamp"]), "scheduled_workouts", "deleted") == ["w9"]


async def test_an_unknown_completed_activity_is_cleared_and_deleting_one_clears_references(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(
        changes(
            activities={"created": [raw("activities", "a1")]},
            scheduled_workouts={
                "created": [
                    raw("scheduled_workouts", "w1", completed_activity_id="a1", status="completed"),
                    raw("scheduled_workouts", "w2", completed_activity_id="nope"),
                ]
            },
        ),
        t0,
    )
    assert (await _row(db, "scheduled_workouts", "w1"))["completed_activity_id"] == "a1"
    assert (await _row(db, "scheduled_workouts", "w2"))["completed_activity_id"] is None
    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(changes(activities={"deleted": ["a1"]}), t1)
    assert (await _row(db, "scheduled_workouts", "w1"))["completed_activity_id"] is None
    pulled = await phone.pull(t1)
    assert ids(pulled, "scheduled_workouts", "updated") == ["w1"]
    assert record(pulled, "scheduled_workouts", "w1")["completed_activity_id"] is None


async def test_record_and_byte_limits_are_clear_413s(client, phone, settings, db):
    t0 = (await phone.pull(None))["timestamp"]
    too_many = [raw("daily_metrics", f"m{i}") for i in range(settings.sync_max_push_records + 1)]
    status, body = await phone.push_raw(changes(daily_metrics={"created": too_many}), t0)
    assert status == 413 and error_code(body) == "PAYLOAD_TOO_LARGE"
    assert "5000" in body["error"]["message"]
    big = raw("activities", "a1", notes="x" * settings.sync_max_push_bytes)
    status, body = await phone.push_raw(changes(activities={"created": [big]}), t0)
    assert status == 413 and error_code(body) == "PAYLOAD_TOO_LARGE"
    # bigger than the ordinary body limit but within the sync limit is fine
    fine = raw("activities", "a2", notes="y" * 9_000)
    many = [raw("daily_metrics", f"d{i}", notes="z" * 400) for i in range(3_000)]
    size = len(json.dumps({"changes": changes(activities={"created": [fine]}, daily_metrics={"created": many})}))
    assert settings.max_body_bytes < size < settings.sync_max_push_bytes
    await phone.push(changes(activities={"created": [fine]}, daily_metrics={"created": many}), t0)
    assert await db.fetchval("SELECT count(*) FROM daily_metrics") == 3_000


async def test_push_needs_a_timestamp_from_a_pull(phone):
    t0 = (await phone.pull(None))["timestamp"]
    pushed = changes(activities={"created": [raw("activities", "a1")]})
    for stale in (None, 0, t0 + 2**52):  # never pulled, or a timestamp this server never issued
        status, body = await phone.push_raw(pushed, stale)
        assert status == 409 and error_code(body) == "CONFLICT", stale


async def test_two_records_for_one_day_are_both_kept(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    tablet_t = (await tablet.pull(None))["timestamp"]
    await phone.push(changes(daily_metrics={"created": [raw("daily_metrics", "m-phone", mood=4)]}), t0)
    await tablet.push(changes(daily_metrics={"created": [raw("daily_metrics", "m-tablet", soreness=3)]}), tablet_t)
    assert await db.fetchval("SELECT count(*) FROM daily_metrics WHERE day = '2024-05-01'") == 2
    assert ids(await phone.pull(t0), "daily_metrics", "created") == ["m-tablet"]


async def test_re_creating_an_id_deleted_before_the_last_pull_is_allowed(phone, db):
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "daily_metrics", {"id": "m1", "day": "2024-01-01"})
        await delete_server_row(tx, phone.user_id, "daily_metrics", "m1")
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(daily_metrics={"created": [raw("daily_metrics", "m1")]}), t0)
    assert await _row(db, "daily_metrics", "m1") is not None
    assert await _tombstone(db, "daily_metrics", "m1") is None

"""A second user's token can neither read nor change the first user's rows through sync."""

from __future__ import annotations

import json

from tests.helpers import error_code
from tests.sync.conftest import changes, ids, raw


async def _seed(phone) -> int:
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(
        changes(
            activities={"created": [raw("activities", "victim-run", name="secret run")]},
            training_plans={"created": [raw("training_plans", "victim-plan")]},
            daily_metrics={"created": [raw("daily_metrics", "victim-gone")]},
        ),
        t0,
    )
    t1 = (await phone.pull(t0))["timestamp"]
    await phone.push(changes(daily_metrics={"deleted": ["victim-gone"]}), t1)
    return t1


async def test_pulls_see_only_the_callers_rows(phone, intruder):
    await _seed(phone)
    first = await intruder.pull(None)
    assert all(entry == {"created": [], "updated": [], "deleted": []} for entry in first["changes"].values())
    assert "victim" not in json.dumps(await intruder.pull(1))


async def test_pushing_another_users_ids_is_refused_like_any_bad_id(phone, intruder, db):
    await _seed(phone)
    t = (await intruder.pull(None))["timestamp"]
    _, malformed = await intruder.push_raw(changes(activities={"created": [raw("activities", "bad id!")]}), t)
    attempts = [
        changes(activities={"updated": [raw("activities", "victim-run", name="pwned")]}),
        changes(activities={"created": [raw("activities", "victim-run", name="pwned")]}),
        changes(activities={"deleted": ["victim-run"]}),
        changes(daily_metrics={"created": [raw("daily_metrics", "victim-gone")]}),  # the victim's tombstone
        changes(
            activities={"created": [raw("activities", "mine")]},
            training_plans={"deleted": ["victim-plan"]},
        ),
    ]
    for attempt in attempts:
        status, body = await intruder.push_raw(attempt, t)
        assert status == 400 and error_code(body) == "BAD_REQUEST", attempt
        assert body["error"]["message"] == malformed["error"]["message"]
        assert "victim" not in json.dumps(body) and "secret" not in json.dumps(body)
    row = await db.fetchrow("SELECT name, user_id FROM activities WHERE id = 'victim-run'")
    assert row == {"name": "secret run", "user_id": phone.user_id}
    assert await db.fetchval("SELECT count(*) FROM training_plans WHERE id = 'victim-plan'") == 1
    assert await db.fetchval("SELECT count(*) FROM activities WHERE id = 'mine'") == 0


async def test_references_to_another_users_rows_do_not_attach(phone, intruder, db):
    t_victim = await _seed(phone)
    t = (await intruder.pull(None))["timestamp"]
    await intruder.push(
        changes(
            scheduled_workouts={
                "created": [
                    raw("scheduled_workouts", "sneaky", plan_id="victim-plan"),
                    raw("scheduled_workouts", "linked", completed_activity_id="victim-run"),
                ]
            }
        ),
        t,
    )
    assert await db.fetchval("SELECT count(*) FROM scheduled_workouts WHERE plan_id = 'victim-plan'") == 0
    assert await db.fetchval("SELECT completed_activity_id FROM scheduled_workouts WHERE id = 'linked'") is None
    pulled = await phone.pull(t_victim)
    assert ids(pulled, "scheduled_workouts", "created") == [] and ids(pulled, "scheduled_workouts", "deleted") == []

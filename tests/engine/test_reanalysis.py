"""Changing physiology settings re-analyses stored activities from their streams (both databases)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.engine.factories import at_noon_utc, make_user, state_rows
from tests.engine.fit_files import legs
from trainer import clock
from trainer.activity_load import load_for
from trainer.db import Database
from trainer.engine.reanalysis import after_settings_change, what_changed
from trainer.engine.recompute import recompute_user
from trainer.normalized import ImportedActivity
from trainer.profile import UserSettings
from trainer.store import users
from trainer.store.activities import save_imported

BEFORE = UserSettings(sex="male", hr_max=190, hr_rest=50, lthr=170)
AFTER = BEFORE.model_copy(update={"lthr": 160})
RUN_DAY = dt.date(2015, 8, 15)


def test_what_changed() -> None:
    assert what_changed(BEFORE, AFTER) == "activities"
    assert what_changed(BEFORE, BEFORE.model_copy(update={"zone_model": "lthr"})) == "activities"
    assert what_changed(BEFORE, BEFORE.model_copy(update={"timezone": "Asia/Tokyo"})) == "days"
    assert what_changed(BEFORE, BEFORE.model_copy(update={"display_name": "Sam", "units": "imperial"})) is None
    no_max = BEFORE.model_copy(update={"hr_max": None})
    assert what_changed(no_max, no_max.model_copy(update={"birth_year": 1980})) == "activities"  # Tanaka HRmax


async def _store(db: Database, user: str, imported: ImportedActivity) -> str:
    async with db.transaction() as tx:
        saved = await save_imported(tx, user, imported, load=load_for(BEFORE, imported))
    return saved.activity_id


async def test_new_lthr_reloads_activities_and_the_daily_state(db: Database) -> None:
    user = await make_user(db, **BEFORE.model_dump(mode="json"))
    run = legs("activity-small-fenix2-run.fit")[0]
    summary_only = ImportedActivity(
        activity=run.activity.model_copy(
            update={"external_id": "summary", "start_time": run.activity.start_time + dt.timedelta(days=1)}
        ),
    )
    ids = [await _store(db, user, run), await _store(db, user, summary_only)]
    with clock.frozen(at_noon_utc(RUN_DAY + dt.timedelta(days=2))):
        await recompute_user(db, user, None)
        before = await state_rows(db, user)
        await users.set_settings(db, user, AFTER.model_dump(mode="json"))
        result = await after_settings_change(db, user, BEFORE, AFTER)
        again = await after_settings_change(db, user, BEFORE, AFTER)
    assert result is not None and (result.examined, result.changed) == (2, 2)
    assert again is not None and again.changed == 0  # idempotent
    loads = {
        r["id"]: r["training_load"]
        for r in await db.fetch("SELECT id, training_load FROM activities WHERE user_id = $1", user)
    }
    assert loads[ids[0]] == pytest.approx(load_for(AFTER, run).load, rel=1e-12)  # type: ignore[union-attr]
    assert loads[ids[1]] == pytest.approx(load_for(AFTER, summary_only).load, rel=1e-12)  # type: ignore[union-attr]
    after = await state_rows(db, user)
    day = RUN_DAY.isoformat()
    assert after[day]["load"] == pytest.approx(loads[ids[0]]) and after[day]["load"] > before[day]["load"]
    assert result.recompute is not None and result.recompute.changed == 3

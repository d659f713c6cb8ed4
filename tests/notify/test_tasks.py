"""The delivery tasks on a Huey queue, run by a worker thread's runtime as `trainer worker` runs them."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from pathlib import Path

from huey import MemoryHuey

from tests.conftest import make_settings
from tests.fakes.expo import FakeExpo
from tests.fakes.ntfy import FakeNtfy
from tests.notify.conftest import NOTIFIERS, add_device, new_user, notifier_config
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest.runtime import WorkerRuntime
from trainer.notify.outbox import enqueue
from trainer.notify.tasks import DELIVER_TASK, PERIODIC_TASK, NotifyTasks
from trainer.plugin_host import CoreHost
from trainer.plugins import ENTRY_POINT_GROUP, discover

TOKEN = "ExponentPushToken[tasks-tasks-tasks-00000]"


async def notifiers_only(settings: Settings, secret: str, db: Database):
    host = CoreHost(settings, secret, db)
    ours = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name in NOTIFIERS]
    registry = discover(settings.plugins, host, entries=ours)
    return registry, host.close


async def test_a_rung_task_delivers_on_the_worker_runtime(
    tmp_path: Path, db_url: str, db: Database, expo: FakeExpo, ntfy: FakeNtfy
):
    settings = make_settings(tmp_path, db_url, plugins=notifier_config(expo, ntfy))
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN)
    async with db.transaction() as tx:
        await enqueue(tx, alice, "plan_adapted", "plan_adapted", {"changed": 2}, "plan:1")

    huey = MemoryHuey("notify-test", immediate=True)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as worker:  # the worker thread owns the runtime and its event loop
        runtime = await loop.run_in_executor(
            worker,
            lambda: WorkerRuntime.open(
                settings, ring=lambda ids: None, ring_later=lambda r, d: None, plugins=notifiers_only
            ),
        )
        try:
            tasks = NotifyTasks(huey, lambda: runtime)
            await loop.run_in_executor(worker, tasks.ring_now)  # immediate mode: runs the task in this thread
            await loop.run_in_executor(worker, tasks.ring_now)
        finally:
            await loop.run_in_executor(worker, runtime.close)

    assert [(m["to"], m["body"]) for m in expo.messages] == [(TOKEN, "2 workouts changed")]
    assert await db.fetchval("SELECT status FROM notifications") == "sent"


def test_the_tasks_are_registered_by_name_and_the_sweep_runs_every_minute():
    huey = MemoryHuey("notify-test")
    NotifyTasks(huey, lambda: None)  # type: ignore[arg-type, return-value]
    registered = {key.rsplit(".", 1)[-1] for key in huey._registry._registry}
    assert {DELIVER_TASK, PERIODIC_TASK} <= registered
    for minute in (0, 1, 34, 59):
        due = {t.name for t in huey.read_periodic(dt.datetime(2025, 6, 15, 12, minute))}
        assert PERIODIC_TASK in due

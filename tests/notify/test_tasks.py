"""Delivery on the queue: the `notify_deliver` task's job and a consumer's DeliveryLoop, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from huey import MemoryHuey

from tests.fakes.expo import FakeExpo
from tests.notify.conftest import add_device, new_user
from trainer.db import Database
from trainer.notify.outbox import enqueue
from trainer.notify.tasks import DELIVER_TASK, DeliveryLoop, NotifyTasks
from trainer.plugins import Registry

TOKEN = "ExponentPushToken[tasks-tasks-tasks-00000]"


@dataclass
class ConsumerContext:
    """The part of the ingest consumer's context the delivery jobs use."""

    db: Database
    plugins: Registry


async def plan_changed(db: Database, user_id: str, key: str) -> None:
    async with db.transaction() as tx:
        await enqueue(tx, user_id, "plan_adapted", "plan_adapted", {"changed": 2}, key)


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `check` until it holds (the loop under test runs in the background)."""
    for _ in range(int(timeout_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time limit")


async def wait_for_messages(expo: FakeExpo, count: int) -> None:
    await eventually(lambda: len(expo.messages) >= count)


async def test_the_rung_task_is_a_delivery_job(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN)
    await plan_changed(db, alice, "plan:1")
    huey = MemoryHuey("notify-test")
    tasks = NotifyTasks(huey)
    await tasks.ring()
    await tasks.ring()  # rung twice: the second run finds nothing left to send

    context = ConsumerContext(db, registry)
    for _ in range(2):  # what the consumer does with each dequeued task
        task = huey.dequeue()
        assert task.name == DELIVER_TASK
        job = task.execute()
        await job(context)
    assert huey.dequeue() is None
    assert [(m["to"], m["body"]) for m in expo.messages] == [(TOKEN, "2 workouts changed")]


async def test_a_nudge_delivers_at_once_and_the_period_catches_the_rest(
    db: Database, registry: Registry, expo: FakeExpo
):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN)
    loop = DeliveryLoop(ConsumerContext(db, registry), period_s=3600)
    stopping = asyncio.Event()
    running = asyncio.create_task(loop.run(stopping))
    try:
        await plan_changed(db, alice, "plan:1")
        for _ in range(5):
            loop.nudge()  # nudges while a run is under way coalesce
        await wait_for_messages(expo, 1)
    finally:
        stopping.set()
        await asyncio.wait_for(running, 5)
    assert len(expo.messages) == 1 and loop.runs <= 3

    periodic = DeliveryLoop(ConsumerContext(db, registry), period_s=0.05)
    stopping = asyncio.Event()
    running = asyncio.create_task(periodic.run(stopping))
    try:
        await plan_changed(db, alice, "plan:2")  # nobody nudges
        await wait_for_messages(expo, 2)
    finally:
        stopping.set()
        await asyncio.wait_for(running, 5)


async def test_a_failing_run_does_not_end_the_loop(db: Database, registry: Registry, expo: FakeExpo):
    class Broken:
        plugins = registry

        @property
        def db(self) -> Database:
            raise RuntimeError("database gone")

    loop = DeliveryLoop(Broken(), period_s=0.01)  # type: ignore[arg-type]
    stopping = asyncio.Event()
    running = asyncio.create_task(loop.run(stopping))
    await eventually(lambda: loop.runs >= 3)
    stopping.set()
    await asyncio.wait_for(running, 5)

"""Sync under concurrency, on SQLite and PostgreSQL: stamps follow commit order, so no pull misses a write."""

from __future__ import annotations

import asyncio
import json

from tests.sync.conftest import changes, ids, raw
from trainer.sync.pull import PullRequest, pull_json
from trainer.sync.writes import upsert_server_row


async def test_concurrent_pushes_from_two_devices_all_land_with_distinct_stamps(phone, tablet, db):
    t_phone = (await phone.pull(None))["timestamp"]
    t_tablet = (await tablet.pull(None))["timestamp"]
    pushes = [
        (phone if i % 2 else tablet).push_raw(
            changes(activities={"created": [raw("activities", f"a{i}")]}), t_phone if i % 2 else t_tablet
        )
        for i in range(12)
    ]
    results = await asyncio.gather(*pushes)
    assert [status for status, _ in results] == [200] * 12
    stamps = [r["updated_stamp"] for r in await db.fetch("SELECT updated_stamp FROM activities")]
    assert len(set(stamps)) == 12  # one transaction, one stamp: none shared, so none can hide behind another
    everything = await phone.pull(t_phone)
    # the phone gets exactly the tablet's six, never its own
    assert ids(everything, "activities", "created") == sorted(f"a{i}" for i in range(0, 12, 2))


async def test_concurrent_pushes_of_one_record_let_exactly_one_win(phone, tablet, db):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(activities={"created": [raw("activities", "shared")]}), t0)
    t_phone = (await phone.pull(t0))["timestamp"]
    t_tablet = (await tablet.pull(None))["timestamp"]
    results = await asyncio.gather(
        phone.push_raw(changes(activities={"updated": [raw("activities", "shared", name="phone")]}), t_phone),
        tablet.push_raw(changes(activities={"updated": [raw("activities", "shared", name="tablet")]}), t_tablet),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    winner = "phone" if results[0][0] == 200 else "tablet"
    assert (await db.fetchrow("SELECT name FROM activities WHERE id = 'shared'"))["name"] == winner


async def test_a_write_committing_after_a_pull_is_seen_by_the_next_pull(phone, db):
    """The watermark race: a server-side write holds its transaction open across a whole pull."""
    t0 = (await phone.pull(None))["timestamp"]
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "activities", {"id": "late", "start_time": 1})
        during = await asyncio.wait_for(phone.pull(t0), timeout=20)  # must neither block nor see it
        assert ids(during, "activities", "created") == []
    after = await phone.pull(during["timestamp"])
    assert ids(after, "activities", "created") == ["late"]


async def test_a_write_committing_while_a_pull_streams_is_seen_by_the_next_pull(phone, db):
    t0 = (await phone.pull(None))["timestamp"]
    stream = pull_json(db, PullRequest(phone.user_id, phone.device_id, t0))
    head = await anext(stream)  # the snapshot is open and the watermark taken
    async with db.transaction() as tx:
        await upsert_server_row(tx, phone.user_id, "daily_metrics", {"id": "m1", "day": "2024-02-02"})
    body = json.loads(head + b"".join([chunk async for chunk in stream]))
    assert ids(body, "daily_metrics", "created") == []
    assert ids(await phone.pull(body["timestamp"]), "daily_metrics", "created") == ["m1"]


async def test_pushes_and_server_writes_interleaved_lose_nothing(phone, tablet, db):
    """Many writers of one user at once; a device that keeps pulling ends with every row exactly once."""
    cursor = (await tablet.pull(None))["timestamp"]
    t_phone = (await phone.pull(None))["timestamp"]
    seen: list[str] = []

    async def server_writes() -> None:
        for i in range(8):
            async with db.transaction() as tx:
                await upsert_server_row(tx, phone.user_id, "daily_metrics", {"id": f"s{i}", "day": "2024-03-01"})
            await asyncio.sleep(0)

    async def phone_pushes() -> None:
        for i in range(8):
            await phone.push(changes(daily_metrics={"created": [raw("daily_metrics", f"p{i}")]}), t_phone)

    async def tablet_pulls() -> None:
        nonlocal cursor
        for _ in range(10):
            pulled = await tablet.pull(cursor)
            seen.extend(ids(pulled, "daily_metrics", "created") + ids(pulled, "daily_metrics", "updated"))
            cursor = pulled["timestamp"]

    await asyncio.gather(server_writes(), phone_pushes(), tablet_pulls())
    final = await tablet.pull(cursor)
    seen.extend(ids(final, "daily_metrics", "created"))
    assert sorted(seen) == sorted([f"s{i}" for i in range(8)] + [f"p{i}" for i in range(8)])

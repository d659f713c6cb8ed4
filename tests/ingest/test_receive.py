"""Recording webhook events: group commit, replays inside one batch, and routing to users."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.ingest.conftest import connect
from tests.ingest.testplugin import NAME
from trainer.db import Database
from trainer.errors import InvalidInput
from trainer.ingest import inbox
from trainer.ingest.committer import GroupCommitter
from trainer.ingest.receive import Receiver
from trainer.plugins import NewEvent
from trainer.store import accounts


def ev(object_id: str, external: str = "ext-1", key: str | None = None) -> NewEvent:
    return NewEvent("activity", external, object_id, 1716126040, f"{external}:{object_id}" if key is None else key)


class CountingDatabase:
    """The test's database, counting the commits made through it: transactions opened, and
    statements run on the database itself (each commits on its own)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.transactions = 0
        self.in_flight = self.most_in_flight = 0

    def transaction(self) -> Any:
        self.transactions += 1
        return self._db.transaction()

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.transactions += 1
        return await self._db.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        self.transactions += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._db.execute(sql, *args)
        finally:
            self.in_flight -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_concurrent_requests_share_commits(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    counting = CountingDatabase(db)
    rung: list[list[str]] = []

    async def doorbell(ids: Any) -> None:
        rung.append(list(ids))

    committer = GroupCommitter(counting, doorbell)  # type: ignore[arg-type]
    results = await asyncio.gather(*(committer.record(NAME, [(user_id, ev(f"o-{i}"))]) for i in range(50)))
    await committer.close()
    assert all(len(ids) == 1 for ids in results)
    assert len({ids[0] for ids in results}) == 50
    assert counting.transactions < 50  # requests that waited together committed together
    assert counting.most_in_flight == 1  # one batch at a time, the next gathering meanwhile
    assert sorted(i for ring in rung for i in ring) == sorted(ids[0] for ids in results)
    assert len(await inbox.list_rows(db, limit=100)) == 50


async def test_a_lone_event_rings_at_once_and_a_burst_rings_in_few_rings(db: Database) -> None:
    """The doorbell is rung at most every RING_INTERVAL_S: batches committed in between go
    together in the next ring, and none is left out."""
    from trainer.ingest import committer as committer_module

    user_id = await connect(db, "a@example.com", "ext-1")
    rung: list[tuple[float, list[str]]] = []
    loop = asyncio.get_running_loop()

    async def doorbell(ids: Any) -> None:
        rung.append((loop.time(), list(ids)))

    committer = GroupCommitter(db, doorbell)
    began = loop.time()
    first = await committer.record(NAME, [(user_id, ev("o-first"))])
    await asyncio.sleep(0)
    assert rung and rung[0][1] == first and rung[0][0] - began < committer_module.RING_INTERVAL_S
    recorded = list(first)
    for i in range(20):  # one commit at a time, each one ringing
        recorded += await committer.record(NAME, [(user_id, ev(f"o-{i}"))])
    await committer.close()
    assert sorted(i for _, ids in rung for i in ids) == sorted(recorded)
    times = [at for at, _ in rung]
    assert len(rung) < 21
    assert all(b - a >= committer_module.RING_INTERVAL_S * 0.9 for a, b in itertools.pairwise(times))


async def test_a_replay_in_the_same_batch_is_recorded_once(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    committer = GroupCommitter(db, None)
    first, second = await asyncio.gather(
        committer.record(NAME, [(user_id, ev("o-1"))]), committer.record(NAME, [(user_id, ev("o-1"))])
    )
    assert sorted([len(first), len(second)]) == [0, 1]
    assert len(await inbox.list_rows(db)) == 1


async def test_an_implausible_event_refuses_only_its_own_request(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    committer = GroupCommitter(db, None)
    good, bad = await asyncio.gather(
        committer.record(NAME, [(user_id, ev("o-1"))]),
        committer.record(NAME, [(user_id, ev("o-2", key=""))]),
        return_exceptions=True,
    )
    assert isinstance(bad, InvalidInput)
    assert isinstance(good, list) and len(good) == 1


async def test_events_route_to_their_users_and_new_connections_are_seen_at_once(db: Database) -> None:
    receiver = Receiver(db, GroupCommitter(db, None))
    receipt = await receiver.receive(NAME, [ev("o-1", "ext-9")])
    assert (receipt.recorded, receipt.unknown_users) == ([], 1)

    user_id = await connect(db, "late@example.com", "ext-9")  # connected right after: never missed
    receipt = await receiver.receive(NAME, [ev("o-1", "ext-9"), ev("o-2", "ext-9"), ev("o-3", "ext-0")])
    assert (len(receipt.recorded), receipt.duplicates, receipt.unknown_users) == (2, 0, 1)
    assert {r.user_id for r in await inbox.list_rows(db)} == {user_id}

    async with db.transaction() as tx:
        await accounts.delete(tx, user_id, NAME)
    # Remembered for a few seconds: recorded, and the pipeline ignores it (no account to process it for).
    receipt = await receiver.receive(NAME, [ev("o-4", "ext-9")])
    assert len(receipt.recorded) == 1
    assert (await Receiver(db, GroupCommitter(db, None)).receive(NAME, [ev("o-5", "ext-9")])).unknown_users == 1


async def test_a_request_right_after_a_commit_starts_its_own(db: Database) -> None:
    """The writer leaves when nobody waits; a request arriving just after must not wait for it."""
    user_id = await connect(db, "a@example.com", "ext-1")
    committer = GroupCommitter(db, None)
    async with asyncio.timeout(10):  # not wait_for: its extra task would give the writer time to leave
        for i in range(20):
            assert len(await committer.record(NAME, [(user_id, ev(f"o-{i}"))])) == 1


@pytest.mark.parametrize("count", [1, 450])
async def test_batches_of_any_size_are_one_commit(db: Database, count: int) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    counting = CountingDatabase(db)
    ids = await GroupCommitter(counting, None).record(  # type: ignore[arg-type]
        NAME, [(user_id, ev(f"o-{i}")) for i in range(count)]
    )
    assert len(ids) == count and counting.transactions == 1
    rows = await inbox.list_rows(db, limit=1000)
    assert sorted(r.id for r in rows) == sorted(ids)
    received = {r.received_at for r in rows}
    assert len(received) == 1
    assert sorted(ids) == ids  # arrival order is id order within a batch (the claim's tie-break)


async def test_two_servers_recording_overlapping_events_at_once_do_not_deadlock(db: Database, db_url: str) -> None:
    """A replay sent to the other server while the first still commits: same keys, opposite order."""
    from trainer.db import create_database

    user_id = await connect(db, "a@example.com", "ext-1")
    other = create_database(db_url, pool_size=2)
    await other.open()
    try:
        for round in range(3):
            events = [(user_id, ev(f"o-{round}-{i}")) for i in range(300)]
            one, two = await asyncio.gather(
                GroupCommitter(db, None).record(NAME, events), GroupCommitter(other, None).record(NAME, events[::-1])
            )
            assert len(one) + len(two) == 300  # each event recorded by exactly one of them
        assert len(await inbox.list_rows(db, limit=2000)) == 900
    finally:
        await other.close()

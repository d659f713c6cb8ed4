"""Group commit for webhook requests: concurrent requests share one commit.

Every webhook must be in the database before it is answered, and a commit costs the same round
trips whether it carries one event or a hundred (with SQLite it also holds the only write lock).
So requests do not each commit: they hand their events to the committer and wait. The committer
first lets the event loop take GATHER_STEPS more steps, so requests whose bytes have already
arrived are parsed and join, then writes everything waiting as one multi-row INSERT (up to
inbox.ROWS_PER_STATEMENT events, atomic on its own: a single trip to the database, no separate
BEGIN and COMMIT), answers every waiting request, and goes again while more wait. Alone, a request
commits after those few steps (microseconds on an idle loop); under load, batches grow, and a
commit's cost is mostly per statement and per page it touches, not per row.
Then it rings the queue for the batch in the background (the answer never waits for the doorbell),
at most every RING_INTERVAL_S: under load one ring carries the rows of many batches.

One batch is written at a time, on either database; requests arriving meanwhile make the next
batch. SQLite has one writer anyway. PostgreSQL could commit batches in parallel, but on a small
machine its CPU, not its flush latency, is the limit, and parallel writers split the same arrivals
into smaller batches: with two writers instead of one, batches halved (about 8 events instead of
16 at 32 concurrent senders), the server's CPU per request rose by a tenth and requests/s fell by
about 10-15 % in alternating runs (2026-11-27).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.db import Database
from trainer.ingest import inbox
from trainer.plugins import NewEvent

log = logging.getLogger("trainer.ingest")

GATHER_STEPS = 2
RING_INTERVAL_S = 0.02


@dataclass
class _Waiting:
    plugin: str
    events: Sequence[tuple[str, NewEvent]]
    done: asyncio.Future[list[str]]


class GroupCommitter:
    def __init__(self, db: Database, doorbell: inbox.Doorbell | None) -> None:
        self.db = db
        self.doorbell = doorbell
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._to_ring: list[str] = []
        self._ringer: asyncio.Task[None] | None = None
        self._last_ring = float("-inf")
        self.ring_failures = 0

    async def record(self, plugin: str, events: Sequence[tuple[str, NewEvent]]) -> list[str]:
        """Commit (user_id, event) pairs; returns the ids of the rows that were new (not replays).

        Events are checked here, before they join a batch: one implausible event refuses its own
        request, never the others it would have shared a transaction with.
        """
        for _user, event in events:
            inbox.check_event(event)
        done: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(plugin, events, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await done  # a cancelled request cancels only its own future; its batch still commits

    async def _write(self) -> None:
        try:
            await self._write_while_waiting()
        finally:
            # In the same step as the last look at the waiting list: a request arriving from now on
            # sees no writer and starts one (a done-callback would run a step later and leave that
            # request waiting for a writer that has already left).
            self._writer = None

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            for _ in range(GATHER_STEPS):  # requests the loop is about to parse join this batch
                await asyncio.sleep(0)
            batch = self._take()
            rows = [(w.plugin, user_id, event) for w in batch for user_id, event in w.events]
            try:
                ids = await self._insert(rows)
            except BaseException as exc:
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            start = 0
            for waiting in batch:
                mine = ids[start : start + len(waiting.events)]
                start += len(waiting.events)
                if not waiting.done.done():
                    waiting.done.set_result([row_id for row_id in mine if row_id is not None])
            self._ring([row_id for row_id in ids if row_id is not None])

    async def _insert(self, rows: list[tuple[str, str, NewEvent]]) -> list[str | None]:
        """One statement on the database; a single request with more events than one statement
        holds (a large Garmin push) gets a transaction of its own."""
        if len(rows) <= inbox.ROWS_PER_STATEMENT:
            return await inbox.insert_many(self.db, rows)
        async with self.db.transaction() as tx:
            return await inbox.insert_many(tx, rows)

    def _take(self) -> list[_Waiting]:
        batch, count = [], 0
        while self._waiting and (not batch or count + len(self._waiting[0].events) <= inbox.ROWS_PER_STATEMENT):
            waiting = self._waiting.pop(0)
            batch.append(waiting)
            count += len(waiting.events)
        return batch

    def _ring(self, row_ids: list[str]) -> None:
        """Ring for these rows in the background, at most once per RING_INTERVAL_S: rows committed
        meanwhile wait and go together in the next ring. A lone webhook rings at once; under load,
        each ring (a thread hop, a task, a commit to the queue) carries many batches instead of one."""
        if not row_ids or self.doorbell is None:
            return
        self._to_ring.extend(row_ids)
        if self._ringer is None or self._ringer.done():
            self._ringer = asyncio.create_task(self._ring_while_pending())

    async def _ring_while_pending(self) -> None:
        """A failed ring is only latency: the sweeper rings the rows later."""
        assert self.doorbell is not None
        loop = asyncio.get_running_loop()
        while self._to_ring:
            if (wait := self._last_ring + RING_INTERVAL_S - loop.time()) > 0:
                await asyncio.sleep(wait)
            row_ids, self._to_ring = self._to_ring, []
            self._last_ring = loop.time()
            try:
                await self.doorbell(row_ids)
            except Exception as exc:
                self.ring_failures += 1
                log.warning("could not ring the queue for %d event(s), the sweeper will: %s", len(row_ids), exc)

    async def close(self) -> None:
        """Finish the commit in progress and the rings already started."""
        pending = [t for t in (self._writer, self._ringer) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=10)

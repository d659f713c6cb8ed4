"""How long deletions are remembered: tombstones older than `tombstone_retention_days` are purged.

Purging is what makes a very stale device need a full resync: each user's `sync_purged_stamp`
records the newest tombstone dropped, and a pull with `lastPulledAt` below it gets the whole
snapshot with `resetRequired` (trainer/sync/pull.py). Purging runs on every push for the pushing
user (cheap: one indexed query when nothing is due) and for everyone from `purge_expired`, which the
server runs periodically (`maintenance`) and a worker or cron job may call too; it is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from trainer import clock
from trainer.db import Database, Transaction

log = logging.getLogger("trainer.sync")
DAY_MS = 86_400_000
PURGE_EVERY_S = 6 * 3600.0
FIRST_PURGE_AFTER_S = 60.0


def cutoff(retention_days: int) -> int:
    """Tombstones with a stamp below this are old enough to purge."""
    return clock.now_ms() - retention_days * DAY_MS


async def purge_user(tx: Transaction, user_id: str, before: int) -> int:
    """Drop one user's tombstones older than `before`, remembering the newest one dropped."""
    newest = await tx.fetchval(
        "SELECT max(deleted_stamp) FROM sync_tombstones WHERE user_id = $1 AND deleted_stamp < $2", user_id, before
    )
    if newest is None:
        return 0
    await tx.execute(
        "UPDATE users SET sync_purged_stamp = $2 WHERE id = $1 AND sync_purged_stamp < $2", user_id, int(newest)
    )
    return await tx.execute(
        "DELETE FROM sync_tombstones WHERE user_id = $1 AND deleted_stamp <= $2", user_id, int(newest)
    )


async def purge_expired(db: Database, retention_days: int) -> int:
    """Purge every user's expired tombstones (one short transaction per user); returns how many."""
    before = cutoff(retention_days)
    users = await db.fetch("SELECT DISTINCT user_id FROM sync_tombstones WHERE deleted_stamp < $1", before)
    purged = 0
    for row in users:
        async with db.transaction() as tx:
            purged += await purge_user(tx, row["user_id"], before)
    return purged


def maintenance(
    get_db: Callable[[], Database], retention_days: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that purges expired tombstones now and then while the server runs.

    Several servers doing it at once is harmless; a failure is logged and retried next period.
    """

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_loop(get_db, retention_days))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


async def _loop(get_db: Callable[[], Database], retention_days: int) -> None:
    await asyncio.sleep(FIRST_PURGE_AFTER_S)
    while True:
        try:
            purged = await purge_expired(get_db(), retention_days)
            if purged:
                log.info("purged %d expired sync tombstones", purged)
        except Exception:
            log.exception("purging expired sync tombstones failed; will retry")
        await asyncio.sleep(PURGE_EVERY_S)

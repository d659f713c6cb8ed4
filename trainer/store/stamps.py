"""Per-user change stamps: the clock of sync.

Every write to a user's synced rows (by the app through sync, or by the server: vendor activities,
computed loads, plan changes) runs inside a transaction that first calls `next_stamp`. The UPDATE
of the user's row takes a row lock held until commit, so one user's writers are serialized and
their stamps increase in commit order. A pull reads the user's stamp inside its snapshot as its
watermark: a writer that had not committed then has a larger stamp and is seen by the next pull.
Stamps are milliseconds since the epoch when the clock moves forward, else the previous stamp + 1.

Take the stamp first in the transaction (the lock then covers every read that decides what to
write), and take one per transaction: all rows it writes may share it. Writes to the synced tables
go through trainer.sync.writes (server code) or trainer.sync.push (devices), which also keep
tombstones and the device marks the pull relies on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trainer import clock
from trainer.db import Queries, Transaction
from trainer.errors import NotFound

_TOMBSTONE_SQL = """INSERT INTO sync_tombstones (table_name, row_id, user_id, deleted_stamp, changed_by_device)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (table_name, row_id) DO UPDATE SET deleted_stamp = excluded.deleted_stamp,
               changed_by_device = excluded.changed_by_device
           WHERE sync_tombstones.user_id = excluded.user_id"""


@dataclass(frozen=True)
class SyncState:
    """A user's change clock as one connection sees it."""

    stamp: int
    """The last issued stamp: the pull watermark when read inside the pull's snapshot."""
    purged_stamp: int
    """The newest tombstone purged so far: a device that pulled before it may have missed deletions."""


async def next_stamp(tx: Transaction, user_id: str) -> int:
    """Take the user's next change stamp (monotonic, unique per user, in commit order)."""
    stamp = await tx.fetchval(
        """UPDATE users SET sync_stamp = CASE WHEN sync_stamp >= $2 THEN sync_stamp + 1 ELSE $2 END
           WHERE id = $1 RETURNING sync_stamp""",
        user_id,
        clock.now_ms(),
    )
    if stamp is None:
        raise NotFound("no such user")
    return int(stamp)


async def current_stamp(db: Queries, user_id: str) -> int:
    """The user's last issued stamp as this connection sees it (the pull watermark in a snapshot)."""
    return int(await db.fetchval("SELECT sync_stamp FROM users WHERE id = $1", user_id) or 0)


async def sync_state(db: Queries, user_id: str) -> SyncState:
    row = await db.fetchrow("SELECT sync_stamp, sync_purged_stamp FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound("no such user")
    return SyncState(int(row["sync_stamp"]), int(row["sync_purged_stamp"]))


async def record_deletion(
    tx: Transaction, user_id: str, table: str, row_id: str, stamp: int, device_id: str | None = None
) -> None:
    """Leave a tombstone so devices that pull later delete their copy."""
    await record_deletions(tx, user_id, table, [row_id], stamp, device_id)


async def record_deletions(
    tx: Transaction, user_id: str, table: str, row_ids: Iterable[str], stamp: int, device_id: str | None = None
) -> None:
    """Tombstones for many rows of one table in one round trip.

    A tombstone of another user with the same id is left alone (ids are global, tombstones are not
    shared); sync refuses such ids before it gets here.
    """
    await tx.executemany(_TOMBSTONE_SQL, [(table, row_id, user_id, stamp, device_id) for row_id in row_ids])


async def forget_deletions(tx: Transaction, user_id: str, table: str, row_ids: Iterable[str]) -> None:
    """Drop the user's tombstones of rows that exist again (an id re-created must not be pulled as deleted)."""
    await tx.executemany(
        "DELETE FROM sync_tombstones WHERE table_name = $1 AND row_id = $2 AND user_id = $3",
        [(table, row_id, user_id) for row_id in row_ids],
    )

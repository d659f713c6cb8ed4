"""WAL checkpoints on a thread of their own, never inside a commit.

SQLite's default is to checkpoint from the connection that commits, once the WAL passes a thousand
pages: that COMMIT then copies the pages into the database file and fsyncs both files. trainer runs
small write transactions on the event loop's thread (see trainer/db/sqlite.py), so every few dozen
webhook batches a commit stalled the whole server for the fsyncs - on a virtual disk, milliseconds
each, and the loop sat idle while it waited.

Here the connections trainer opens have automatic checkpoints off (`wal_autocheckpoint = 0`) and a
checkpointer thread runs a PASSIVE checkpoint every `interval_s`. PASSIVE never takes the write lock
and never waits for readers: it backfills what it can, as the automatic one did, so the WAL stays
about as short as before and a commit is only its WAL append. A tick with nothing to backfill costs
a look at the WAL index. Other programs on the same file (a CLI command, an older server) keep
their own automatic checkpoints; checkpoints from several processes take turns on SQLite's
checkpoint lock. Durability is unchanged: a commit is in the WAL whether or not it was backfilled.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("trainer.db")

CHECKPOINT_INTERVAL_S = 0.25


class WalCheckpointer:
    """A daemon thread that checkpoints one database file's WAL every `interval_s` until stopped."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, name: str, interval_s: float = CHECKPOINT_INTERVAL_S
    ) -> None:
        self._connect = connect
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0
        """Checkpoints that backfilled at least one page (for tests and curious operators)."""

    def start(self) -> None:
        """Connect (raising what connecting raises) and start ticking; blocks: call it from a thread."""
        self._conn = self._connect()
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any (blocks: call it from a thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        elif self._conn is not None:  # started to connect, never ticked
            self._conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        busy, _log_frames, backfilled = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and backfilled > 0:
            self.checkpoints += 1

    def _main(self) -> None:
        assert self._conn is not None
        try:
            while not self._stop.wait(self._interval_s):
                try:
                    self.checkpoint(self._conn)
                except sqlite3.Error as exc:  # a locked or busy file: the next tick tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            self._conn.close()

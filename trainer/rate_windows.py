"""Vendor request quotas shared by every process, kept in the database (plugin_rate_windows).

Vendors limit an application, not a process: with two servers and three workers, each must know
what the others spent. A window row holds the vendor's last statement (limit, usage, when the
period resets) plus the requests counted since; the vendor's numbers replace ours whenever a
response carries them, so a small overshoot between processes corrects itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from trainer import clock
from trainer.db import Database, Row, Transaction
from trainer.plugins import RateLimits

_UPSERT = """INSERT INTO plugin_rate_windows (plugin, name, limit_count, usage, resets_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plugin, name) DO UPDATE SET limit_count = excluded.limit_count, usage = excluded.usage,
                 resets_at = excluded.resets_at, updated_at = excluded.updated_at"""


class DatabaseRateLimits(RateLimits):
    def __init__(self, db: Database, plugin: str) -> None:
        self.db = db
        self.plugin = plugin

    async def _row(self, tx: Transaction, window: str) -> Row | None:
        return await tx.fetchrow(
            "SELECT limit_count, usage, resets_at FROM plugin_rate_windows WHERE plugin = $1 AND name = $2",
            self.plugin,
            window,
        )

    async def observe(self, window: str, *, limit: int, usage: int, resets_at: float) -> None:
        resets_ms = int(resets_at * 1000)
        async with self.db.transaction() as tx:
            row = await self._row(tx, window)
            if row is not None and row["resets_at"] == resets_ms:
                usage = max(usage, int(row["usage"]))  # responses may arrive out of order
            await tx.execute(_UPSERT, self.plugin, window, limit, usage, resets_ms, clock.now_ms())

    async def acquire(self, windows: Mapping[str, float], *, reserve: float = 0.0) -> float:
        now_ms = clock.now_ms()
        wait_ms = 0
        counts: list[tuple[str, int | None, int, int]] = []
        async with self.db.transaction() as tx:
            for window, resets_at in windows.items():
                resets_ms = int(resets_at * 1000)
                row = await self._row(tx, window)
                limit = None if row is None else row["limit_count"]
                if row is None or row["resets_at"] < resets_ms:
                    usage = 0  # a new period began since the last statement
                else:
                    usage, resets_ms = int(row["usage"]), int(row["resets_at"])
                if limit is not None and usage + 1 > limit * (1.0 - reserve):
                    wait_ms = max(wait_ms, resets_ms - now_ms, 1)
                counts.append((window, limit, usage + 1, resets_ms))
            if wait_ms:
                return wait_ms / 1000
            for window, limit, usage, resets_ms in counts:
                await tx.execute(_UPSERT, self.plugin, window, limit, usage, resets_ms, now_ms)
        return 0.0

"""Vendor request quotas shared by every process, kept in the database (plugin_rate_windows).

Vendors limit an application, not a process: with two servers and three workers, each must know
what the others spent. A window row holds the vendor's last statement (limit, usage, when the
period resets) plus the requests counted since; the vendor's numbers replace ours whenever a
response carries them, so a small overshoot between processes corrects itself.

Writing the shared rows on every request made them the bottleneck of ingestion (every worker
serialized on the same four rows, five transactions per API call). Far from a limit a process now
takes a lease of requests (counted as used at once, so the shared count never under-states) and
spends it locally, and it writes the vendor's statements at most once a second; within 20 % of a
limit leases shrink to single requests and every statement is written, so counting is exact where
it decides anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from trainer import clock
from trainer.db import Database, Row, Transaction
from trainer.plugins import RateLimits

_UPSERT = """INSERT INTO plugin_rate_windows (plugin, name, limit_count, usage, resets_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plugin, name) DO UPDATE SET limit_count = excluded.limit_count, usage = excluded.usage,
                 resets_at = excluded.resets_at, updated_at = excluded.updated_at"""


MAX_LEASE = 20
"""Most requests one process takes from a window at once; far from the limit a process counts its
requests locally against such a lease, so the shared row is written once per lease, not per call."""
LEASE_SHARE = 8
"""A lease is at most 1/LEASE_SHARE of what is left: near the limit leases shrink to one request,
and counting is exact where it matters."""
OBSERVE_EVERY_MS = 1_000
NEAR_LIMIT = 0.8
"""Above this share of a limit every vendor statement is written at once and local leases dropped."""


class DatabaseRateLimits(RateLimits):
    """One per plugin and process (the host caches it): its leases are this process's share."""

    def __init__(self, db: Database, plugin: str) -> None:
        self.db = db
        self.plugin = plugin
        # (window, reserve) -> (period resets_ms, requests left): a lease taken while keeping 50 % free
        # for webhooks is not spent by a caller that keeps less free, nor the other way round.
        self._leases: dict[tuple[str, float], tuple[int, int]] = {}
        self._observed: dict[str, tuple[int, int]] = {}  # window -> (period resets_ms, written at ms)
        # One lease taken at a time: the concurrent requests that all ran out at once wait for it and
        # spend it, instead of each writing the shared rows for a lease of its own.
        self._reserving = asyncio.Lock()

    async def _row(self, tx: Transaction, window: str) -> Row | None:
        return await tx.fetchrow(
            "SELECT limit_count, usage, resets_at FROM plugin_rate_windows WHERE plugin = $1 AND name = $2",
            self.plugin,
            window,
        )

    async def observe(self, window: str, *, limit: int, usage: int, resets_at: float) -> None:
        resets_ms = int(resets_at * 1000)
        now_ms = clock.now_ms()
        near = usage >= limit * NEAR_LIMIT
        if near:  # what this process holds may no longer exist at the vendor
            for key in [k for k in self._leases if k[0] == window]:
                del self._leases[key]
        seen = self._observed.get(window)
        if not near and seen is not None and seen[0] == resets_ms and now_ms - seen[1] < OBSERVE_EVERY_MS:
            return  # far from the limit, a statement a second is plenty: ours are counted meanwhile
        # Noted before the write: the responses that arrive while it runs are the same second's news.
        self._observed[window] = (resets_ms, now_ms)
        try:
            async with self.db.transaction() as tx:
                row = await self._row(tx, window)
                if row is not None and row["resets_at"] == resets_ms:
                    usage = max(usage, int(row["usage"]))  # responses may arrive out of order
                await tx.execute(_UPSERT, self.plugin, window, limit, usage, resets_ms, now_ms)
        except BaseException:
            if self._observed.get(window) == (resets_ms, now_ms):
                del self._observed[window]  # not written: the next statement must be
            raise

    async def acquire(self, windows: Mapping[str, float], *, reserve: float = 0.0) -> float:
        wanted = {(window, reserve): int(resets_at * 1000) for window, resets_at in windows.items()}
        if self._spend(wanted):
            return 0.0
        async with self._reserving:
            if self._spend(wanted):  # a lease taken while this request waited
                return 0.0
            return await self._reserve(wanted, reserve)

    def _spend(self, wanted: Mapping[tuple[str, float], int]) -> bool:
        """Count one request against the leases held for every window, if all have one left."""
        if not all(self._has_lease(key, resets_ms) for key, resets_ms in wanted.items()):
            return False
        for key, resets_ms in wanted.items():  # no await since the check: no other task interleaves
            self._leases[key] = (resets_ms, self._leases[key][1] - 1)
        return True

    def _has_lease(self, key: tuple[str, float], resets_ms: int) -> bool:
        lease = self._leases.get(key)
        return lease is not None and lease[0] == resets_ms and lease[1] > 0

    async def _reserve(self, wanted: Mapping[tuple[str, float], int], reserve: float) -> float:
        """Count this request, plus a lease of further ones when there is room, in the shared rows."""
        now_ms = clock.now_ms()
        wait_ms = 0
        grants: list[tuple[str, int | None, int, int, int]] = []
        async with self.db.transaction() as tx:
            for (window, _), resets_ms in wanted.items():
                row = await self._row(tx, window)
                limit = None if row is None else row["limit_count"]
                if row is None or row["resets_at"] < resets_ms:
                    usage = 0  # a new period began since the last statement
                else:
                    usage, resets_ms = int(row["usage"]), int(row["resets_at"])
                if limit is not None and usage + 1 > limit * (1.0 - reserve):
                    wait_ms = max(wait_ms, resets_ms - now_ms, 1)
                # A lease only where the limit is known, and shrinking to nothing as it nears.
                room = 0 if limit is None else int(limit * (1.0 - reserve) * NEAR_LIMIT) - usage - 1
                grant = 1 + max(0, min(MAX_LEASE - 1, room // LEASE_SHARE))
                grants.append((window, limit, usage + grant, resets_ms, grant - 1))
            if wait_ms:
                return wait_ms / 1000
            for window, limit, usage, resets_ms, _ in grants:
                await tx.execute(_UPSERT, self.plugin, window, limit, usage, resets_ms, now_ms)
        for window, _, _, resets_ms, left in grants:
            self._leases[(window, reserve)] = (resets_ms, left)
        return 0.0

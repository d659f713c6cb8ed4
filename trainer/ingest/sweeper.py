"""The sweeper: recovery for everything the doorbell can lose.

A queue entry can vanish (Redis flushed, the embedded queue file deleted, a ring that failed after
the commit) and a worker can die holding a row. Both leave the inbox row behind, and the row is
the truth: the sweeper runs every minute in every consumer and

- hands back rows processing longer than `ingest_lease_s` (or dead-letters them once they have used
  every attempt: an event that kills its worker must not kill workers forever),
- rings pending rows that have been due longer than `ingest_stale_s` without a ring,
- forgets processed rows older than `ingest_keep_days`.

Running it twice at once is harmless: each re-ring is marked on the row in the same UPDATE that
selects it, and a duplicate ring only meets a row that is no longer claimable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trainer.ingest import inbox
from trainer.ingest.pipeline import Context

log = logging.getLogger("trainer.ingest")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class SweepReport:
    reclaimed: int
    dead_lettered: int
    rerung: int
    forgotten: int


async def sweep(ctx: Context) -> SweepReport:
    settings = ctx.settings
    reclaimed, dead = await inbox.reclaim_expired(
        ctx.db, lease_ms=settings.ingest_lease_s * 1000, max_attempts=settings.ingest_max_attempts
    )
    stale = await inbox.stale_pending(ctx.db, stale_ms=settings.ingest_stale_s * 1000)
    to_ring = list(dict.fromkeys(reclaimed + stale))
    if to_ring:
        await ctx.ring(to_ring)
    forgotten = await inbox.forget_finished(ctx.db, older_than_ms=settings.ingest_keep_days * DAY_MS)
    report = SweepReport(len(reclaimed), len(dead), len(stale), forgotten)
    if reclaimed or dead or stale:
        log.warning(
            "sweeper: %d event(s) taken back from stopped workers, %d dead-lettered, %d re-rung",
            len(reclaimed),
            len(dead),
            len(stale),
        )
    return report

"""`trainer backfill`: page through a connected account's history into the webhook inbox.

Each page's events are recorded in the same inbox the webhooks feed (same dedupe keys, so a page
recorded twice costs nothing), then the page's checkpoint is stored in backfill_runs. An interrupted
run resumes after the last recorded page; a finished one started again walks the history anew,
which only records what is new. When the vendor's quota is near, the plugin raises RetryLater: the
run waits (the progress display shows it) and resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from trainer import clock
from trainer.db import Database
from trainer.errors import NotFound
from trainer.ingest.inbox import Doorbell, record_events
from trainer.notify.outbox import enqueue
from trainer.plugins import Account, Backfiller, BackfillPage, Plugin, Registry, RetryLater
from trainer.store import accounts
from trainer.store.accounts import TokenCipher

DEFAULT_WAIT_S = 60.0


@dataclass(frozen=True)
class Progress:
    pages: int
    events: int  # events seen in pages so far
    recorded: int  # of which new to the inbox
    fraction: float | None
    note: str = ""
    waiting_s: float | None = None  # set while waiting for the vendor's quota
    resumed: bool = False


@dataclass(frozen=True)
class BackfillResult:
    pages: int
    events: int
    recorded: int
    resumed: bool


async def _run_row(db: Database, user_id: str, plugin: str, since_ms: int) -> tuple[str | None, bool]:
    """The checkpoint to start from and whether it resumes an interrupted run."""
    now = clock.now_ms()
    async with db.transaction() as tx:
        row = await tx.fetchrow(
            "SELECT checkpoint, done FROM backfill_runs WHERE user_id = $1 AND plugin = $2 AND since = $3",
            user_id,
            plugin,
            since_ms,
        )
        if row is not None and not row["done"] and row["checkpoint"]:
            return row["checkpoint"], True
        await tx.execute(
            """INSERT INTO backfill_runs (user_id, plugin, since, checkpoint, pages, events, done,
                                          started_at, updated_at)
               VALUES ($1, $2, $3, NULL, 0, 0, FALSE, $4, $4)
               ON CONFLICT (user_id, plugin, since) DO UPDATE SET checkpoint = NULL, pages = 0, events = 0,
                   done = FALSE, started_at = excluded.started_at, updated_at = excluded.updated_at""",
            user_id,
            plugin,
            since_ms,
            now,
        )
    return None, False


async def _save_page(db: Database, cipher: TokenCipher, account: Account, since_ms: int, page: BackfillPage) -> None:
    async with db.transaction() as tx:
        if page.tokens is not None:
            await accounts.save_tokens(tx, cipher, account.user_id, account.plugin, page.tokens)
        await tx.execute(
            """UPDATE backfill_runs SET checkpoint = $4, pages = pages + 1, events = events + $5, done = $6,
                   updated_at = $7
               WHERE user_id = $1 AND plugin = $2 AND since = $3""",
            account.user_id,
            account.plugin,
            since_ms,
            page.checkpoint,
            len(page.events),
            page.done,
            clock.now_ms(),
        )


async def run_backfill(
    db: Database,
    registry: Registry,
    cipher: TokenCipher,
    *,
    user_id: str,
    plugin: str,
    since: datetime,
    on_progress: Callable[[Progress], None] | None = None,
    doorbell: Doorbell | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BackfillResult:
    """Backfill one account; see the module docstring."""
    source: Plugin | None = registry.get(plugin, Backfiller)
    if source is None:
        raise NotFound(f"no enabled plugin {plugin!r} that can backfill")
    assert isinstance(source, Backfiller)
    account = await accounts.get(db, cipher, user_id, plugin)
    if account is None:
        raise NotFound(f"this user has not connected {plugin}")
    since_ms = clock.datetime_to_ms(since)
    checkpoint, resumed = await _run_row(db, user_id, plugin, since_ms)
    pages = events = recorded = 0
    report = on_progress or (lambda progress: None)
    while True:
        try:
            async for page in source.backfill(account, since=since, checkpoint=checkpoint):
                recorded += await record_events(db, plugin, user_id, page.events, doorbell=doorbell)
                await _save_page(db, cipher, account, since_ms, page)
                checkpoint = page.checkpoint
                pages += 1
                events += len(page.events)
                report(Progress(pages, events, recorded, page.progress, page.note, resumed=resumed))
                if page.done:
                    break
            await _finish(db, user_id, plugin, since_ms)
            return BackfillResult(pages, events, recorded, resumed)
        except RetryLater as exc:
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_WAIT_S
            report(Progress(pages, events, recorded, None, str(exc), waiting_s=wait, resumed=resumed))
            await sleep(wait)


async def _finish(db: Database, user_id: str, plugin: str, since_ms: int) -> None:
    """Mark the run done and tell the user, once per run (a re-run of a finished backfill is quiet).

    The count is every event the run (with its resumptions) put in the inbox: they are queued, and
    appear in the app as the pipeline processes them.
    """
    async with db.transaction() as tx:
        recorded = await tx.fetchval(
            """SELECT count(*) FROM inbox i JOIN backfill_runs r ON r.user_id = i.user_id AND r.plugin = i.plugin
               WHERE r.user_id = $1 AND r.plugin = $2 AND r.since = $3 AND i.received_at >= r.started_at""",
            user_id,
            plugin,
            since_ms,
        )
        await tx.execute(
            "UPDATE backfill_runs SET done = TRUE, updated_at = $4 WHERE user_id = $1 AND plugin = $2 AND since = $3",
            user_id,
            plugin,
            since_ms,
            clock.now_ms(),
        )
        params = {"vendor": plugin.replace("_", " ").title(), "plugin": plugin, "activities": int(recorded or 0)}
        await enqueue(tx, user_id, "backfill_finished", "backfill_finished", params, f"backfill:{plugin}:{since_ms}")

"""The processing pipeline: one inbox event from its row to stored, analysed data.

    claim row -> load account -> plugin.process (vendor fetch, outside any transaction)
      -> persist new tokens -> compute training loads -> in one transaction: apply the results,
         recompute the user's daily state from the earliest changed day, mark done, run the
         notification hook

Every write is an upsert keyed by (source, external id), so a run repeated after a crash, a lost
claim or a retry stores the same thing once. The claim is re-checked in the transaction that
writes (a worker that outlived its lease rolls back instead of racing its successor). When the
analysis fails, the data is stored without it and what was applied is remembered on the row, so
the retry still recomputes from the right day even when the vendor's answer no longer shows a
change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.activity_load import load_for
from trainer.config import Settings
from trainer.db import Database, Transaction
from trainer.engine.recompute import first_affected_day, recompute_in
from trainer.errors import TrainerError
from trainer.ingest import hooks, inbox
from trainer.ingest.backoff import retry_delay_s
from trainer.ingest.inbox import InboxRow
from trainer.plugins import (
    Account,
    ActivitySource,
    DeleteActivity,
    Disconnect,
    PermanentFailure,
    Registry,
    RetryLater,
    SourceResult,
    TokensChanged,
    UpsertActivity,
    UpsertDaily,
)
from trainer.profile import UserSettings
from trainer.store import accounts, activities, daily
from trainer.store.accounts import TokenCipher

log = logging.getLogger("trainer.ingest")


@dataclass
class Context:
    """What processing needs, built once per worker thread (trainer/ingest/runtime.py)."""

    db: Database
    plugins: Registry
    settings: Settings
    cipher: TokenCipher
    ring: Callable[[Sequence[str]], Awaitable[None]]
    ring_later: Callable[[str, float], Awaitable[None]]
    stopping: Callable[[], bool] = field(default=lambda: False)  # the worker is stopping: no chaining
    # After each row processed: it may have queued a notification (the consumer sends them soon).
    on_processed: Callable[[], None] = field(default=lambda: None)


@dataclass
class Changes:
    """What applying one event's results changed; stored on the row as its `result`."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: int = 0
    dailies: list[dt.date] = field(default_factory=list)
    disconnected: bool = False
    from_day: dt.date | None = None

    def touch(self, day: dt.date | None) -> None:
        if day is not None and (self.from_day is None or day < self.from_day):
            self.from_day = day

    def as_result(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "dailies": [d.isoformat() for d in self.dailies],
            "disconnected": self.disconnected,
            "from_day": self.from_day.isoformat() if self.from_day else None,
        }


async def process_row(ctx: Context, row_id: str, *, chain: int = 1) -> str:
    """Claim and process one inbox row, then up to `chain - 1` of its account's next due rows in
    turn; ring the account's next row when the chain ends with one still due. Returns the state
    the first row ended in, or "skipped" when it was not claimable (done already, claimed
    elsewhere, not due, or its account is busy).

    A queued job chains (QUEUE_CHAIN): an account's backlog (a vendor catching up, a burst of
    uploads) is then worked through by the worker that holds it, instead of every event going out
    to the queue and back: a ring, a dequeue and a claim turned away while the account was busy.
    The chain is bounded so one account's backlog cannot hold a slot for long, and it stops while
    the worker stops (`Context.stopping`): the next row is rung for whoever runs next.
    """
    first: str | None = None
    for left in range(chain - 1, -1, -1):
        row = await inbox.claim(ctx.db, row_id, inbox.new_claim_token())
        if row is None:
            break
        following: str | None = None
        go_on = False
        try:
            state = await _process_claimed_row(ctx, row)
            ctx.on_processed()
            go_on = left > 0 and not ctx.stopping()
        finally:
            following = await _next_due(ctx, row)
            if following is not None and not go_on:
                await _ring(ctx, row, following)
        first = first or state
        if following is None or not go_on:
            break
        row_id = following
    return first or "skipped"


async def _process_claimed_row(ctx: Context, row: InboxRow) -> str:
    """Run the pipeline on a claimed row; every failure ends in the row's next state."""
    try:
        return await asyncio.wait_for(_process_claimed(ctx, row), timeout=ctx.settings.ingest_lease_s * 0.8)
    except RetryLater as exc:
        return await _retry(ctx, row, f"retry later: {exc}", exc.retry_after)
    except PermanentFailure as exc:
        return await _dead_letter(ctx, row, f"permanent failure: {exc}")
    except inbox.LostClaim:
        log.warning("inbox %s: claim lost while processing (ran past the lease); left to its new owner", row.id)
        return "lost"
    except TimeoutError:
        return await _retry(ctx, row, "processing took longer than the lease allows", None)
    except (TrainerError, OSError) as exc:
        return await _retry(ctx, row, f"{type(exc).__name__}: {exc}", None)
    except Exception as exc:  # a plugin's bug: keep the worker alive, keep the event for a fixed plugin
        log.exception("inbox %s: unexpected error in plugin %s", row.id, row.plugin)
        return await _retry(ctx, row, f"{type(exc).__name__}: {exc}", None)


async def _process_claimed(ctx: Context, row: InboxRow) -> str:
    source = ctx.plugins.get(row.plugin, ActivitySource)
    if source is None:
        raise PermanentFailure(f"no enabled plugin '{row.plugin}' processes events")
    found = await accounts.get_with_settings(ctx.db, ctx.cipher, row.user_id, row.plugin)
    if found is None:
        async with ctx.db.transaction() as tx:
            await inbox.finish(tx, row, "ignored", note="the vendor account is not connected any more")
        return "ignored"
    account, user_settings = found
    results = await source.process(row.to_event(), account)
    await persist_tokens(ctx, account, results)
    loads = compute_loads(user_settings, results)
    await store_and_complete(ctx, row, results, loads)
    return "done"


async def persist_tokens(ctx: Context, account: Account, results: Sequence[SourceResult]) -> None:
    """New tokens first, in their own commit: the vendor already killed the old refresh token, so
    they must survive even if storing the data fails."""
    for result in results:
        if isinstance(result, TokensChanged):
            async with ctx.db.transaction() as tx:
                await accounts.save_tokens(tx, ctx.cipher, account.user_id, account.plugin, result.tokens)
            account.tokens = result.tokens


def compute_loads(user_settings: dict[str, Any], results: Sequence[SourceResult]) -> list[Any]:
    """Training load per UpsertActivity, computed before the write transaction opens (CPU work
    must not hold SQLite's single write lock). `user_settings` are the stored settings read with
    the account (one read instead of two per event)."""
    upserts = [r for r in results if isinstance(r, UpsertActivity)]
    if not upserts:
        return []
    settings = UserSettings.model_validate(user_settings)
    return [load_for(settings, r.imported) for r in upserts]


async def store_and_complete(ctx: Context, row: InboxRow, results: Sequence[SourceResult], loads: list[Any]) -> None:
    """Store what the plugin returned, recompute the user's daily state from the earliest changed
    day, mark the row done and run the extension hook: one transaction, one commit per event.

    If that fails for any reason but a lost claim (a bug in the analysis or the hook, the database
    mid-way), the data is stored on its own, with the day it changed remembered on the row, before
    the error goes on to the retry: an activity is never held back by its analysis, and the retry
    recomputes from the right day even when the vendor's answer no longer shows a change.
    """
    try:
        async with ctx.db.transaction() as tx:
            changes = await apply_results(tx, row, results, loads)
            await complete(tx, row, changes)
    except inbox.LostClaim:
        raise
    except Exception:
        await _store_alone(ctx, row, results, loads)
        raise


async def _store_alone(ctx: Context, row: InboxRow, results: Sequence[SourceResult], loads: list[Any]) -> None:
    try:
        async with ctx.db.transaction() as tx:
            changes = await apply_results(tx, row, results, loads)
            await inbox.mark_applied(tx, row, changes.as_result())
    except Exception:  # the original error is the one to report and retry on
        log.warning("inbox %s: storing the data without its analysis failed too", row.id, exc_info=True)


async def apply_results(tx: Transaction, row: InboxRow, results: Sequence[SourceResult], loads: list[Any]) -> Changes:
    """Store everything the plugin returned; returns what changed (from the day a failed earlier
    attempt stored, if any)."""
    changes = Changes()
    previous = (row.result or {}).get("from_day")
    if previous:
        changes.touch(dt.date.fromisoformat(previous))
    pending_loads = iter(loads)
    for result in results:
        if isinstance(result, UpsertActivity):
            saved = await activities.save_imported(tx, row.user_id, result.imported, load=next(pending_loads))
            if saved.created:
                changes.created.append(saved.activity_id)
            elif saved.changed:
                changes.updated.append(saved.activity_id)
            if saved.created or saved.changed:
                changes.touch(saved.day)
        elif isinstance(result, DeleteActivity):
            day = await activities.delete_by_external(tx, row.user_id, result.source, result.external_id)
            if day is not None:
                changes.deleted += 1
                changes.touch(day)
        elif isinstance(result, UpsertDaily):
            day = await daily.save_daily_summary(tx, row.user_id, result.summary)
            changes.dailies.append(day)
            changes.touch(day)
        elif isinstance(result, Disconnect):
            changes.disconnected = await accounts.delete(tx, row.user_id, row.plugin)
            if result.delete_data:
                days = await activities.delete_all_from_source(tx, row.user_id, row.plugin)
                changes.deleted += len(days)
                for day in days:
                    changes.touch(day)
    return changes


async def complete(tx: Transaction, row: InboxRow, changes: Changes) -> None:
    """Recompute the user's daily state (when anything changed), mark the row done with what
    changed (the claim check: a worker that outlived its lease rolls back) and run the hook."""
    recomputed = None
    if changes.from_day is not None:
        recomputed = await recompute_in(tx, row.user_id, first_affected_day(changes.from_day))
    await inbox.finish(tx, row, "done", result=changes.as_result())
    await hooks.on_activity_processed(tx, _processed_event(row, changes, recomputed))


def _processed_event(row: InboxRow, changes: Changes, recomputed: Any) -> hooks.ProcessedEvent:
    return hooks.ProcessedEvent(
        inbox_id=row.id,
        user_id=row.user_id,
        plugin=row.plugin,
        kind=row.kind,
        created=changes.created,
        updated=changes.updated,
        deleted=changes.deleted,
        dailies=changes.dailies,
        disconnected=changes.disconnected,
        from_day=changes.from_day,
        recompute=recomputed,
    )


async def _retry(ctx: Context, row: InboxRow, error: str, retry_after: float | None) -> str:
    if row.attempts >= ctx.settings.ingest_max_attempts:
        return await _dead_letter(ctx, row, f"gave up after {row.attempts} attempts; last: {error}")
    delay = retry_delay_s(
        row.attempts,
        base_s=ctx.settings.ingest_retry_base_s,
        max_s=ctx.settings.ingest_retry_max_s,
        retry_after_s=retry_after,
    )
    if await inbox.retry_later(ctx.db, row, delay_s=delay, error=error):
        log.info(
            "inbox %s: attempt %d failed, retrying in %.0f s: %s", row.id, row.attempts, delay, inbox.redact(error)
        )
        await ctx.ring_later(row.id, delay)
    return "pending"


async def _dead_letter(ctx: Context, row: InboxRow, error: str) -> str:
    if await inbox.dead_letter(ctx.db, row, error=error):
        log.warning("inbox %s (%s/%s) dead-lettered: %s", row.id, row.plugin, row.kind, inbox.redact(error))
    return "failed"


async def _next_due(ctx: Context, row: InboxRow) -> str | None:
    """The account is free again: its next due event, if any (it may have been turned away meanwhile)."""
    try:
        return await inbox.next_for_account(ctx.db, row.user_id, row.plugin)
    except Exception:  # the sweeper rings it later; never mask the real outcome
        log.warning("inbox %s: could not look up the account's next event", row.id, exc_info=True)
        return None


async def _ring(ctx: Context, row: InboxRow, following: str) -> None:
    try:
        await ctx.ring([following])
    except Exception:  # the sweeper rings it later; never mask the real outcome
        log.warning("inbox %s: could not ring the account's next event", row.id, exc_info=True)

"""The pipeline on both databases: claim, process, store, retry, dead-letter, and what each leaves behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import TEST_SECRET
from tests.ingest.conftest import connect
from tests.ingest.testplugin import CALLS, NAME
from trainer import clock
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.pipeline import Context, process_row
from trainer.ingest.queue import IngestQueue
from trainer.plugins import NewEvent
from trainer.store import accounts, users
from trainer.store.accounts import TokenCipher


def event(object_id: str, behaviour: str = "", *, external: str = "ext-1", ago_s: int = 3600, **hints: Any) -> NewEvent:
    when = int(time.time()) - ago_s
    payload = {"behaviour": behaviour, **hints} if behaviour else dict(hints)
    return NewEvent("activity", external, object_id, when, f"{external}:{object_id}:{when}:{behaviour}", payload)


async def record(db: Database, user_id: str, *events: NewEvent) -> list[str]:
    """Record events for the user; returns their row ids in the order given."""
    assert await inbox.record_events(db, NAME, user_id, list(events)) == len(events)
    by_key = {r.dedupe_key: r.id for r in await inbox.list_rows(db, inbox.Filter(user_id=user_id), limit=1000)}
    return [by_key[e.dedupe_key] for e in events]


async def activity_count(db: Database, user_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", user_id))


async def make_due(db: Database, row_id: str) -> None:
    await db.execute("UPDATE inbox SET next_attempt_at = 0 WHERE id = $1", row_id)


async def test_an_event_becomes_a_stored_analysed_activity(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    assert await process_row(context, row_id) == "done"
    row = await inbox.get(db, row_id)
    assert row.state == "done" and row.attempts == 1 and row.locked_by is None and row.finished_at
    assert len(row.result["created"]) == 1 and row.result["from_day"]
    stored = await db.fetchrow("SELECT source, external_id, training_load FROM activities WHERE user_id = $1", user_id)
    assert stored["source"] == NAME and stored["external_id"] == "a-1"
    assert stored["training_load"] is not None  # load_for ran on the average heart rate
    assert await db.fetchval("SELECT count(*) FROM daily_state WHERE user_id = $1", user_id) >= 1  # recomputed


async def test_the_users_day_is_recomputed_when_the_activitys_own_offset_says_the_next(
    context: Context, db: Database
) -> None:
    """An activity at 02:00 UTC recorded at +02:00 is on day D by its own clock, but on day D-1 for a
    user in New York: the incremental recompute after it must start early enough to cover D-1."""
    user_id = await connect(db, "a@example.com", "ext-1")
    await users.set_settings(db, user_id, {"timezone": "America/New_York", "hrMax": 190, "hrRest": 50})
    day = clock.now().date() - dt.timedelta(days=10)
    late_evening = int(datetime.combine(day, dt.time(2, 0), tzinfo=UTC).timestamp())  # 21:00 the day before in NY
    [first] = await record(db, user_id, event("early", start=late_evening - 150 * 86400))  # history long enough
    assert await process_row(context, first) == "done"  # to make the next recompute incremental
    [late] = await record(db, user_id, event("late", start=late_evening, utc_offset_s=7200))
    assert await process_row(context, late) == "done"
    assert (await inbox.get(db, late)).result["from_day"] == day.isoformat()  # the activity's own day
    before = (day - dt.timedelta(days=1)).isoformat()
    load = await db.fetchval("SELECT load FROM daily_state WHERE user_id = $1 AND day = $2", user_id, before)
    assert load and load > 0


async def test_processing_again_stores_the_activity_once(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    ids = await record(db, user_id, event("a-1", ago_s=3600), event("a-1", ago_s=3000))  # create + update
    for row_id in ids:
        assert await process_row(context, row_id) == "done"
    assert await inbox.revive(db, ids=ids) == []  # done rows are not revived
    await db.execute("UPDATE inbox SET state = 'failed' WHERE id = $1", ids[0])
    assert await inbox.revive(db, ids=[ids[0]]) == [ids[0]]
    assert await process_row(context, ids[0]) == "done"
    assert await activity_count(db, user_id) == 1


async def test_a_row_is_processed_by_one_of_two_concurrent_workers(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", sleep_ms=50))
    outcomes = await asyncio.gather(process_row(context, row_id), process_row(context, row_id))
    assert sorted(outcomes) == ["done", "skipped"]
    assert CALLS[row_id] == 1
    assert await activity_count(db, user_id) == 1


async def test_one_account_is_processed_one_event_at_a_time_oldest_first(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    other_id = await connect(db, "b@example.com", "ext-2")
    first, second = await record(db, user_id, event("a-1", ago_s=100), event("a-2", ago_s=50))
    [elsewhere] = await record(db, other_id, event("b-1", external="ext-2"))
    async with db.transaction() as tx:  # received in this order
        await tx.execute("UPDATE inbox SET received_at = received_at - 10 WHERE id = $1", first)
    assert await inbox.claim(db, second, "w1") is None  # an older event of the account is due
    held = await inbox.claim(db, first, "w1")
    assert held is not None
    assert await inbox.claim(db, second, "w2") is None  # the account is busy
    assert await inbox.claim(db, elsewhere, "w2") is not None  # other accounts are not held up
    assert await inbox.next_for_account(db, user_id, NAME) == second


async def test_finishing_rings_the_accounts_next_event(context: Context, db: Database, queue: IngestQueue) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    first, _second = await record(db, user_id, event("a-1", ago_s=100), event("a-2", ago_s=50))
    before = queue.pending()
    assert await process_row(context, first) == "done"
    assert queue.pending() == before + 1  # the doorbell for the next one


async def test_a_job_works_through_the_accounts_backlog(context: Context, db: Database, queue: IngestQueue) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    ids = await record(db, user_id, *(event(f"a-{n}", ago_s=100 - n) for n in range(5)))
    before = queue.pending()
    processed: list[None] = []
    chained = replace(context, on_processed=lambda: processed.append(None))
    assert await process_row(chained, ids[0], chain=3) == "done"
    assert len(processed) == 3  # notifications of each event are sent without waiting for the chain
    states = [(await inbox.get(db, row_id)).state for row_id in ids]
    assert states == ["done", "done", "done", "pending", "pending"]  # oldest first, three in all
    assert queue.pending() == before + 1  # the chain ended with one due: rung for whoever runs next
    assert await process_row(context, ids[3], chain=3) == "done"
    assert (await inbox.get(db, ids[4])).state == "done"
    assert queue.pending() == before + 1  # nothing left to ring
    assert await activity_count(db, user_id) == 5


async def test_a_stopping_worker_rings_instead_of_chaining(context: Context, db: Database, queue: IngestQueue) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    first, second = await record(db, user_id, event("a-1", ago_s=100), event("a-2", ago_s=50))
    before = queue.pending()
    assert await process_row(replace(context, stopping=lambda: True), first, chain=10) == "done"
    assert (await inbox.get(db, second)).state == "pending"
    assert queue.pending() == before + 1


async def test_a_chain_goes_on_past_an_event_that_waits_for_its_retry(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    first, second = await record(db, user_id, event("a-1", "retry", ago_s=100), event("a-2", ago_s=50))
    assert await process_row(context, first, chain=10) == "pending"  # its retry is not due yet
    assert (await inbox.get(db, second)).state == "done"  # as a ring would have had it processed


async def test_a_failed_analysis_keeps_the_data_and_the_retry_recomputes_from_its_day(
    context: Context, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.ingest import pipeline

    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    days: list[dt.date] = []
    recompute_in = pipeline.recompute_in

    async def broken_once(tx: Any, user: str, day: dt.date) -> Any:
        days.append(day)
        if len(days) == 1:
            raise RuntimeError("a bug in the analysis")
        return await recompute_in(tx, user, day)

    monkeypatch.setattr(pipeline, "recompute_in", broken_once)
    assert await process_row(context, row_id) == "pending"  # retried later
    assert await activity_count(db, user_id) == 1  # stored without its analysis
    assert (await inbox.get(db, row_id)).result["from_day"]
    assert await db.fetchval("SELECT count(*) FROM daily_state WHERE user_id = $1", user_id) == 0

    await make_due(db, row_id)
    assert await process_row(context, row_id) == "done"  # the vendor's answer shows no change now...
    assert days[1] == days[0]  # ...and the retry recomputes from the day the first attempt stored
    assert await db.fetchval("SELECT count(*) FROM daily_state WHERE user_id = $1", user_id) >= 1
    assert await activity_count(db, user_id) == 1


async def test_transient_failures_back_off_with_jitter(context: Context, db: Database, queue: IngestQueue) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", "retry"))
    started = clock.now_ms()
    assert await process_row(context, row_id) == "pending"
    row = await inbox.get(db, row_id)
    base_ms = context.settings.ingest_retry_base_s * 1000
    assert row.state == "pending" and row.attempts == 1 and "503" in row.last_error
    assert started + base_ms / 2 <= row.next_attempt_at <= clock.now_ms() + base_ms
    [doorbell] = queue.huey.pending()  # the retry's doorbell carries its due time
    assert doorbell.args == (row_id,) and doorbell.eta is not None
    assert await process_row(context, row_id) == "skipped"  # not due yet

    await make_due(db, row_id)
    assert await process_row(context, row_id) == "pending"
    row = await inbox.get(db, row_id)
    assert row.attempts == 2
    assert row.next_attempt_at >= clock.now_ms() + base_ms - 50  # second attempt: between base and 2*base


async def test_retry_after_is_honoured(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", "retry_after:900"))
    assert await process_row(context, row_id) == "pending"
    assert (await inbox.get(db, row_id)).next_attempt_at >= clock.now_ms() + 899_000


async def test_too_many_attempts_dead_letter_the_event(context: Context, db: Database) -> None:
    context.settings = context.settings.model_copy(update={"ingest_max_attempts": 3})
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", "crash"))
    outcomes = []
    for _ in range(3):
        outcomes.append(await process_row(context, row_id))
        await make_due(db, row_id)
    assert outcomes == ["pending", "pending", "failed"]
    row = await inbox.get(db, row_id)
    assert row.state == "failed" and row.attempts == 3
    assert row.last_error.startswith("gave up after 3 attempts") and "ZeroDivisionError" in row.last_error
    assert await process_row(context, row_id) == "skipped"


async def test_permanent_failures_dead_letter_at_once(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", "permanent"))
    assert await process_row(context, row_id) == "failed"
    row = await inbox.get(db, row_id)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "does not exist" in row.last_error

    revived = await inbox.revive(db, filter=inbox.Filter(states=("failed",), plugin=NAME))
    assert revived == [row_id]
    row = await inbox.get(db, row_id)
    assert (row.state, row.attempts) == ("pending", 0)


async def test_events_of_a_plugin_that_is_gone_are_dead_lettered(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    context.plugins = replace(context.plugins, plugins={})
    assert await process_row(context, row_id) == "failed"
    assert "no enabled plugin" in (await inbox.get(db, row_id)).last_error


async def test_events_of_a_disconnected_account_are_ignored(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    async with db.transaction() as tx:
        await accounts.delete(tx, user_id, NAME)
    assert await process_row(context, row_id) == "ignored"
    row = await inbox.get(db, row_id)
    assert row.state == "ignored" and "not connected" in row.last_error
    assert CALLS[row_id] == 0


async def test_delete_daily_disconnect_and_tokens(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    create, tokens = await record(db, user_id, event("a-1", ago_s=200), event("a-2", "tokens", ago_s=100))
    assert [await process_row(context, i) for i in (create, tokens)] == ["done", "done"]
    stored = await accounts.get(db, TokenCipher(TEST_SECRET), user_id, NAME)
    assert stored is not None and stored.tokens.refresh_token == "new-refresh"
    assert await activity_count(db, user_id) == 2

    [delete] = await record(db, user_id, event("a-1", "delete", ago_s=50))
    assert await process_row(context, delete) == "done"
    assert (await inbox.get(db, delete)).result["deleted"] == 1
    assert await activity_count(db, user_id) == 1

    [day] = await record(db, user_id, event("d-1", "daily", ago_s=40))
    assert await process_row(context, day) == "done"
    assert len((await inbox.get(db, day)).result["dailies"]) == 1

    [gone] = await record(db, user_id, event("", "disconnect", ago_s=30))
    assert await process_row(context, gone) == "done"
    assert (await inbox.get(db, gone)).result["disconnected"] is True
    assert await accounts.get(db, TokenCipher(TEST_SECRET), user_id, NAME) is None
    assert await activity_count(db, user_id) == 0  # delete_data: this source's activities went too


async def test_a_worker_that_lost_its_claim_commits_nothing(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", sleep_ms=300))
    task = asyncio.create_task(process_row(context, row_id))
    await asyncio.sleep(0.15)  # claimed, inside plugin.process
    await db.execute("UPDATE inbox SET locked_by = 'the-sweepers-successor' WHERE id = $1", row_id)
    assert await task == "lost"
    assert await activity_count(db, user_id) == 0
    assert (await inbox.get(db, row_id)).locked_by == "the-sweepers-successor"


async def test_record_events_rings_new_rows_only(db: Database, queue: IngestQueue) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    events = [event("a-1"), event("a-2")]
    assert await inbox.record_events(db, NAME, user_id, events, doorbell=queue.ring) == 2
    assert await inbox.record_events(db, NAME, user_id, [*events, event("a-3")], doorbell=queue.ring) == 1
    assert queue.pending() == 3


async def test_over_long_dedupe_keys_stay_unique_and_stable(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    long_a = NewEvent("activity", "ext-1", "a", 1, "k" * 500 + "a")
    long_b = NewEvent("activity", "ext-1", "b", 1, "k" * 500 + "b")
    assert await inbox.record_events(db, NAME, user_id, [long_a, long_b]) == 2
    assert await inbox.record_events(db, NAME, user_id, [long_a]) == 0


@pytest.mark.parametrize(
    "bad",
    [
        NewEvent("", "x", "o", 1, "k"),
        NewEvent("activity", "x", "o", 1, ""),
        NewEvent("activity", "x" * 300, "o", 1, "k"),
        NewEvent("activity", "x", "o", -1, "k"),
    ],
)
async def test_implausible_events_are_refused(db: Database, bad: NewEvent) -> None:
    from trainer.errors import InvalidInput

    user_id = await connect(db, "a@example.com", "ext-1")
    with pytest.raises(InvalidInput):
        await inbox.record_events(db, NAME, user_id, [bad])

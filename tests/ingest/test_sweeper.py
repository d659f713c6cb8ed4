"""The sweeper recovers what a lost doorbell or a dead worker left behind, on both databases."""

from __future__ import annotations

from tests.ingest.conftest import connect
from tests.ingest.test_pipeline import event, record
from trainer import clock
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.pipeline import Context, process_row
from trainer.ingest.queue import IngestQueue
from trainer.ingest.sweeper import sweep


async def test_rows_of_a_dead_worker_come_back_after_the_lease(
    context: Context, db: Database, queue: IngestQueue
) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    assert await inbox.claim(db, row_id, "worker-that-dies") is not None
    assert (await sweep(context)).reclaimed == 0  # within its lease: left alone

    with clock.shifted(context.settings.ingest_lease_s + 1):
        report = await sweep(context)
        assert (report.reclaimed, report.dead_lettered) == (1, 0)
        row = await inbox.get(db, row_id)
        assert (row.state, row.locked_by, row.attempts) == ("pending", None, 1)
        assert "stopped while processing" in row.last_error
        assert queue.pending() == 1  # rung again
        assert await process_row(context, row_id) == "done"


async def test_an_event_that_kills_every_worker_is_dead_lettered(context: Context, db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1"))
    await db.execute("UPDATE inbox SET attempts = $2 WHERE id = $1", row_id, context.settings.ingest_max_attempts - 1)
    assert await inbox.claim(db, row_id, "last-try") is not None
    with clock.shifted(context.settings.ingest_lease_s + 1):
        report = await sweep(context)
    assert (report.reclaimed, report.dead_lettered) == (0, 1)
    row = await inbox.get(db, row_id)
    assert row.state == "failed" and "on every attempt" in row.last_error


async def test_pending_rows_whose_doorbell_was_lost_are_rung_once_per_interval(
    context: Context, db: Database, queue: IngestQueue
) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    ids = await record(db, user_id, event("a-1"), event("a-2"))  # recorded, never rung
    assert (await sweep(context)).rerung == 0  # not stale yet
    stale = context.settings.ingest_stale_s + 1
    with clock.shifted(stale):
        assert (await sweep(context)).rerung == 2
        assert queue.pending() == 2
        assert (await sweep(context)).rerung == 0  # just rung: no second ring in the same interval
    with clock.shifted(2 * stale):
        assert (await sweep(context)).rerung == 2  # still nobody took them: ring again
    for row_id in ids:
        await process_row(context, row_id)
    with clock.shifted(3 * stale):
        assert (await sweep(context)).rerung == 0


async def test_processed_rows_are_forgotten_after_the_retention_but_dead_letters_stay(
    context: Context, db: Database
) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    done, failed = await record(db, user_id, event("a-1", ago_s=100), event("a-2", "permanent", ago_s=50))
    assert await process_row(context, done) == "done"
    assert await process_row(context, failed) == "failed"
    with clock.shifted(context.settings.ingest_keep_days * 86400 + 1):
        assert (await sweep(context)).forgotten == 1
    assert [r.id for r in await inbox.list_rows(db)] == [failed]

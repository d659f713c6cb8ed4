"""The inbox claim on both databases: who may take a row, and what two claimers racing for one
account's rows end up with (PostgreSQL claims in one statement, the `inbox_claim` function)."""

from __future__ import annotations

import asyncio
import contextvars
from importlib import resources

from tests.ingest.conftest import connect
from tests.ingest.test_pipeline import event, record
from tests.ingest.testplugin import NAME
from trainer import clock
from trainer.db import Database
from trainer.ingest import inbox


async def test_a_claim_takes_the_row_and_names_the_claimer(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    [row_id] = await record(db, user_id, event("a-1", note="x"))
    claimed = await inbox.claim(db, row_id, "w1")
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts, claimed.locked_by) == (row_id, "processing", 1, "w1")
    assert claimed.payload == {"note": "x"} and claimed.locked_at is not None
    assert await inbox.get(db, row_id) == claimed


async def test_rows_that_are_not_claimable_are_turned_away(db: Database) -> None:
    user_id = await connect(db, "a@example.com", "ext-1")
    done, later = await record(db, user_id, event("a-1"), event("a-2"))
    assert await inbox.claim(db, "no-such-row", "w1") is None
    await db.execute("UPDATE inbox SET state = 'done' WHERE id = $1", done)
    await db.execute("UPDATE inbox SET next_attempt_at = $2 WHERE id = $1", later, clock.now_ms() + 60_000)
    assert await inbox.claim(db, done, "w1") is None  # finished
    assert await inbox.claim(db, later, "w1") is None  # not due
    assert (await inbox.get(db, done)).attempts == 0
    held = await inbox.claim(db, later, "w1", slack_ms=120_000)  # due within the slack
    assert held is not None and await inbox.claim(db, later, "w2") is None  # claimed already


async def test_two_claimers_of_one_accounts_rows_never_both_win(db: Database) -> None:
    """The older row is due only within the claim's slack, so each row passes its own check when
    both are looked at before either is claimed: only the account's lock keeps one claimer out."""
    user_id = await connect(db, "a@example.com", "ext-1")
    for round_ in range(10):
        older, newer = await record(db, user_id, event(f"o-{round_}", ago_s=100), event(f"n-{round_}", ago_s=50))
        await db.execute("UPDATE inbox SET next_attempt_at = $2 WHERE id = $1", older, clock.now_ms() + 500)
        await db.execute("UPDATE inbox SET next_attempt_at = 0 WHERE id = $1", newer)
        won = await asyncio.gather(inbox.claim(db, older, "w1"), inbox.claim(db, newer, "w2"))
        assert len([c for c in won if c is not None]) == 1
        await db.execute("UPDATE inbox SET state = 'done', locked_by = NULL WHERE user_id = $1", user_id)


async def test_a_claim_waits_for_the_accounts_lock_and_then_sees_its_holder(db: Database) -> None:
    """A claim that passed its first look queues on the account's lock; once the holder commits a
    claim of another row of the account, it finds the account busy (its UPDATE's snapshot is taken
    after the lock is granted)."""
    user_id = await connect(db, "a@example.com", "ext-1")
    first, second = await record(db, user_id, event("a-1", ago_s=100), event("a-2", ago_s=50))
    await db.execute("UPDATE inbox SET next_attempt_at = $2 WHERE id = $1", first, clock.now_ms() + 500)
    await db.execute("UPDATE inbox SET next_attempt_at = 0 WHERE id = $1", second)
    async with db.transaction() as tx:
        await tx.lock(f"inbox:{NAME}:{user_id}")
        await tx.execute("UPDATE inbox SET state = 'processing', locked_by = 'other' WHERE id = $1", first)
        # Another worker's claim: a task of its own, outside this transaction's context.
        waiting = asyncio.create_task(inbox.claim(db, second, "w2"), context=contextvars.Context())
        await asyncio.sleep(0.2)
        assert not waiting.done()
    assert await waiting is None
    assert (await inbox.get(db, second)).state == "pending"


def test_postgresql_claims_with_the_same_condition_as_sqlite() -> None:
    """inbox_claim (migration 0010) repeats _CLAIMABLE: the two must not drift apart."""
    sql = (resources.files("trainer.db") / "migrations/postgresql/0010_inbox_claim_function.sql").read_text()
    body = " ".join(sql.split())
    condition = " ".join(inbox._CLAIMABLE.split())
    assert body.count(condition) == 2  # the look without the lock, and the UPDATE
    assert "pg_advisory_xact_lock(hashtextextended('inbox:' || account.plugin || ':' || account.user_id, 0))" in body

"""The inbox: the durable record of every vendor event, and the state machine a worker drives it through.

    pending ──claim──> processing ──> done
       ^                  │  └──────> ignored   (the account is gone: nothing to do)
       └── retry later ───┤
                          └──────> failed      (dead letter: last_error says why)

The database is the source of truth; the task queue only carries row ids. A row is claimed with one
conditional UPDATE (state = 'pending' -> 'processing', on both backends), so two workers that are
handed the same id never both process it. Every later transition names the claim (`locked_by`): a
worker whose claim was taken back by the sweeper (it ran past its lease) cannot overwrite the row,
and the transaction carrying its results rolls back instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from trainer import clock, json_values
from trainer.db import Database, Queries, Row, Transaction
from trainer.errors import Conflict, InvalidInput, NotFound
from trainer.plugins import InboxEvent, NewEvent

log = logging.getLogger("trainer.ingest")

State = Literal["pending", "processing", "done", "failed", "ignored"]
STATES: tuple[State, ...] = ("pending", "processing", "done", "failed", "ignored")

Doorbell = Callable[[Sequence[str]], Awaitable[None]]
"""Rings the task queue for newly committed rows (row ids only). Losing a ring loses nothing:
the sweeper re-rings pending rows that waited too long."""

_COLUMNS = (
    "id, plugin, kind, user_id, external_user_id, object_id, event_time, dedupe_key, payload, state, attempts, "
    "last_error, result, received_at, next_attempt_at, rung_at, locked_at, locked_by, finished_at"
)
MAX_DEDUPE_KEY = 200
MAX_FIELD = 200
MAX_ERROR = 2000


class LostClaim(Conflict):
    """This worker no longer holds the row (the sweeper reclaimed it); its results must not commit."""


@dataclass(frozen=True)
class InboxRow:
    id: str
    plugin: str
    kind: str
    user_id: str
    external_user_id: str
    object_id: str
    event_time: int  # ms
    dedupe_key: str
    payload: dict[str, Any]
    state: State
    attempts: int
    last_error: str | None
    result: dict[str, Any] | None
    received_at: int
    next_attempt_at: int
    rung_at: int | None
    locked_at: int | None
    locked_by: str | None
    finished_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> InboxRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def to_event(self) -> InboxEvent:
        """The row as the plugin interface hands it to `ActivitySource.process`."""
        return InboxEvent(
            id=self.id,
            plugin=self.plugin,
            kind=self.kind,
            user_id=self.user_id,
            external_user_id=self.external_user_id,
            object_id=self.object_id,
            event_time=self.event_time // 1000,
            payload=dict(self.payload),
            attempts=self.attempts,
        )


# -- recording ----------------------------------------------------------------------------------


async def record_events(
    db: Database, plugin: str, user_id: str, events: Sequence[NewEvent], *, doorbell: Doorbell | None = None
) -> int:
    """Record events of one known user (backfill, imports) in one commit; returns how many were new.

    Replays of already recorded events are skipped. With a `doorbell` the new rows are rung right
    after the commit; without one they wait for the sweeper (at most `ingest_stale_s`).
    """
    async with db.transaction() as tx:
        ids = await insert_events(tx, plugin, [(user_id, e) for e in events])
    if ids and doorbell is not None:
        await doorbell(ids)
    return len(ids)


async def insert_events(tx: Transaction, plugin: str, events: Sequence[tuple[str, NewEvent]]) -> list[str]:
    """Insert (user_id, event) pairs inside `tx`; returns the ids of the rows that were new."""
    ids = await insert_many(tx, [(plugin, user_id, event) for user_id, event in events])
    return [row_id for row_id in ids if row_id is not None]


_PER_ROW = 10
_PAYLOAD = 9  # the payload's parameter within a row
_COLUMN_PARAMS = (*range(1, _PER_ROW + 1), _PER_ROW)  # next_attempt_at repeats received_at
ROWS_PER_STATEMENT = 200


@lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def _insert_sql(rows: int, dialect: str) -> str:
    """The multi-row INSERT for `rows` rows (one text per size: drivers cache it prepared).

    No RETURNING: the common case, no replay among the rows, is told by the row count alone, and
    on SQLite every returned row is one more step of the statement, each taking the GIL back.
    Payloads arrive as JSON text, encoded in one pass over the batch; PostgreSQL casts them, so
    its driver sends plain text instead of calling the jsonb codec for every row.
    """
    payload = "::text::jsonb" if dialect == "postgresql" else ""
    marks = ", ".join(
        "(" + ", ".join(f"${n * _PER_ROW + i}{payload if i == _PAYLOAD else ''}" for i in _COLUMN_PARAMS) + ")"
        for n in range(rows)
    )
    return f"""INSERT INTO inbox (id, plugin, kind, user_id, external_user_id, object_id, event_time, dedupe_key,
                                  payload, received_at, next_attempt_at)
               VALUES {marks}
               ON CONFLICT (plugin, kind, user_id, dedupe_key) DO NOTHING"""


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def _existing_sql(rows: int) -> str:
    return f"SELECT id FROM inbox WHERE id IN ({', '.join(f'${n}' for n in range(1, rows + 1))})"


async def insert_many(q: Queries, rows: Sequence[tuple[str, str, NewEvent]]) -> list[str | None]:
    """Insert (plugin, user_id, event) rows with multi-row statements; for each, its new id, or None
    for a replay (its dedupe key is already recorded, or earlier in `rows`).

    `q` is a transaction, or the database itself when the rows fit in one statement
    (ROWS_PER_STATEMENT): one statement is atomic on its own, and then costs a single trip to the
    database (on SQLite its BEGIN, INSERT and COMMIT travel together). Only when some rows were
    replays does a second statement ask which of the fresh ids were written.

    Ids follow the order of `rows` (arrival order); the rows are written in the order of the unique
    key, the one lock order for every writer: two servers inserting overlapping keys at once (a
    replay sent to the other server) would otherwise deadlock on PostgreSQL's unique index.
    """
    if len(rows) > ROWS_PER_STATEMENT and not isinstance(q, Transaction):
        raise ValueError(f"more than {ROWS_PER_STATEMENT} inbox rows need a transaction")
    now = clock.now_ms()
    prepared = []
    for plugin, user_id, event in rows:
        check_event(event)
        payload = json_values.dumps(event.payload)
        prepared.append((_row_ids.take(now), plugin, user_id, event, _bounded_key(event.dedupe_key), payload))
    ordered = sorted(prepared, key=lambda r: (r[1], r[4], r[3].kind, r[2]))  # the unique index's order
    new: set[str] = set()
    for first in range(0, len(ordered), ROWS_PER_STATEMENT):
        chunk = ordered[first : first + ROWS_PER_STATEMENT]
        args: list[Any] = []
        for row_id, plugin, user_id, event, key, payload in chunk:
            args += [row_id, plugin, event.kind, user_id, event.external_user_id, event.object_id]
            args += [int(event.event_time) * 1000, key, payload, now]
        ids = [row[0] for row in chunk]
        inserted = await q.execute(_insert_sql(len(chunk), q.dialect), *args)
        if inserted == len(chunk):
            new.update(ids)
        elif inserted:  # some were replays: the ids are fresh, so the ones that exist are ours
            new.update(r["id"] for r in await q.fetch(_existing_sql(len(ids)), *ids))
    return [row[0] if row[0] in new else None for row in prepared]


class _RowIds:
    """UUIDv7-style ids that increase strictly within this process: time first, then a sequence
    number, then randomness, so ordering by (received_at, id) is arrival order (the claim's
    oldest-first rule breaks ties by id) - also between batches committed in the same millisecond.
    More than 4096 ids in one millisecond borrow the next millisecond's time part."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._seq = -1

    def take(self, received_ms: int) -> str:
        with self._lock:
            if received_ms > self._ms:
                self._ms, self._seq = received_ms, 0
            elif self._seq < 0xFFF:
                self._seq += 1
            else:
                self._ms, self._seq = self._ms + 1, 0
            ms, seq = self._ms, self._seq
        rand = random.getrandbits(62)  # uniqueness, not secrecy: ids are not credentials
        return str(uuid.UUID(int=(ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand))


_row_ids = _RowIds()


def check_event(event: NewEvent) -> None:
    """A plugin built the event from vendor data; refuse values no real event has."""
    if not event.kind or len(event.kind) > MAX_FIELD or not event.dedupe_key:
        raise InvalidInput("webhook event has no kind or no dedupe key")
    if len(event.external_user_id) > MAX_FIELD or len(event.object_id) > MAX_FIELD:
        raise InvalidInput("webhook event id is too long")
    if not 0 <= int(event.event_time) < 1 << 40:
        raise InvalidInput("webhook event time is out of range")


def _bounded_key(key: str) -> str:
    """Keys longer than the column's budget are hashed: still unique, still stable across replays."""
    if len(key) <= MAX_DEDUPE_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# -- the worker's transitions -------------------------------------------------------------------


def new_claim_token() -> str:
    """Names one claim: which host, process and thread hold the row (for `trainer inbox show`), made unique."""
    return f"{socket.gethostname()[:40]}:{threading.get_native_id()}:{uuid.uuid4().hex[:8]}"


async def claim(db: Database, row_id: str, token: str, *, slack_ms: int = 1000) -> InboxRow | None:
    """Take a pending, due row for processing; None if it is not claimable right now.

    One account's events are processed one at a time and oldest first: a row is not claimed while
    another row of the same account is processing or an older one is due. Vendors rotate refresh
    tokens on use (the old one dies at once), so two workers refreshing one account together would
    make the loser believe access was revoked; and a replaced summary must not overwrite a newer one.
    Whoever releases the account rings its next row (`next_for_account`).

    `slack_ms` accepts a doorbell that rings a little before `next_attempt_at` (clock skew between
    the queue's scheduler and the database) instead of leaving the row to the sweeper.
    """
    now = clock.now_ms()
    args = (row_id, now + slack_ms, now, token)
    if db.dialect == "postgresql":
        claimed = await db.fetchrow(f"SELECT {_COLUMNS} FROM inbox_claim($1, $2, $3, $4)", *args)
    else:
        claimed = await _claim_single_writer(db, *args)
    return None if claimed is None else InboxRow.from_row(claimed)


async def _claim_single_writer(db: Database, row_id: str, due: int, now: int, token: str) -> Row | None:
    """SQLite's claim: look first without the write lock (most rows that are not claimable, claimed
    elsewhere, account busy or a duplicate ring, are turned away by a read), then claim with a
    conditional UPDATE that checks the same again under the single writer's lock.

    PostgreSQL runs the same steps as one statement, the function `inbox_claim` (migration 0010),
    which also takes the account's advisory lock before the UPDATE: there, two rows of one account
    could otherwise both pass the NOT EXISTS on snapshots taken before the other's claim.
    """
    found = await db.fetchrow(f"SELECT user_id, plugin FROM inbox {_CLAIMABLE}", row_id, due, now)
    if found is None:
        return None
    async with db.transaction() as tx:
        return await tx.fetchrow(
            f"""UPDATE inbox SET state = 'processing', attempts = attempts + 1, locked_at = $3, locked_by = $4
                {_CLAIMABLE}
                RETURNING {_COLUMNS}""",
            row_id,
            due,
            now,
            token,
        )


_CLAIMABLE = """WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2
      AND NOT EXISTS (
          SELECT 1 FROM inbox AS other
          WHERE other.user_id = inbox.user_id AND other.plugin = inbox.plugin AND other.id <> inbox.id
            AND (other.state = 'processing'
                 OR (other.state = 'pending' AND other.next_attempt_at <= $3
                     AND (other.received_at < inbox.received_at
                          OR (other.received_at = inbox.received_at AND other.id < inbox.id)))))"""
"""The row, if it is pending, due ($2), and first in line for its account: no other row of the
account is processing, and none older is pending and due ($3). PostgreSQL's `inbox_claim`
(migration 0010) repeats it word for word; a change here needs a new migration of that function."""


async def next_for_account(db: Queries, user_id: str, plugin: str) -> str | None:
    """The account's oldest due pending row: the one to ring when the account is released."""
    return await db.fetchval(
        """SELECT id FROM inbox WHERE user_id = $1 AND plugin = $2 AND state = 'pending' AND next_attempt_at <= $3
           ORDER BY received_at, id LIMIT 1""",
        user_id,
        plugin,
        clock.now_ms(),
    )


async def mark_applied(tx: Transaction, row: InboxRow, result: dict[str, Any]) -> None:
    """Inside a transaction that stored a row's results without completing it (its analysis
    failed): check the claim still holds (else roll back) and remember what changed, so the retry
    still knows it."""
    changed = await tx.execute(
        "UPDATE inbox SET result = $3 WHERE id = $1 AND state = 'processing' AND locked_by = $2",
        row.id,
        row.locked_by,
        result,
    )
    if not changed:
        raise LostClaim("the inbox row was reclaimed while it was being processed")


async def finish(
    tx: Transaction,
    row: InboxRow,
    state: Literal["done", "ignored"],
    *,
    note: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Close a claimed row inside the transaction that completes its processing (both commit or neither).

    `note` says why a row is ignored, `result` what processing changed; a done row keeps the error
    of an earlier failed attempt, if any.
    """
    changed = await tx.execute(
        """UPDATE inbox SET state = $3, last_error = COALESCE($4, last_error), finished_at = $5,
                            result = COALESCE($6, result), locked_at = NULL, locked_by = NULL
           WHERE id = $1 AND state = 'processing' AND locked_by = $2""",
        row.id,
        row.locked_by,
        state,
        note,
        clock.now_ms(),
        result,
    )
    if not changed:
        raise LostClaim("the inbox row was reclaimed while it was being processed")


async def retry_later(db: Database, row: InboxRow, *, delay_s: float, error: str) -> bool:
    """Put a claimed row back to pending until now + delay; False if the claim was lost meanwhile."""
    now = clock.now_ms()
    changed = await db.execute(
        """UPDATE inbox SET state = 'pending', next_attempt_at = $3, last_error = $4, rung_at = $5,
                            locked_at = NULL, locked_by = NULL
           WHERE id = $1 AND state = 'processing' AND locked_by = $2""",
        row.id,
        row.locked_by,
        now + int(delay_s * 1000),
        redact(error),
        now,
    )
    return bool(changed)


async def dead_letter(db: Database, row: InboxRow, *, error: str) -> bool:
    """Move a claimed row to failed; an operator sees it in `trainer inbox list --state failed`."""
    changed = await db.execute(
        """UPDATE inbox SET state = 'failed', last_error = $3, finished_at = $4, locked_at = NULL, locked_by = NULL
           WHERE id = $1 AND state = 'processing' AND locked_by = $2""",
        row.id,
        row.locked_by,
        redact(error),
        clock.now_ms(),
    )
    return bool(changed)


_SECRETISH = re.compile(
    r"((?:access_|refresh_|verify_|id_)?token|client_secret|code|password|signature)=([^&\s\"']+)", re.IGNORECASE
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(message: str, limit: int = MAX_ERROR) -> str:
    """Text fit to store and show: bounded, with token-like values masked.

    Vendor errors can quote the URL they failed on, and payloads can hold one (Garmin callback URLs
    carry a token); neither belongs in a log line or on an operator's screen.
    """
    text = _SECRETISH.sub(r"\1=***", message)
    text = _BEARER.sub(r"\1***", text)
    return text[:limit]


# -- the sweeper's queries -----------------------------------------------------------------------


async def reclaim_expired(db: Database, *, lease_ms: int, max_attempts: int) -> tuple[list[str], list[str]]:
    """Rows processing longer than the lease (their worker died or hung): back to pending, or to failed
    once they have used every attempt (an event that kills its worker must not kill workers forever).

    Returns (ids to ring, ids dead-lettered).
    """
    now = clock.now_ms()
    rows = await db.fetch(
        """UPDATE inbox SET
               state = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'pending' END,
               last_error = CASE WHEN attempts >= $3
                   THEN 'the worker stopped while processing this event, on every attempt'
                   ELSE 'the worker stopped while processing this event; retrying' END,
               finished_at = CASE WHEN attempts >= $3 THEN CAST($1 AS BIGINT) ELSE NULL END,
               next_attempt_at = $1, rung_at = $1, locked_at = NULL, locked_by = NULL
           WHERE state = 'processing' AND locked_at < $2
           RETURNING id, state""",
        now,
        now - lease_ms,
        max_attempts,
    )
    return [r["id"] for r in rows if r["state"] == "pending"], [r["id"] for r in rows if r["state"] == "failed"]


async def stale_pending(db: Database, *, stale_ms: int, limit: int = 1000) -> list[str]:
    """Pending rows due for a while that nobody rang lately: their doorbell was lost. Marks them rung."""
    now = clock.now_ms()
    cut = now - stale_ms
    rows = await db.fetch(
        """UPDATE inbox SET rung_at = $1
           WHERE id IN (SELECT id FROM inbox
                        WHERE state = 'pending' AND next_attempt_at <= $2 AND (rung_at IS NULL OR rung_at <= $2)
                        ORDER BY next_attempt_at LIMIT $3)
           RETURNING id""",
        now,
        cut,
        limit,
    )
    return [r["id"] for r in rows]


async def forget_finished(db: Database, *, older_than_ms: int) -> int:
    """Delete done and ignored rows finished before the cut (dead letters stay until purged by hand)."""
    return await db.execute(
        "DELETE FROM inbox WHERE state IN ('done', 'ignored') AND finished_at < $1", clock.now_ms() - older_than_ms
    )


# -- operations (`trainer inbox`) ----------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """Which rows an operation applies to; empty fields match everything."""

    states: tuple[State, ...] = ()
    plugin: str | None = None
    user_id: str | None = None

    def where(self, first: int = 1) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.states:
            marks = ", ".join(f"${first + len(args) + i}" for i in range(len(self.states)))
            clauses.append(f"state IN ({marks})")
            args.extend(self.states)
        if self.plugin:
            args.append(self.plugin)
            clauses.append(f"plugin = ${first + len(args) - 1}")
        if self.user_id:
            args.append(self.user_id)
            clauses.append(f"user_id = ${first + len(args) - 1}")
        return (" AND ".join(clauses) or "TRUE"), args


async def list_rows(db: Queries, filter: Filter = Filter(), *, limit: int = 50) -> list[InboxRow]:
    where, args = filter.where()
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM inbox WHERE {where} ORDER BY received_at DESC, id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [InboxRow.from_row(r) for r in rows]


async def count_by_state(db: Queries, filter: Filter = Filter()) -> dict[str, int]:
    where, args = filter.where()
    rows = await db.fetch(f"SELECT state, COUNT(*) AS n FROM inbox WHERE {where} GROUP BY state", *args)
    counts = dict.fromkeys(STATES, 0)
    counts.update({r["state"]: int(r["n"]) for r in rows})
    return counts


async def get(db: Queries, row_id: str) -> InboxRow:
    """One row by id, or by an unambiguous id prefix of at least 6 characters (as `inbox list` shows)."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM inbox WHERE id = $1", row_id)
    if row is None and len(row_id) >= 6 and re.fullmatch(r"[0-9a-f-]+", row_id):
        rows = await db.fetch(f"SELECT {_COLUMNS} FROM inbox WHERE id LIKE $1 LIMIT 2", row_id + "%")
        if len(rows) > 1:
            raise InvalidInput(f"id prefix {row_id} matches more than one event")
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"no inbox event {row_id}")
    return InboxRow.from_row(row)


async def revive(db: Database, *, ids: Sequence[str] = (), filter: Filter | None = None) -> list[str]:
    """Failed (or ignored) rows back to pending with a fresh budget of attempts; returns their ids.

    Rows being processed or already waiting are left alone: reviving never creates a second claim.
    """
    now = clock.now_ms()
    if ids:
        targets = [(await get(db, i)).id for i in ids]
    else:
        where, args = (filter or Filter(states=("failed",))).where()
        targets = [r["id"] for r in await db.fetch(f"SELECT id FROM inbox WHERE {where}", *args)]
    revived: list[str] = []
    async with db.transaction() as tx:
        for row_id in targets:
            changed = await tx.execute(
                """UPDATE inbox SET state = 'pending', attempts = 0, next_attempt_at = $2, rung_at = $2,
                                    finished_at = NULL
                   WHERE id = $1 AND state IN ('failed', 'ignored')""",
                row_id,
                now,
            )
            if changed:
                revived.append(row_id)
    return revived


async def purge(db: Database, filter: Filter, *, older_than_ms: int = 0) -> int:
    """Delete finished rows (done, ignored, failed) matching `filter`; pending and processing rows never."""
    states = filter.states or ("done", "ignored", "failed")
    if set(states) & {"pending", "processing"}:
        raise InvalidInput("only done, ignored and failed events can be purged")
    where, args = Filter(states, filter.plugin, filter.user_id).where()
    args.append(clock.now_ms() - older_than_ms)
    return await db.execute(f"DELETE FROM inbox WHERE {where} AND finished_at <= ${len(args)}", *args)

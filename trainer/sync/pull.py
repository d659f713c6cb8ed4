"""sync.pullChanges: the changes a device has not seen, written out as the JSON text of the response.

Everything is read inside one database snapshot, and the watermark (`timestamp`) is the user's
stamp as that same snapshot sees it: a writer that has not committed yet has taken, or will take, a
larger stamp (stamps are taken under the user's row lock, see trainer/store/stamps.py), so the next
pull finds it. Rows are streamed from a server-side cursor and serialized in batches, so a first
sync of a large account never holds the whole response in memory.

Three kinds of pull:
- first sync (`lastPulledAt` null/0): every row as `created`, `deleted` empty (turbo-login shape);
- full resync (`resetRequired: true`): the same snapshot, for a device whose `lastPulledAt` is older
  than the oldest tombstone still kept (or newer than anything this server issued, e.g. after a
  restore from backup): it may have missed deletions, so the app must drop local rows that are
  synced but absent from the snapshot (docs/sync.md);
- incremental: rows with `updated_stamp > lastPulledAt`, `created` when `created_stamp >
  lastPulledAt` (unless the calling device created the row: it holds it), else `updated`;
  tombstones newer than `lastPulledAt` as `deleted`. Rows and tombstones whose last change came
  from the calling device are skipped (it already has them: WatermelonDB issue #649); any later
  change by someone else clears that mark, so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer import metrics
from trainer.db import Database, Transaction
from trainer.store.stamps import sync_state
from trainer.sync.tables import TABLES, Column, Table

FLUSH_BYTES = 64 * 1024
CURSOR_BATCH = 500
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class MigrationRequest:
    """WatermelonDB's `migration` pull argument, reduced to what this server declares."""

    tables: frozenset[str] = frozenset()
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def whitelisted(cls, tables: list[str], columns: Mapping[str, list[str]]) -> MigrationRequest:
        """Keep only known tables and client-visible columns; anything else is silently ignored."""
        known_columns = {
            t: tuple(c for c in cols if c in TABLES[t].by_name) for t, cols in columns.items() if t in TABLES
        }
        return cls(frozenset(t for t in tables if t in TABLES), {t: c for t, c in known_columns.items() if c})


def select_list(table: Table) -> str:
    """The client columns as plain values (JSON documents as text), `id` first."""
    parts = ["id"]
    for column in table.columns:
        parts.append(f"CAST({column.name} AS TEXT) AS {column.name}" if column.kind == "json" else column.name)
    return ", ".join(parts)


def record_json(table: Table, dialect: str) -> str:
    """SQL for the JSON text of one pulled record, built by the database itself.

    The database already has each value in hand, and its JSON builder is far cheaper than a Python
    dict per row plus json.dumps: this is what keeps a pull within a small factor of a bare SELECT.
    Booleans are JSON booleans (SQLite stores 0/1), days ISO text, JSON documents a string of JSON.
    """
    pairs = ["'id', id"]
    for column in table.columns:
        value = column.name
        if column.kind == "json":
            value = f"CAST({column.name} AS TEXT)"
        elif column.kind == "boolean" and dialect == "sqlite":
            value = f"json(CASE WHEN {column.name} THEN 'true' ELSE 'false' END)"
        pairs.append(f"'{column.name}', {value}")
    if dialect == "sqlite":
        return f"json_object({', '.join(pairs)})"
    return f"CAST(json_build_object({', '.join(pairs)}) AS TEXT)"


def _select(table: Table, dialect: str) -> str:
    return f"SELECT id, {record_json(table, dialect)} AS record FROM {table.name} WHERE user_id = $1"


def _non_default(column: Column) -> str:
    """SQL that is true when the column differs from the value WatermelonDB gave it when added."""
    if column.optional:
        return f"{column.name} IS NOT NULL"
    if column.kind == "text":
        return f"{column.name} <> ''"
    if column.kind == "boolean":
        return f"{column.name} = TRUE"
    if column.kind in ("number", "integer", "instant"):
        return f"{column.name} <> 0"
    return "TRUE"  # days and JSON documents are never the client's default ''


def incremental_sql(table: Table, migration: MigrationRequest, dialect: str) -> tuple[str, str | None]:
    """(created, updated) queries with $1 user, $2 lastPulledAt, $3 calling device ('' = unknown).

    A table new to the client (migration) is sent whole as `created`: only $1, and no `updated` query.
    """
    base = _select(table, dialect)
    if table.name in migration.tables:
        return base, None
    wanted = "updated_stamp > $2 AND (changed_by_device IS NULL OR changed_by_device <> $3)"
    extra = [_non_default(table.by_name[c]) for c in migration.columns.get(table.name, ())]
    if extra:
        wanted = f"({wanted}) OR {' OR '.join(extra)}"
    # new to this device: created after its last pull, and not by itself (it holds what it created)
    new = "created_stamp > $2 AND (created_by_device IS NULL OR created_by_device <> $3)"
    return f"{base} AND ({wanted}) AND {new}", f"{base} AND ({wanted}) AND NOT ({new})"


_TOMBSTONES_SQL = (
    "SELECT row_id FROM sync_tombstones WHERE user_id = $1 AND table_name = $2 AND deleted_stamp > $3 "
    "AND (changed_by_device IS NULL OR changed_by_device <> $4)"
)


@dataclass(frozen=True)
class PullRequest:
    user_id: str
    device_id: str | None
    last_pulled_at: int | None
    migration: MigrationRequest | None = None

    @property
    def is_first(self) -> bool:
        return not self.last_pulled_at or self.last_pulled_at <= 0


class _Buffer:
    """Collects encoded pieces and hands them out in chunks of about FLUSH_BYTES."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.records = 0  # rows and deleted ids written, for the sync-size metric

    def add(self, piece: bytes) -> bytes | None:
        self.parts.append(piece)
        self.size += len(piece)
        return self.take() if self.size >= FLUSH_BYTES else None

    def take(self) -> bytes:
        chunk = b"".join(self.parts)
        self.parts, self.size = [], 0
        return chunk


async def _json_array(
    tx: Transaction, sql: str, args: tuple[Any, ...], out: _Buffer, seen: set[str] | None
) -> AsyncIterator[bytes]:
    """Append `[row,row,...]` for the query's rows to `out`, yielding full chunks as they fill."""
    chunk = out.add(b"[")
    if chunk:
        yield chunk
    batch: list[str] = []
    first = True
    async for row in tx.cursor(sql, *args, batch=CURSOR_BATCH):
        batch.append(row["record"])
        out.records += 1
        if seen is not None:
            seen.add(row["id"])
        if len(batch) >= CURSOR_BATCH:
            chunk = out.add((b"" if first else b",") + ",".join(batch).encode())
            first, batch = False, []
            if chunk:
                yield chunk
    if batch:
        out.add((b"" if first else b",") + ",".join(batch).encode())
    chunk = out.add(b"]")
    if chunk:
        yield chunk


async def pull_json(db: Database, request: PullRequest) -> AsyncIterator[bytes]:
    """The `data` of a pullChanges response as UTF-8 JSON chunks; the first chunk comes only after
    the snapshot is open and the watermark read, so errors before it can still be reported normally."""
    async with db.snapshot() as tx:
        state = await sync_state(tx, request.user_id)
        timestamp = max(state.stamp, 1)
        last = request.last_pulled_at or 0
        reset = not request.is_first and (last < state.purged_stamp or last > timestamp)
        full = request.is_first or reset
        yield b'{"timestamp":%d,"resetRequired":%s,"changes":{' % (timestamp, b"true" if reset else b"false")
        out = _Buffer()
        device = request.device_id or ""
        migration = request.migration or MigrationRequest()
        for index, table in enumerate(TABLES.values()):
            out.add(b'%s"%s":{"created":' % (b"," if index else b"", table.name.encode()))
            if full:
                async for chunk in _json_array(tx, _select(table, tx.dialect), (request.user_id,), out, None):
                    yield chunk
                out.add(b',"updated":[],"deleted":[]}')
                continue
            created_sql, updated_sql = incremental_sql(table, migration, tx.dialect)
            args = (request.user_id, last, device)
            seen: set[str] = set()
            created_args = args if updated_sql is not None else args[:1]  # a whole new table: only $1
            async for chunk in _json_array(tx, created_sql, created_args, out, seen):
                yield chunk
            out.add(b',"updated":')
            if updated_sql is None:
                out.add(b"[]")
            else:
                async for chunk in _json_array(tx, updated_sql, args, out, seen):
                    yield chunk
            deleted = [
                r["row_id"]
                for r in await tx.fetch(_TOMBSTONES_SQL, request.user_id, table.name, last, device)
                if r["row_id"] not in seen
            ]
            out.records += len(deleted)
            out.add(b',"deleted":' + _encode(deleted).encode() + b"}")
        out.add(b"}}")
        yield out.take()
        metrics.observe_sync(out.records, "pull")

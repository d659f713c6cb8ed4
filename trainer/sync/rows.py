"""Row-level reads and writes of the synced tables, shared by push (device writes) and writes.py
(server writes), so both stamp, tombstone and cascade in exactly the same way.

Every write here runs inside a transaction that already holds the user's stamp (`next_stamp`), which
also serializes the user's writers. Table and column names come from trainer.sync.tables only,
never from input, so composing SQL from them is safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from trainer.db import Queries, Row, Transaction
from trainer.store.stamps import forget_deletions, record_deletions
from trainer.sync.tables import SERVER_ONLY_COLUMNS, Table, children_of

CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(first: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(first, first + count))


def stored_columns(table: Table) -> tuple[str, ...]:
    """Every column a write may set: the client-visible ones plus server-only ones."""
    return tuple(c.name for c in table.columns) + SERVER_ONLY_COLUMNS.get(table.name, ())


async def rows_by_id(tx: Queries, table: Table, ids: Sequence[str]) -> dict[str, Row]:
    """Existing rows with these ids, whoever owns them (callers check `user_id`)."""
    columns = ", ".join(
        ("id", "user_id", "created_stamp", "updated_stamp", "changed_by_device", *stored_columns(table))
    )
    found: dict[str, Row] = {}
    for part in chunks(sorted(set(ids))):
        sql = f"SELECT {columns} FROM {table.name} WHERE id IN ({placeholders(1, len(part))})"
        for row in await tx.fetch(sql, *part):
            found[row["id"]] = row
    return found


async def tombstones_by_id(tx: Queries, table: Table, ids: Sequence[str]) -> dict[str, Row]:
    """Tombstones of these ids in this table, whoever owns them."""
    found: dict[str, Row] = {}
    for part in chunks(sorted(set(ids))):
        sql = (
            "SELECT row_id, user_id, deleted_stamp, changed_by_device FROM sync_tombstones "
            f"WHERE table_name = $1 AND row_id IN ({placeholders(2, len(part))})"
        )
        for row in await tx.fetch(sql, table.name, *part):
            found[row["row_id"]] = row
    return found


async def owned_ids(tx: Queries, user_id: str, table: Table, ids: Iterable[str]) -> set[str]:
    """The subset of `ids` that are live rows of this user."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for part in chunks(wanted):
        sql = f"SELECT id FROM {table.name} WHERE user_id = $1 AND id IN ({placeholders(2, len(part))})"
        found.update(r["id"] for r in await tx.fetch(sql, user_id, *part))
    return found


@lru_cache(maxsize=256)
def _upsert_sql(table_name: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(
        ("id", "user_id", *columns, "created_stamp", "updated_stamp", "changed_by_device", "created_by_device")
    )
    n = len(columns)
    values = placeholders(1, n + 2) + f", ${n + 3}, ${n + 3}, ${n + 4}, ${n + 5}"
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns, "updated_stamp", "changed_by_device"))
    return (
        f"INSERT INTO {table_name} ({names}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE {table_name}.user_id = excluded.user_id"
    )


async def upsert(tx: Transaction, user_id: str, table: Table, row: Row, stamp: int, device_id: str | None) -> bool:
    """Patch the user's row (only the columns in `row` change) or insert it; False if the id is another user's.

    Update first, insert only when nothing matched: an INSERT ... ON CONFLICT of a partial row would
    trip NOT NULL checks on the proposed insert even when it ends up an update.
    """
    columns = tuple(k for k in row if k != "id")
    values = [row[c] for c in columns]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate((*columns, "updated_stamp", "changed_by_device"), start=3))
    sql = f"UPDATE {table.name} SET {sets} WHERE id = $1 AND user_id = $2"
    changed = await tx.execute(sql, row["id"], user_id, *values, stamp, device_id)
    if not changed:
        sql = _insert_sql(table.name, columns) + " ON CONFLICT (id) DO NOTHING"
        changed = await tx.execute(sql, row["id"], user_id, *values, stamp, device_id)
    if changed:
        await forget_deletions(tx, user_id, table.name, [row["id"]])
    return bool(changed)


async def insert_new(tx: Transaction, user_id: str, table: Table, row: Row, stamp: int, device_id: str | None) -> None:
    """Insert a row under an id just made (`new_id()`): nothing can hold that id, nor a tombstone
    of it, so one INSERT does what `upsert` needs three statements for."""
    columns = tuple(k for k in row if k != "id")
    await tx.execute(_insert_sql(table.name, columns), row["id"], user_id, *(row[c] for c in columns), stamp, device_id)


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """INSERT of one row: $1 id, $2 user, the columns, then the stamp (created and updated) and the device."""
    names = ", ".join(("id", "user_id", *columns, "created_stamp", "updated_stamp", "changed_by_device"))
    marks = placeholders(1, len(columns) + 2) + f", ${len(columns) + 3}, ${len(columns) + 3}, ${len(columns) + 4}"
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"


async def upsert_many(
    tx: Transaction,
    user_id: str,
    table: Table,
    rows: Sequence[tuple[Row, str | None]],
    stamp: int,
    creator: str | None,
) -> None:
    """Upsert full rows (each with every column of the first) whose ownership the caller checked.

    Each row comes with the device to record as its last changer; `creator` is recorded on rows that
    are inserted (it already holds them, so its pulls list them as updated, not created).
    """
    if not rows:
        return
    columns = tuple(k for k in rows[0][0] if k != "id")
    sql = _upsert_sql(table.name, columns)
    await tx.executemany(
        sql, [[row["id"], user_id, *(row[c] for c in columns), stamp, device, creator] for row, device in rows]
    )
    await forget_deletions(tx, user_id, table.name, [row["id"] for row, _ in rows])


async def delete(
    tx: Transaction, user_id: str, table: Table, ids: Iterable[str], stamp: int, device_id: str | None
) -> list[str]:
    """Delete the user's rows with these ids, leave tombstones, and carry the deletion to children.

    Children declared `cascade` are deleted (and tombstoned) too; `set_null` references are cleared
    with a new stamp so devices learn of it. Children changes carry no device: even the device that
    deleted the parent must receive them. Returns the ids actually deleted (unknown ids are ignored).
    """
    existing = sorted(await owned_ids(tx, user_id, table, ids))
    if not existing:
        return []
    for child, column in children_of(table.name):
        for part in chunks(existing):
            marks = placeholders(2, len(part))
            if column.on_parent_delete == "cascade":
                rows = await tx.fetch(
                    f"SELECT id FROM {child.name} WHERE user_id = $1 AND {column.name} IN ({marks})", user_id, *part
                )
                await delete(tx, user_id, child, [r["id"] for r in rows], stamp, None)
            else:
                await tx.execute(
                    f"UPDATE {child.name} SET {column.name} = NULL, updated_stamp = ${len(part) + 2}, "
                    f"changed_by_device = NULL WHERE user_id = $1 AND {column.name} IN ({marks})",
                    user_id,
                    *part,
                    stamp,
                )
    for part in chunks(existing):
        await tx.execute(
            f"DELETE FROM {table.name} WHERE user_id = $1 AND id IN ({placeholders(2, len(part))})", user_id, *part
        )
    await record_deletions(tx, user_id, table.name, existing, stamp, device_id)
    return existing


async def tombstone_unknown(tx: Transaction, user_id: str, table: Table, ids: Iterable[str], stamp: int) -> None:
    """Tell every device of the user to delete ids the server refused to keep (e.g. orphans)."""
    await record_deletions(tx, user_id, table.name, ids, stamp, None)

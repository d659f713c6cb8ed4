"""What the schema holds, read from the database's own catalog rather than from a list kept by hand.

Code that must cover every table (data export and deletion, metrics of optional tables) asks here,
so a table added by a later migration is covered without anyone remembering to register it.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.db.base import Queries

_SQLITE_TABLES = """
SELECT name FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY name"""
_SQLITE_COLUMNS = """
SELECT m.name AS table_name, c.name AS column_name, lower(c.type) AS data_type
FROM sqlite_master m, pragma_table_info(m.name) c
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY m.name, c.cid"""
_SQLITE_FOREIGN_KEYS = """
SELECT m.name AS table_name, f."from" AS column_name, f."table" AS ref_table, f."to" AS ref_column,
       f.on_delete AS on_delete
FROM sqlite_master m, pragma_foreign_key_list(m.name) f
WHERE m.type = 'table'"""

_PG_TABLES = """
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
ORDER BY table_name"""
_PG_COLUMNS = """
SELECT table_name, column_name, lower(data_type) AS data_type
FROM information_schema.columns
WHERE table_schema = current_schema()
ORDER BY table_name, ordinal_position"""
_PG_FOREIGN_KEYS = """
SELECT src.relname AS table_name, a.attname AS column_name, dst.relname AS ref_table, b.attname AS ref_column,
       CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
                          WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END AS on_delete
FROM pg_constraint c
JOIN pg_class src ON src.oid = c.conrelid
JOIN pg_class dst ON dst.oid = c.confrelid
JOIN pg_namespace n ON n.oid = src.relnamespace
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = c.confkey[1]
WHERE c.contype = 'f' AND n.nspname = current_schema() AND cardinality(c.conkey) = 1"""


@dataclass(frozen=True)
class ForeignKey:
    table: str
    column: str
    ref_table: str
    ref_column: str
    on_delete: str  # CASCADE, SET NULL, ... as the database reports it


async def tables(db: Queries) -> list[str]:
    """Every base table of the schema, sorted."""
    sql = _SQLITE_TABLES if db.dialect == "sqlite" else _PG_TABLES
    return [r["name"] for r in await db.fetch(sql)]


async def columns(db: Queries) -> dict[str, dict[str, str]]:
    """table -> {column: declared type (lower case)}, columns in declaration order."""
    sql = _SQLITE_COLUMNS if db.dialect == "sqlite" else _PG_COLUMNS
    found: dict[str, dict[str, str]] = {}
    for row in await db.fetch(sql):
        found.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    return found


async def foreign_keys(db: Queries) -> list[ForeignKey]:
    """Single-column foreign keys of every table."""
    sql = _SQLITE_FOREIGN_KEYS if db.dialect == "sqlite" else _PG_FOREIGN_KEYS
    rows = await db.fetch(sql)
    return [
        ForeignKey(r["table_name"], r["column_name"], r["ref_table"], r["ref_column"] or "id", r["on_delete"].upper())
        for r in rows
    ]


async def has_table(db: Queries, table: str, *required_columns: str) -> bool:
    """True when `table` exists with all of `required_columns` (optional features guard on this)."""
    found = (await columns(db)).get(table)
    return found is not None and all(c in found for c in required_columns)

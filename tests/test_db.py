"""The Database interface behaves the same on SQLite and PostgreSQL.

Code above trainer/db never branches on the dialect for ordinary queries, so each promise of
base.py (row shapes, value types, transactions, snapshots, locks) is checked on both backends.
"""

from __future__ import annotations

import asyncio

import pytest

from trainer.db import Database, create_database
from trainer.db.sqlite import split_statements, to_sqlite
from trainer.errors import Unavailable

_PROBE = {
    "sqlite": "CREATE TABLE probe (id TEXT PRIMARY KEY, doc JSON, flag BOOLEAN, day TEXT, at BIGINT, n INTEGER)",
    "postgresql": "CREATE TABLE probe (id TEXT PRIMARY KEY, doc JSONB, flag BOOLEAN, day DATE, at BIGINT, n INTEGER)",
}
INSERT = "INSERT INTO probe (id, doc, flag, day, at, n) VALUES ($1, $2, $3, $4, $5, $6)"


@pytest.fixture
async def probe(db: Database) -> Database:
    await db.execute(_PROBE[db.dialect])
    return db


async def count(db: Database) -> int:
    return await db.fetchval("SELECT count(*) FROM probe")


async def test_rows_are_dicts_and_values_round_trip(probe: Database) -> None:
    doc = {"name": "Zürich 10k", "laps": [1, 2.5, None], "nested": {"ok": True}}
    await probe.execute(INSERT, "a", doc, True, "2024-02-29", 1_709_251_200_123, 7)
    await probe.execute(INSERT, "b", [], False, "1999-12-31", 0, None)
    rows = await probe.fetch("SELECT id, doc, flag, day, at, n FROM probe ORDER BY id")
    assert rows == [
        {"id": "a", "doc": doc, "flag": True, "day": "2024-02-29", "at": 1_709_251_200_123, "n": 7},
        {"id": "b", "doc": [], "flag": False, "day": "1999-12-31", "at": 0, "n": None},
    ]
    assert type(rows[0]["flag"]) is bool and type(rows[1]["flag"]) is bool
    assert type(rows[0]["at"]) is int


async def test_fetchrow_fetchval_and_missing_rows(probe: Database) -> None:
    await probe.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
    assert await probe.fetchrow("SELECT id FROM probe WHERE id = $1", "a") == {"id": "a"}
    assert await probe.fetchrow("SELECT id FROM probe WHERE id = $1", "zzz") is None
    assert await probe.fetchval("SELECT n FROM probe WHERE id = $1", "zzz") is None
    assert await probe.fetch("SELECT id FROM probe WHERE id = $1", "zzz") == []


async def test_execute_returns_rows_changed(probe: Database) -> None:
    await probe.executemany(INSERT, [(str(i), {}, i % 2 == 0, "2024-01-01", i, i) for i in range(5)])
    assert await probe.execute("UPDATE probe SET n = n + 1 WHERE flag = $1", True) == 3
    assert await probe.execute("UPDATE probe SET n = 0 WHERE id = $1", "none") == 0
    assert await probe.execute("DELETE FROM probe") == 5


async def test_placeholder_used_twice(probe: Database) -> None:
    await probe.execute(INSERT, "a", {}, True, "2024-01-01", 5, 5)
    assert await probe.fetchval("SELECT count(*) FROM probe WHERE at = $1 AND n = $1", 5) == 1


async def test_write_through_fetch_with_returning_is_kept(probe: Database) -> None:
    rows = await probe.fetch(INSERT + " RETURNING id, n", "r", {"x": 1}, False, "2024-01-01", 1, 42)
    assert rows == [{"id": "r", "n": 42}]
    assert await count(probe) == 1


async def test_transaction_commits_together(probe: Database) -> None:
    async with probe.transaction() as tx:
        await tx.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
        await tx.execute(INSERT, "b", {}, True, "2024-01-01", 2, 2)
        assert await tx.fetchval("SELECT count(*) FROM probe") == 2  # its own writes
        assert await count(probe) == 0  # nobody else's yet
    assert await count(probe) == 2


async def test_transaction_rolls_back_on_error(probe: Database) -> None:
    with pytest.raises(RuntimeError):
        async with probe.transaction() as tx:
            await tx.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
            raise RuntimeError("boom")
    assert await count(probe) == 0
    # The connection is usable afterwards (the rollback really ended the transaction).
    await probe.execute(INSERT, "b", {}, True, "2024-01-01", 1, 1)
    assert await count(probe) == 1


async def test_failed_statement_rolls_back_the_whole_transaction(probe: Database) -> None:
    await probe.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with probe.transaction() as tx:
            await tx.execute(INSERT, "b", {}, True, "2024-01-01", 1, 1)
            await tx.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
    assert [r["id"] for r in await probe.fetch("SELECT id FROM probe")] == ["a"]


async def test_snapshot_sees_one_state_throughout(probe: Database) -> None:
    await probe.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)
    async with probe.snapshot() as snap:
        assert await snap.fetchval("SELECT count(*) FROM probe") == 1
        await probe.execute(INSERT, "b", {}, True, "2024-01-01", 2, 2)  # commits meanwhile
        assert await snap.fetchval("SELECT count(*) FROM probe") == 1
    assert await count(probe) == 2


async def test_snapshot_is_read_only_on_postgres(probe: Database) -> None:
    if probe.dialect != "postgresql":
        pytest.skip("SQLite snapshots are rolled back at the end instead")
    with pytest.raises(Exception, match="read-only"):
        async with probe.snapshot() as snap:
            await snap.execute(INSERT, "a", {}, True, "2024-01-01", 1, 1)


async def test_cursor_streams_every_row(probe: Database) -> None:
    await probe.executemany(INSERT, [(f"{i:03d}", {"i": i}, True, "2024-01-01", i, i) for i in range(23)])
    async with probe.snapshot() as snap:
        seen = [row async for row in snap.cursor("SELECT id, doc FROM probe ORDER BY id", batch=5)]
    assert [r["doc"]["i"] for r in seen] == list(range(23))


async def test_lock_serializes_transactions_on_one_key(probe: Database) -> None:
    events: list[str] = []

    async def worker(name: str) -> None:
        async with probe.transaction() as tx:
            await tx.lock("probe-key")
            events.append(f"{name}+")
            await asyncio.sleep(0.05)
            await tx.execute(INSERT, name, {}, True, "2024-01-01", 1, 1)
            events.append(f"{name}-")

    await asyncio.gather(worker("a"), worker("b"))
    # Each holder finished before the other began: no interleaving.
    assert events in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    assert await count(probe) == 2


async def test_server_version_names_the_backend(db: Database) -> None:
    version = await db.server_version()
    assert version.startswith({"sqlite": "SQLite ", "postgresql": "PostgreSQL 16"}[db.dialect])


async def test_closed_database_is_unavailable(db_url: str) -> None:
    database = create_database(db_url, pool_size=1)
    await database.open()
    await database.close()
    with pytest.raises(Unavailable):
        await database.fetch("SELECT 1")


async def test_open_failure_is_unavailable(backend: str, tmp_path) -> None:
    if backend == "sqlite":
        (tmp_path / "dir.db").mkdir()
        url = f"sqlite:///{tmp_path / 'dir.db'}"
    else:
        url = "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(Unavailable):
        await create_database(url, pool_size=1).open()


async def test_context_manager_opens_and_closes(db_url: str) -> None:
    async with create_database(db_url, pool_size=1) as database:
        assert await database.fetchval("SELECT 1") == 1
    with pytest.raises(Unavailable):
        await database.fetchval("SELECT 1")


def test_unknown_url_scheme() -> None:
    with pytest.raises(ValueError, match="sqlite:/// or postgresql://"):
        create_database("mysql://localhost/x")


def test_sqlite_placeholders_and_script_splitting() -> None:
    assert to_sqlite("SELECT $1, $12, '$'") == "SELECT ?1, ?12, '$'"
    script = """
        -- a comment
        CREATE TABLE a (x INTEGER);
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            UPDATE a SET x = x + 1; UPDATE a SET x = x + 2;
        END;
        INSERT INTO a VALUES (';');
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE b (x INTEGER)")

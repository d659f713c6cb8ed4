"""Schema migrations: from empty, idempotent, checked against the program, atomic per file.

Runs on both dialects, through the library and through `trainer migrate`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from trainer_cli.main import app as cli
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET
from trainer.app import create_app
from trainer.db import Database, create_database
from trainer.db import migrate as migrations
from trainer.db.migrate import Migration, MigrationError, available, ensure_current, migrate, pending, status

runner = CliRunner()

_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    "postgresql": "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
}
CORE_TABLES = {"schema_migrations", "users", "refresh_families", "refresh_tokens", "invites", "login_throttle"}


async def tables(db: Database) -> set[str]:
    return {r["name"] for r in await db.fetch(_TABLES[db.dialect])}


@pytest.fixture
async def empty(empty_db_url: str):
    database = create_database(empty_db_url, pool_size=3)
    await database.open()
    yield database
    await database.close()


def test_both_dialects_ship_the_same_migrations() -> None:
    sqlite = [(m.version, m.name) for m in available("sqlite")]
    postgres = [(m.version, m.name) for m in available("postgresql")]
    assert sqlite == postgres
    assert sqlite[0][0] == 1
    assert [v for v, _ in sqlite] == sorted({v for v, _ in sqlite})


async def test_from_empty_then_idempotent(empty: Database) -> None:
    assert await tables(empty) == set()
    known = available(empty.dialect)
    applied = await migrate(empty)
    assert [m.version for m in applied] == [m.version for m in known]
    assert await tables(empty) >= CORE_TABLES
    rows = await empty.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert rows == [{"version": m.version, "checksum": m.checksum} for m in known]

    before = await empty.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert await migrate(empty) == []
    assert await empty.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version") == before
    await ensure_current(empty)


async def test_status_and_pending_change_nothing(empty: Database) -> None:
    states = await status(empty)
    assert states and all(s.applied_at is None for s in states)
    assert [m.version for m in await pending(empty)] == [s.version for s in states]
    assert await tables(empty) == set()  # reading the status created no table

    await migrate(empty)
    assert all(s.applied_at is not None for s in await status(empty))
    assert await pending(empty) == []


async def test_schema_behind_is_refused_at_startup(empty: Database, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="behind; run `trainer migrate`"):
        await ensure_current(empty)
    settings_kwargs = {"data_dir": tmp_path, "secret_key": TEST_SECRET, "auto_migrate": False}
    from trainer.config import load_settings

    settings = load_settings(None, database_url=empty.url, **settings_kwargs)
    application = create_app(settings)
    from aiohttp.test_utils import TestServer

    with pytest.raises(MigrationError):
        async with TestServer(application):
            pass


async def test_database_newer_than_the_program_is_refused(db: Database) -> None:
    await db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        9999,
        "from_the_future",
        "0" * 64,
        0,
    )
    for check in (status, pending, migrate, ensure_current):
        with pytest.raises(MigrationError, match="newer than this program knows"):
            await check(db)


async def test_edited_migration_is_refused(db: Database) -> None:
    await db.execute("UPDATE schema_migrations SET checksum = $1 WHERE version = 1", "f" * 64)
    with pytest.raises(MigrationError, match=r"0001_\w+ was changed after it was applied"):
        await migrate(db)
    with pytest.raises(MigrationError, match="was changed"):
        await ensure_current(db)


async def test_failing_migration_leaves_nothing_half_applied(empty: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real = available(empty.dialect)
    broken = Migration(
        len(real) + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\n"
        "INSERT INTO half_done VALUES (1);\n"
        "INSERT INTO no_such_table VALUES (1);\n",
    )
    monkeypatch.setattr(migrations, "available", lambda dialect: [*available(dialect), broken])
    with pytest.raises(Exception, match="no_such_table"):
        await migrate(empty)
    # The good migrations before it committed, each in its own transaction; the broken one left no trace.
    assert "half_done" not in await tables(empty)
    versions = [r["version"] for r in await empty.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in real]
    assert [m.name for m in await pending(empty)] == ["broken"]

    fixed = Migration(broken.version, "broken", "CREATE TABLE half_done (x INTEGER);\n")
    monkeypatch.setattr(migrations, "available", lambda dialect: [*available(dialect), fixed])
    assert [m.name for m in await migrate(empty)] == ["broken"]
    assert "half_done" in await tables(empty)


async def test_two_processes_migrating_at_once_apply_each_file_once(empty_db_url: str) -> None:
    first, second = create_database(empty_db_url, pool_size=2), create_database(empty_db_url, pool_size=2)
    await first.open()
    await second.open()
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        assert sorted(m.version for r in results for m in r) == [m.version for m in available(first.dialect)]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(available(first.dialect))
    finally:
        await first.close()
        await second.close()


# -- through the CLI ------------------------------------------------------------------------------


def invoke(url: str, *args: str):
    return runner.invoke(cli, ["migrate", *args], env={"TRAINER_DATABASE_URL": url, "COLUMNS": "200"})


async def read_tables(url: str) -> set[str]:
    async with create_database(url, pool_size=1) as database:
        return await tables(database)


def test_cli_migrate_creates_the_schema_then_says_up_to_date(empty_db_url: str) -> None:
    result = invoke(empty_db_url)
    assert result.exit_code == 0, result.output
    names = [f"{m.version:04d}_{m.name}" for m in available("sqlite")]
    assert result.stdout.split() == [word for n in names for word in ("applied", n)]
    assert asyncio.run(read_tables(empty_db_url)) >= CORE_TABLES

    again = invoke(empty_db_url)
    assert again.exit_code == 0
    assert again.stdout.strip() == "database schema is up to date; nothing to do"


def test_cli_dry_run_changes_nothing(empty_db_url: str) -> None:
    result = invoke(empty_db_url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert re.search(r"would apply 0001_\w+", result.stdout)
    assert asyncio.run(read_tables(empty_db_url)) == set()


def test_cli_status_lists_pending_then_applied(empty_db_url: str) -> None:
    before = invoke(empty_db_url, "--status")
    assert before.exit_code == 0, before.output
    assert "0001" in before.stdout and "pending" in before.stdout
    assert asyncio.run(read_tables(empty_db_url)) == set()
    assert invoke(empty_db_url).exit_code == 0
    after = invoke(empty_db_url, "--status")
    assert "pending" not in after.stdout
    assert re.search(r"0001 .* \d{4}-\d\d-\d\dT", after.stdout)


def test_cli_refuses_a_newer_database_in_one_line(db_url: str) -> None:
    async def from_the_future() -> None:
        async with create_database(db_url, pool_size=1) as database:
            await database.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'x', 'x', 0)"
            )

    asyncio.run(from_the_future())
    result = invoke(db_url)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "newer than this program knows" in result.stderr


def test_cli_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = invoke("postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot connect to PostgreSQL")
    assert len(result.stderr.strip().splitlines()) == 1

"""`trainer backup` / `trainer restore`: consistent copies while writers run, and restores that refuse
what would damage the deployment."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from trainer_cli.main import app
from typer.testing import CliRunner

from trainer import backup as backups
from trainer.db import create_database
from trainer.db.migrate import migrate

runner = CliRunner()


def make_database(path: Path) -> Path:
    async def body() -> None:
        db = create_database(f"sqlite:///{path}")
        await db.open()
        try:
            await migrate(db)
        finally:
            await db.close()

    asyncio.run(body())
    return path


def add_user(conn: sqlite3.Connection, n: int) -> None:
    conn.execute(
        "INSERT INTO users (id, email, password_hash, created_at, updated_at, password_changed_at)"
        " VALUES (?, ?, 'h', 0, 0, 0)",
        (f"user-{n}", f"u{n}@example.com"),
    )


def user_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()


def test_backup_is_consistent_while_a_writer_runs(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    stop = threading.Event()
    written = [0]

    def keep_writing() -> None:
        writer = sqlite3.connect(live, isolation_level=None, timeout=10)
        writer.execute("PRAGMA journal_mode = WAL")
        while not stop.is_set():
            writer.execute("BEGIN IMMEDIATE")
            add_user(writer, written[0])
            writer.execute("COMMIT")
            written[0] += 1
        writer.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while written[0] < 20:
            stop.wait(0.01)
        copies = [backups.backup_sqlite(live, tmp_path / f"copy{i}.db") for i in range(3)]
    finally:
        stop.set()
        thread.join()
    counts = [user_count(c.path) for c in copies]
    assert counts == sorted(counts) and counts[0] >= 20 and counts[-1] <= written[0]
    for copy in copies:
        assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600  # it holds user data
        assert not Path(str(copy.path) + "-wal").exists()  # one self-contained file
        assert backups.inspect_backup(copy.path)[1] == 0  # a sound trainer database, nothing pending


def test_backup_refuses_to_overwrite_without_flag(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    target = tmp_path / "b.db"
    target.write_text("precious")
    with pytest.raises(backups.BackupError, match="already exists"):
        backups.backup_sqlite(live, target)
    assert target.read_text() == "precious"
    backups.backup_sqlite(live, target, overwrite=True)
    assert backups.inspect_backup(target)[0] > 0


def test_restore_round_trip_keeps_previous_file(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    conn = sqlite3.connect(live, isolation_level=None)
    add_user(conn, 1)
    conn.close()
    saved = backups.backup_sqlite(live, tmp_path / "saved.db").path
    conn = sqlite3.connect(live, isolation_level=None)
    add_user(conn, 2)
    conn.close()

    result = backups.restore_sqlite(saved, live)
    assert user_count(live) == 1
    assert result.previous_kept_as == tmp_path / "trainer.db.bak"
    assert user_count(result.previous_kept_as) == 2
    again = backups.restore_sqlite(saved, live)  # an existing .bak is never overwritten
    assert again.previous_kept_as == tmp_path / "trainer.db.bak.1"
    assert user_count(tmp_path / "trainer.db.bak") == 2


def test_restore_refuses_while_database_is_open_elsewhere(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    saved = backups.backup_sqlite(live, tmp_path / "saved.db").path
    server = sqlite3.connect(live, isolation_level=None)  # what a running server or worker holds
    server.execute("PRAGMA journal_mode = WAL")
    server.execute("SELECT count(*) FROM users").fetchone()
    try:
        assert backups.in_use(live)
        result = runner.invoke(app, ["restore", str(saved)], env={"TRAINER_DATABASE_URL": f"sqlite:///{live}"})
        assert result.exit_code == 1
        assert "open in another process" in result.output
        assert not (tmp_path / "trainer.db.bak").exists()
        forced = runner.invoke(
            app, ["restore", "--force", str(saved)], env={"TRAINER_DATABASE_URL": f"sqlite:///{live}"}
        )
        assert forced.exit_code == 0, forced.output
    finally:
        server.close()
    assert not backups.in_use(live)


def test_restore_refuses_files_that_are_not_compatible_trainer_databases(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    dump = tmp_path / "dump.sql"
    dump.write_text("-- PostgreSQL database dump\n")
    with pytest.raises(backups.InvalidInput, match="not a SQLite database"):
        backups.restore_sqlite(dump, live)

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    with pytest.raises(backups.InvalidInput, match="not a trainer database"):
        backups.restore_sqlite(other, live)

    newer = backups.backup_sqlite(live, tmp_path / "newer.db").path
    conn = sqlite3.connect(newer, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 'x', 0)")
    conn.close()
    with pytest.raises(backups.InvalidInput, match="newer than this trainer"):
        backups.restore_sqlite(newer, live)
    assert not (tmp_path / "trainer.db.bak").exists()  # nothing was touched


def test_restore_of_older_backup_reports_pending_migrations(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    older = backups.backup_sqlite(live, tmp_path / "older.db").path
    conn = sqlite3.connect(older, isolation_level=None)
    conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    conn.close()
    result = runner.invoke(app, ["restore", str(older)], env={"TRAINER_DATABASE_URL": f"sqlite:///{live}"})
    assert result.exit_code == 0, result.output
    assert "1 migration(s) to apply" in result.output


def test_cli_backup_on_sqlite(tmp_path: Path) -> None:
    live = make_database(tmp_path / "trainer.db")
    env = {"TRAINER_DATABASE_URL": f"sqlite:///{live}", "TRAINER_DATA_DIR": str(tmp_path)}
    result = runner.invoke(app, ["backup", str(tmp_path / "out.db")], env=env)
    assert result.exit_code == 0, result.output
    assert "backed up to" in result.output and "secret_key" in result.output


def test_pg_dump_command_keeps_password_off_the_command_line(tmp_path: Path) -> None:
    argv, env = backups.pg_dump_command("postgresql://app:s3cr%40t@db.example:5432/trainer", tmp_path / "x")
    assert env == {"PGPASSWORD": "s3cr@t"}
    assert all("s3cr" not in arg for arg in argv)
    assert "--dbname=postgresql://app@db.example:5432/trainer" in argv


@pytest.mark.parametrize("backend", ["postgresql"])
def test_cli_backup_on_postgres_runs_pg_dump(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pgserver

    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"  # pg_dump of the server's major version
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "trainer.dump"
    result = runner.invoke(app, ["backup", str(target)], env={"TRAINER_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    listing = subprocess.run([str(bin_dir / "pg_restore"), "--list", str(target)], capture_output=True, text=True)
    assert "TABLE public users" in listing.stdout

    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump anywhere: say how instead
    result = runner.invoke(app, ["backup", str(tmp_path / "again.dump")], env={"TRAINER_DATABASE_URL": db_url})
    assert result.exit_code == 1
    assert "pg_dump --format=custom" in result.output

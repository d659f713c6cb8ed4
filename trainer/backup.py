"""Backups of the embedded SQLite database, taken and restored safely while operators are nervous.

`backup_sqlite` uses SQLite's online backup API: it copies pages inside one read transaction, so
the copy is consistent even while the server and workers keep writing (WAL readers never block
writers). `restore_sqlite` checks that a file really is a trainer database this program can run,
refuses while another process has the live database open, and keeps the replaced file as `.bak`.

PostgreSQL has its own tools (pg_dump / pg_restore); `pg_dump_command` builds the invocation
without putting the password on the command line, where `ps` would show it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from trainer.db.migrate import available
from trainer.errors import InvalidInput, TrainerError

SQLITE_MAGIC = b"SQLite format 3\x00"
REQUIRED_TABLES = ("schema_migrations", "users")


class BackupError(TrainerError):
    """A backup or restore could not be done; the message says why and nothing was changed."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size_bytes: int
    schema_version: int


@dataclass(frozen=True)
class RestoreResult:
    restored_from: Path
    database: Path
    previous_kept_as: Path | None
    schema_version: int
    pending_migrations: int


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    mode = "ro" if readonly else "rw"
    return sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None, timeout=10)


def backup_sqlite(database: Path, target: Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy the live database to `target` as one self-contained file (mode 0600: it holds user data)."""
    if not database.is_file():
        raise BackupError(f"no database at {database}")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists; choose another name or pass --overwrite")
    if target.resolve() == database.resolve():
        raise BackupError("the backup cannot be written over the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    source = _connect(database)
    try:
        dest = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(dest)  # pages=-1: one step, one read transaction, a consistent copy
            dest.execute("PRAGMA journal_mode = DELETE")  # no -wal file beside the copy
            _check_integrity(dest, partial)
            version = _schema_version(dest)
        finally:
            dest.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(partial, target)
    return BackupInfo(target, target.stat().st_size, version)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result}")


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def inspect_backup(path: Path) -> tuple[int, int]:
    """Check that `path` is a sound trainer SQLite database this program can run.

    Returns (schema version, migrations still to apply). A file from a newer trainer, an edited
    migration, a PostgreSQL dump or an unrelated SQLite file are refused with a reason.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist") from None
    if head != SQLITE_MAGIC:
        raise InvalidInput(f"{path} is not a SQLite database (a PostgreSQL dump is restored with pg_restore)")
    conn = _connect(path, readonly=True)
    try:
        _check_integrity(conn, path)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise InvalidInput(f"{path} is not a trainer database (no {', '.join(missing)} table)")
        applied = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
    finally:
        conn.close()
    known = {m.version: m for m in available("sqlite")}
    newer = sorted(set(applied) - set(known))
    if newer:
        raise InvalidInput(
            f"{path} has schema version {max(newer)}, newer than this trainer knows ({max(known, default=0)}); "
            "restore it with the trainer version that made it"
        )
    edited = [v for v, checksum in applied.items() if known[v].checksum != checksum]
    if edited:
        raise InvalidInput(f"{path} was migrated with a different migration {edited[0]:04d}; not a compatible schema")
    return max(applied, default=0), len(set(known) - set(applied))


def in_use(database: Path) -> bool:
    """True when another process (a server or worker) has the database open.

    Leaving WAL mode needs the only connection to the file; SQLite refuses while anyone else holds
    one. On success the mode is put back, so a false alarm never changes the database.
    """
    if not database.exists():
        return False
    conn = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            # Not in WAL mode: an exclusive lock is only refused while someone is reading or writing.
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
            return False
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA journal_mode = WAL")
        return False
    except sqlite3.OperationalError as exc:
        # Anything but a lock means damaged beyond opening: nobody can be using it, and restoring is the remedy.
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def restore_sqlite(backup: Path, database: Path, *, force: bool = False) -> RestoreResult:
    """Replace the database with a checked copy of `backup`; the old file is kept as `<name>.bak`."""
    version, pending = inspect_backup(backup)
    if backup.resolve() == database.resolve():
        raise InvalidInput("the backup is the database itself")
    if not force and in_use(database):
        raise BackupError(
            f"{database} is open in another process (trainer serve or worker); stop them first, "
            "or pass --force if you are sure none is running"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    incoming = database.with_name(database.name + ".restoring")
    incoming.unlink(missing_ok=True)
    os.close(os.open(incoming, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = _connect(backup, readonly=True)
    try:
        dest = sqlite3.connect(incoming, isolation_level=None)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode = WAL")
        finally:
            dest.close()
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    kept = _set_aside(database)
    os.replace(incoming, database)
    return RestoreResult(backup, database, kept, version, pending)


def _set_aside(database: Path) -> Path | None:
    """Move the current database (with its -wal/-shm, which belong to it alone) to a free .bak name.

    A leftover -wal next to the restored file would be replayed into it and corrupt it, so they
    move together. The WAL is first checkpointed, so the .bak is complete on its own.
    """
    if not database.exists():
        return None
    try:
        conn = sqlite3.connect(database, isolation_level=None, timeout=5)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        pass  # a damaged current database is exactly why people restore; keep it as it is
    kept = database.with_name(database.name + ".bak")
    n = 0
    while kept.exists():
        n += 1
        kept = database.with_name(f"{database.name}.bak.{n}")
    os.replace(database, kept)
    for suffix in ("-wal", "-shm"):
        side = database.with_name(database.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    return kept


# -- PostgreSQL ----------------------------------------------------------------------------------


def pg_dump_command(url: str, target: Path) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for pg_dump; the password travels in PGPASSWORD, not argv."""
    parts = urlsplit(url)
    env: dict[str, str] = {}
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}@{host}" if user else host
    clean = urlunsplit(("postgresql", netloc, parts.path, parts.query, ""))
    argv = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={clean}"]
    return argv, env


def pg_guidance(url_hint: str = "$DATABASE_URL") -> str:
    return (
        "PostgreSQL backups are made with its own tools:\n"
        f'  pg_dump --format=custom --no-owner --file=trainer.dump "{url_hint}"\n'
        "and restored (with trainer stopped) into an empty database with:\n"
        f'  pg_restore --no-owner --clean --if-exists --dbname="{url_hint}" trainer.dump\n'
        "Use the pg_dump of the server's major version (16). Also keep a copy of the secret key "
        "(data_dir/secret_key or TRAINER_SECRET_KEY): without it, stored vendor tokens cannot be decrypted."
    )


def find_pg_dump() -> str | None:
    return shutil.which("pg_dump")

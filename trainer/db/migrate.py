"""Schema migrations: numbered SQL files per dialect, each applied in its own transaction.

Files live in trainer/db/migrations/<dialect>/NNNN_name.sql. schema_migrations records each applied
version with the file's SHA-256, so an edited migration is caught, and a database that has a version
this program does not know (it was migrated by a newer trainer) is refused rather than damaged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from trainer import clock
from trainer.db.base import Database
from trainer.errors import TrainerError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  BIGINT NOT NULL
)"""


class MigrationError(TrainerError):
    """The database schema cannot be brought to this program's version."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    applied_at: int | None  # ms; None = pending


def available(dialect: str) -> list[Migration]:
    """The migrations shipped with this program for one dialect, in order."""
    folder = resources.files("trainer.db") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two {dialect} migrations share a version number")
    return found


_TABLE_EXISTS = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    "postgresql": "SELECT to_regclass('schema_migrations') IS NOT NULL",
}


async def _applied(db: Database) -> dict[int, dict]:
    """Applied versions; reads only, so `--status` and `--dry-run` change nothing."""
    if not await db.fetchval(_TABLE_EXISTS[db.dialect]):
        return {}
    rows = await db.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return {r["version"]: r for r in rows}


def _check(known: list[Migration], applied: dict[int, dict]) -> None:
    by_version = {m.version: m for m in known}
    newest_known = max(by_version, default=0)
    for version, row in applied.items():
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has schema version {version} ({row['name']}), newer than this program knows "
                f"(latest {newest_known}); upgrade trainer instead of running an older version against it"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {version:04d}_{migration.name} was changed after it was applied to this database"
            )


async def status(db: Database) -> list[MigrationState]:
    """Every known migration with when it was applied (None = pending). Raises if the DB is newer."""
    known = available(db.dialect)
    applied = await _applied(db)
    _check(known, applied)
    return [
        MigrationState(m.version, m.name, applied[m.version]["applied_at"] if m.version in applied else None)
        for m in known
    ]


async def pending(db: Database) -> list[Migration]:
    applied = {s.version for s in await status(db) if s.applied_at is not None}
    return [m for m in available(db.dialect) if m.version not in applied]


async def migrate(db: Database) -> list[Migration]:
    """Apply every pending migration, one transaction each; returns what was applied (empty = up to date).

    Each transaction re-checks under the write lock that its version is still unapplied, so two
    processes migrating at once apply each file exactly once.
    """
    done: list[Migration] = []
    for migration in await pending(db):
        async with db.transaction() as tx:
            await tx.lock("trainer:migrate")
            await tx.execute(_CREATE_TABLE)
            if await tx.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version):
                continue
            await db.run_script(tx, migration.sql)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                migration.version,
                migration.name,
                migration.checksum,
                clock.now_ms(),
            )
        done.append(migration)
    return done


async def ensure_current(db: Database) -> None:
    """Refuse to serve on a schema that is behind (or ahead of) this program."""
    waiting = await pending(db)
    if waiting:
        raise MigrationError(
            f"the database schema is {len(waiting)} migration(s) behind; run `trainer migrate` "
            "(or set auto_migrate = true)"
        )

"""`trainer doctor`: the checks an operator runs when something is off, each with how to fix it.

Every check is read-only (the doctor never creates the secret key, migrates or queues anything), so
it is safe to run beside a live server. A check returns a `Finding`; the CLI renders them and exits
non-zero when any failed. Checks never print or return a secret, only where it lives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trainer import clock
from trainer.config import SECRET_KEY_FILE, Settings
from trainer.db import Database, create_database
from trainer.db import migrate as migrations
from trainer.errors import ConfigError, TrainerError

Status = Literal["ok", "warn", "fail"]

# Below these, writes (WAL, queue, uploads) start failing soon: warn early, fail before it bites.
DISK_WARN_BYTES = 2 << 30
DISK_FAIL_BYTES = 500 << 20
# Tokens, throttles and sync stamps compare this host's clock with others': a few seconds of skew is
# harmless, tens of seconds expire tokens early or late.
CLOCK_WARN_S = 2.0
CLOCK_FAIL_S = 30.0
# A clock before this is unset (a board without RTC booting at 1970), whatever the database says.
EARLIEST_SANE_EPOCH_S = 1_700_000_000
CONNECT_TIMEOUT_S = 5.0
TESTED_POSTGRES_MAJOR = 16


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    hint: str = ""


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def warn(check: str, detail: str, hint: str) -> Finding:
    return Finding(check, "warn", detail, hint)


def fail(check: str, detail: str, hint: str) -> Finding:
    return Finding(check, "fail", detail, hint)


async def diagnose(load: Callable[[], Settings], config_source: str) -> list[Finding]:
    """Run every check. `load` reads the settings; when it fails, nothing else can be checked."""
    try:
        settings = load()
    except ConfigError as exc:
        return [fail("config", exc.message, "fix the setting named above; `trainer config show` prints them all")]
    findings = [ok("config", f"settings valid ({config_source})")]
    findings.append(check_secret(settings))
    findings.append(check_disk(settings.data_dir))
    findings.extend(await check_database(settings))
    findings.append(await asyncio.to_thread(check_queue, settings))
    findings.append(check_plugins(settings))
    return findings


# -- secret key ----------------------------------------------------------------------------------


def check_secret(settings: Settings) -> Finding:
    """The server secret signs tokens and encrypts vendor tokens: only its owner may read the file."""
    name = "secret key"
    if settings.secret_key is not None:
        if len(settings.secret_key.get_secret_value()) < 32:
            return fail(name, "secret_key is shorter than 32 characters", "set a longer TRAINER_SECRET_KEY")
        return ok(name, "from the secret_key setting")
    path = settings.data_dir / SECRET_KEY_FILE
    try:
        info = path.stat()
    except FileNotFoundError:
        return warn(name, f"{path} does not exist yet", "it is generated on first start; back it up afterwards")
    except OSError as exc:
        return fail(name, f"cannot read {path}: {exc.strerror}", f"make {path} readable by the service user")
    problems: list[str] = []
    hints: list[str] = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        problems.append(f"mode is {mode:04o}, others can read it")
        hints.append(f"chmod 600 {path}")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        problems.append(f"owned by uid {info.st_uid}, not by this user ({os.geteuid()})")
        hints.append(f"chown {os.geteuid()} {path} (run trainer as the file's owner)")
    try:
        if len(path.read_text().strip()) < 32:
            problems.append("shorter than 32 characters")
            hints.append(f"delete {path} to generate a new one (signs every user out)")
    except OSError as exc:
        problems.append(f"cannot be read: {exc.strerror}")
        hints.append("run trainer as the user that owns the data directory")
    if problems:
        return fail(name, f"{path}: " + "; ".join(problems), "; ".join(hints))
    return ok(name, f"{path} (0600, owned by this user)")


# -- disk ----------------------------------------------------------------------------------------


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(data_dir: Path) -> Finding:
    """Free space and writability where the SQLite database, queue and secret live."""
    name = "disk"
    where = _existing_parent(data_dir)
    usage = shutil.disk_usage(where)
    free = f"{usage.free / (1 << 30):.1f} GiB free of {usage.total / (1 << 30):.1f} GiB at {where}"
    if not os.access(where, os.W_OK):
        return fail(name, f"{where} is not writable ({free})", f"give the service user write access to {data_dir}")
    if usage.free < DISK_FAIL_BYTES:
        return fail(name, free, "free space: SQLite, the queue and uploads need room to write")
    if usage.free < DISK_WARN_BYTES:
        return warn(name, free, "free some space soon, or move data_dir to a larger disk")
    return ok(name, free)


# -- database ------------------------------------------------------------------------------------


async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, which server version, schema current; for PostgreSQL also the clock against the server's."""
    url = settings.resolved_database_url
    db = create_database(url, pool_size=1)
    if settings.is_sqlite and not _sqlite_file_exists(url):
        path = url.removeprefix("sqlite:///")
        hint = "it is created on first start (or run `trainer migrate`)"
        return [warn("database", f"SQLite file {path} does not exist yet", hint), check_clock(None)]
    try:
        await asyncio.wait_for(db.open(), CONNECT_TIMEOUT_S)
    except (TrainerError, TimeoutError, OSError) as exc:
        message = exc.message if isinstance(exc, TrainerError) else f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
        hint = "check database_url (host, port, user, password) and that the server is running"
        return [fail("database", message, hint), check_clock(None)]
    try:
        return [await _database_version(db), await _schema(db, settings), check_clock(await _server_time(db))]
    finally:
        await db.close()


def _sqlite_file_exists(url: str) -> bool:
    return Path(url.removeprefix("sqlite:///")).exists()


async def _database_version(db: Database) -> Finding:
    version = await db.server_version()
    if db.dialect == "postgresql":
        major = int(version.split()[1].split(".")[0])
        if major < TESTED_POSTGRES_MAJOR:
            return warn("database", f"{version} reachable", f"trainer is tested on PostgreSQL {TESTED_POSTGRES_MAJOR}")
    return ok("database", f"{version} reachable")


async def _schema(db: Database, settings: Settings) -> Finding:
    name = "migrations"
    try:
        states = await migrations.status(db)
    except migrations.MigrationError as exc:
        return fail(name, exc.message, "install the trainer version that migrated this database, or restore a backup")
    waiting = [s for s in states if s.applied_at is None]
    latest = max((s.version for s in states), default=0)
    if not waiting:
        return ok(name, f"schema current (version {latest:04d})")
    detail = f"{len(waiting)} pending: " + ", ".join(f"{s.version:04d}_{s.name}" for s in waiting)
    if settings.auto_migrate:
        return warn(name, detail, "applied at the next start (auto_migrate), or run `trainer migrate` now")
    return fail(name, detail, "run `trainer migrate` (auto_migrate is off)")


async def _server_time(db: Database) -> float | None:
    """The database server's clock (PostgreSQL); SQLite runs on this host and has no clock of its own."""
    if db.dialect != "postgresql":
        return None
    before = time.time()
    value = await db.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
    # Compare against the middle of the round trip so network latency does not read as skew.
    return float(value) - (time.time() - before) / 2


def check_clock(server_time_s: float | None) -> Finding:
    name = "clock"
    now = clock.now_s()
    if now < EARLIEST_SANE_EPOCH_S:
        when = clock.now().isoformat(timespec="seconds")
        return fail(name, f"this host's clock reads {when}", "set the time and enable NTP (systemd-timesyncd, chrony)")
    if server_time_s is None:
        return ok(name, f"{clock.now().isoformat(timespec='seconds')} (no database clock to compare with)")
    skew = now - server_time_s
    detail = f"{abs(skew):.2f} s {'ahead of' if skew > 0 else 'behind'} the database server"
    if abs(skew) >= CLOCK_FAIL_S:
        return fail(name, detail, "enable NTP on this host and the database host; tokens and sync stamps use clocks")
    if abs(skew) >= CLOCK_WARN_S:
        return warn(name, detail, "enable NTP on this host and the database host")
    return ok(name, detail)


# -- queue ---------------------------------------------------------------------------------------


def embedded_queue_file(settings: Settings) -> Path:
    """Where the embedded (SQLite) task queue keeps its tasks."""
    url = settings.queue_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return settings.data_dir / "queue.db"


def check_queue(settings: Settings) -> Finding:
    name = "queue"
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://")):
        return _check_redis(url)
    if url.startswith("memory://"):
        hint = "use the embedded queue (queue_url empty) or redis:// outside tests"
        return warn(name, "memory:// queue: tasks live in one process and are lost on restart", hint)
    return _check_sqlite_queue(embedded_queue_file(settings))


def _check_redis(url: str) -> Finding:
    import redis

    where = url.rpartition("@")[2]  # never show credentials
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S)
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        hint = "check queue_url and that Redis is running and reachable from this host"
        return fail("queue", f"Redis at {where} does not answer: {exc}", hint)
    finally:
        client.close()
    return ok("queue", f"Redis {version} at {where} answers PING")


def _check_sqlite_queue(path: Path) -> Finding:
    """The queue file, or the folder it will be created in, must be writable by this user."""
    if path.exists():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1)
            try:
                conn.execute("PRAGMA quick_check").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return fail("queue", f"embedded queue {path} cannot be opened for writing: {exc}", _queue_hint(path))
        if not os.access(path, os.W_OK):
            return fail("queue", f"embedded queue {path} is read-only", _queue_hint(path))
        return ok("queue", f"embedded SQLite queue {path} writable")
    folder = _existing_parent(path.parent)
    if not os.access(folder, os.W_OK):
        return fail("queue", f"cannot create the embedded queue in {folder}", _queue_hint(path))
    return ok("queue", f"embedded SQLite queue {path} (created on first start)")


def _queue_hint(path: Path) -> str:
    return f"give the service user write access to {path.parent} (or set queue_url)"


# -- plugins -------------------------------------------------------------------------------------


def check_plugins(settings: Settings) -> Finding:
    """Discovery as the server does it: settings validated, broken or duplicate plugins reported."""
    from trainer.plugin_host import CoreHost
    from trainer.plugins import discover

    name = "plugins"
    # Discovery only constructs plugins; a placeholder secret keeps the doctor from creating the real one.
    host = CoreHost(settings, "doctor-placeholder-secret-not-used-for-anything")
    try:
        registry = discover(settings.plugins, host)
    except ConfigError as exc:
        return fail(name, exc.message, "fix the [plugins.<name>] section named above")
    broken = [i for i in registry.report if i.error]
    loaded = sorted(registry.plugins)
    disabled = sorted(i.name for i in registry.report if not i.enabled and not i.error)
    detail = f"{len(loaded)} loaded ({', '.join(loaded) or 'none'})"
    if disabled:
        detail += f"; disabled: {', '.join(disabled)}"
    if broken:
        problems = "; ".join(f"{i.name} ({i.distribution}): {i.error}" for i in broken)
        hint = "upgrade or uninstall the plugin's package, or disable it with plugins.<name>.enabled = false"
        return fail(name, f"{detail}; skipped: {problems}", hint)
    return ok(name, detail)

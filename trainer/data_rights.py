"""A user's data rights: take everything out (export) and leave nothing behind (delete).

Which tables hold a user's rows is read from the database catalog, never from a list kept by hand:
a table with a `user_id` column is the user's, and a table without one whose foreign key points at
such a table (refresh_tokens -> refresh_families, deliveries -> notifications) belongs to the user
through that parent. A table added by any later migration is therefore exported and deleted with
no change here; tests/test_data_rights.py proves nothing of a user survives on both databases.

Export: one consistent snapshot, written as a zip with one JSON file per table (rows scoped to the
user; credentials such as password and token hashes redacted), activity streams decoded into CSV
(every channel) and GPX 1.1 (tracks with position, heart rate and cadence in Garmin's
TrackPointExtension, which Strava, Garmin Connect and most tools read), and a manifest.

Delete: vendors are told first (OAuthConnector.deauthorize, best effort: a vendor outage must not
keep a user's data here), then one transaction removes every row, children before parents, and
records the hash of each live refresh token in `deleted_sessions`. Every session ends with the
user's refresh families, so the app's next call is UNAUTHORIZED; `user.checkDeletion` with its
refresh token then tells the app the account is gone and it must wipe its local database
(docs/data-rights.md). The tombstones hold no personal data and expire with the tokens.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import logging
import math
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from trainer import __version__, clock
from trainer.auth.tokens import hash_token
from trainer.db import Database, Queries, Transaction, catalog
from trainer.errors import NotFound
from trainer.plugins import OAuthConnector, Registry

log = logging.getLogger("trainer.data_rights")

EXPORT_FORMAT = "trainer-export"
EXPORT_VERSION = 1
USER_COLUMN = "user_id"
USERS_TABLE = "users"
STREAMS_TABLE = "activity_streams"
# Never exported: anything that would let the holder of the zip act as the user or a device.
REDACT_MARKERS = ("password", "token", "secret", "hash", "verifier", "sealed", "claim")
REDACTED = "[redacted]"
# Columns that hold a user's id without a foreign key to users (prefer a foreign key in new tables).
SOFT_REFERENCES = (("invites", "created_by"),)
# Rows keyed by the user's email rather than their id: (table, key column, key prefix before the email).
EMAIL_KEYED = (("login_throttle", "key", "acct:"),)
BATCH = 500


# -- which tables hold a user's rows ------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """A table without user_id whose rows belong to the user through a parent row."""

    table: str
    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class Ownership:
    owned: list[str]  # tables with a user_id column, referencing tables before the ones they reference
    children: list[Child]
    columns: dict[str, dict[str, str]]


async def ownership(db: Queries) -> Ownership:
    """Every table holding a user's rows, from the catalog, in a safe deletion order."""
    columns = await catalog.columns(db)
    owned = {t for t, cols in columns.items() if USER_COLUMN in cols and t != USERS_TABLE}
    fks = await catalog.foreign_keys(db)
    children = [
        Child(fk.table, fk.column, fk.ref_table, fk.ref_column)
        for fk in fks
        if fk.ref_table in owned and fk.table not in owned and fk.table != USERS_TABLE
    ]
    return Ownership(_referencing_first(owned, fks), sorted(children, key=lambda c: c.table), columns)


def _referencing_first(tables: set[str], fks: list[catalog.ForeignKey]) -> list[str]:
    """Order tables so that a table comes before every table it references (children deleted first)."""
    refs = {
        t: {fk.ref_table for fk in fks if fk.table == t and fk.ref_table in tables and fk.ref_table != t}
        for t in tables
    }
    ordered: list[str] = []
    remaining = set(tables)
    while remaining:
        # A table nobody remaining references can go now.
        free = sorted(t for t in remaining if not any(t in refs[o] for o in remaining if o != t))
        if not free:  # a reference cycle: ON DELETE rules settle it; keep a stable order
            free = sorted(remaining)
        ordered.extend(free)
        remaining -= set(free)
    return ordered


def _child_where(child: Child) -> str:
    return f"{child.column} IN (SELECT {child.parent_column} FROM {child.parent} WHERE {USER_COLUMN} = $1)"


# -- export ------------------------------------------------------------------------------------


@dataclass
class Manifest:
    user_id: str
    email: str
    generated_at: str
    schema_version: int
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    streams: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "formatVersion": EXPORT_VERSION,
            "generatedAt": self.generated_at,
            "server": {"software": "trainer", "version": __version__, "schemaVersion": self.schema_version},
            "user": {"id": self.user_id, "email": self.email},
            "tables": self.tables,
            "streams": self.streams,
            "notes": [
                "tables/<name>.json: every row of that table that belongs to you, as JSON objects.",
                "Instants are milliseconds since 1970-01-01 UTC; days are YYYY-MM-DD.",
                f"Values shown as {REDACTED!r} are credentials (password and token hashes, encrypted vendor "
                "tokens); they are of no use outside this server and are left out on purpose.",
                "streams/<activity id>.csv: the recorded samples of an activity, one row per sample; time_s is "
                "seconds since the activity's start_time. streams/<activity id>.gpx: the same track as GPX 1.1.",
            ],
        }


async def export_user(db: Database, user_id: str, out: IO[bytes]) -> Manifest:
    """Write the user's export zip to `out` (a file opened for writing bytes); returns its manifest."""
    async with db.snapshot() as tx:
        user = await tx.fetchrow(f"SELECT id, email FROM {USERS_TABLE} WHERE id = $1", user_id)
        if user is None:
            raise NotFound("no such user")
        owners = await ownership(tx)
        version = int(await tx.fetchval("SELECT max(version) FROM schema_migrations") or 0)
        manifest = Manifest(user_id, user["email"], clock.now().isoformat(timespec="seconds"), version)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            await _export_table(tx, zf, manifest, USERS_TABLE, "id = $1", owners.columns[USERS_TABLE], user_id)
            for table in sorted(owners.owned):
                await _export_table(tx, zf, manifest, table, f"{USER_COLUMN} = $1", owners.columns[table], user_id)
            for child in owners.children:
                if child.table not in manifest.tables:
                    await _export_table(
                        tx, zf, manifest, child.table, _child_where(child), owners.columns[child.table], user_id
                    )
            if STREAMS_TABLE in owners.owned:
                await _export_streams(tx, zf, manifest, user_id)
            zf.writestr("manifest.json", json.dumps(manifest.as_json(), indent=2, ensure_ascii=False))
    return manifest


def _redacted(column: str) -> bool:
    name = column.lower()
    return any(marker in name for marker in REDACT_MARKERS)


async def _export_table(
    tx: Transaction,
    zf: zipfile.ZipFile,
    manifest: Manifest,
    table: str,
    where: str,
    columns: dict[str, str],
    user_id: str,
) -> None:
    names = list(columns)
    hidden = [c for c in names if _redacted(c)]
    order = ", ".join(names[:1])
    path = f"tables/{table}.json"
    count = 0
    with zf.open(path, "w") as fh:
        fh.write(b"[")
        async for row in tx.cursor(f"SELECT * FROM {table} WHERE {where} ORDER BY {order}", user_id, batch=BATCH):
            clean = {k: (REDACTED if k in hidden and v is not None else _jsonable(table, k, v)) for k, v in row.items()}
            fh.write((b",\n" if count else b"\n") + json.dumps(clean, ensure_ascii=False, default=str).encode())
            count += 1
        fh.write(b"\n]\n")
    manifest.tables[table] = {"file": path, "rows": count, "redactedColumns": hidden}


def _jsonable(table: str, column: str, value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        if table == STREAMS_TABLE:
            return "see streams/"  # decoded into CSV and GPX rather than our internal binary format
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


async def _export_streams(tx: Transaction, zf: zipfile.ZipFile, manifest: Manifest, user_id: str) -> None:
    sql = f"""SELECT s.activity_id, s.data, a.start_time, a.name, a.sport
              FROM {STREAMS_TABLE} s LEFT JOIN activities a ON a.id = s.activity_id AND a.user_id = s.user_id
              WHERE s.{USER_COLUMN} = $1 ORDER BY s.activity_id"""
    async for row in tx.cursor(sql, user_id, batch=50):
        entry = await asyncio.to_thread(_write_stream_files, zf, row)
        manifest.streams.append(entry)


def _write_stream_files(zf: zipfile.ZipFile, row: dict[str, Any]) -> dict[str, Any]:
    """Decode one activity's samples and write its CSV (and GPX when it has positions)."""
    from trainer.analysis.streams_codec import CorruptStreamError, decode

    activity_id = row["activity_id"]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in activity_id)
    entry: dict[str, Any] = {"activityId": activity_id}
    try:
        streams = decode(bytes(row["data"]))
    except CorruptStreamError as exc:
        entry["error"] = f"stream could not be decoded: {exc}"
        return entry
    channels = {"time_s": streams.time_s, **streams.channels()}
    entry["csv"] = f"streams/{safe}.csv"
    entry["samples"] = len(streams)
    entry["channels"] = list(channels)
    zf.writestr(entry["csv"], _csv(channels))
    if streams.latitude is not None and streams.longitude is not None:
        entry["gpx"] = f"streams/{safe}.gpx"
        zf.writestr(entry["gpx"], _gpx(channels, row.get("start_time"), row.get("name") or "", row.get("sport") or ""))
    return entry


def _csv(channels: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(channels)
    writer.writerow(names)
    columns = [channels[n].tolist() for n in names]
    for values in zip(*columns, strict=True):
        writer.writerow(["" if v != v else _num(v) for v in values])  # NaN (missing sample) -> empty cell
    return out.getvalue()


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(round(value, 7))


GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="trainer" xmlns="http://www.topografix.com/GPX/1/1"'
    ' xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n'
)


def _gpx(channels: dict[str, Any], start_ms: int | None, name: str, sport: str) -> str:
    start = datetime.fromtimestamp((start_ms or 0) / 1000, tz=UTC)
    lat, lon = channels["latitude"].tolist(), channels["longitude"].tolist()
    time_s = channels["time_s"].tolist()
    ele = channels["altitude_m"].tolist() if "altitude_m" in channels else None
    hr = channels["heart_rate"].tolist() if "heart_rate" in channels else None
    cad = channels["cadence"].tolist() if "cadence" in channels else None
    parts = [GPX_HEAD, f"<trk><name>{escape(name)}</name><type>{escape(sport)}</type><trkseg>\n"]
    for i, (la, lo) in enumerate(zip(lat, lon, strict=True)):
        if la != la or lo != lo:  # no position for this sample
            continue
        when = (start + timedelta(seconds=time_s[i])).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        point = [f"<trkpt lat={quoteattr(repr(round(la, 7)))} lon={quoteattr(repr(round(lo, 7)))}>"]
        if ele is not None and ele[i] == ele[i]:
            point.append(f"<ele>{round(ele[i], 1)}</ele>")
        point.append(f"<time>{when}</time>")
        extension = []
        if hr is not None and hr[i] == hr[i]:
            extension.append(f"<gpxtpx:hr>{round(hr[i])}</gpxtpx:hr>")
        if cad is not None and cad[i] == cad[i]:
            extension.append(f"<gpxtpx:cad>{round(cad[i])}</gpxtpx:cad>")
        if extension:
            point.append(
                "<extensions><gpxtpx:TrackPointExtension>"
                + "".join(extension)
                + "</gpxtpx:TrackPointExtension></extensions>"
            )
        point.append("</trkpt>\n")
        parts.append("".join(point))
    parts.append("</trkseg></trk>\n</gpx>\n")
    return "".join(parts)


# -- what is left of a user (tests, and the deletion's own check) -------------------------------


async def remaining_rows(db: Queries, user_id: str) -> dict[str, int]:
    """Rows per table that still belong to `user_id` (empty after a deletion)."""
    owners = await ownership(db)
    left: dict[str, int] = {}
    count = int(await db.fetchval(f"SELECT count(*) FROM {USERS_TABLE} WHERE id = $1", user_id))
    if count:
        left[USERS_TABLE] = count
    for table in owners.owned:
        count = int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE {USER_COLUMN} = $1", user_id))
        if count:
            left[table] = count
    for table, column in SOFT_REFERENCES:
        if column in owners.columns.get(table, {}):
            count = int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", user_id))
            if count:
                left[f"{table}.{column}"] = count
    return left


# -- delete ------------------------------------------------------------------------------------


@dataclass
class DeletionReport:
    user_id: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    vendors_deauthorized: list[str] = field(default_factory=list)
    vendors_failed: dict[str, str] = field(default_factory=dict)  # plugin -> why (revoke access there by hand)
    sessions_ended: int = 0


async def delete_user(
    db: Database, user_id: str, *, registry: Registry | None = None, cipher: Any = None, retention_days: int = 90
) -> DeletionReport:
    """Hard-delete every row of the user; tell connected vendors first (when plugins are given)."""
    if await db.fetchval(f"SELECT 1 FROM {USERS_TABLE} WHERE id = $1", user_id) is None:
        raise NotFound("no such user")
    report = DeletionReport(user_id)
    if registry is not None and cipher is not None:
        await _deauthorize_vendors(db, registry, cipher, user_id, report)
    async with db.transaction() as tx:
        await tx.lock("user:" + user_id)
        report.sessions_ended = await _record_deleted_sessions(tx, user_id, retention_days)
        owners = await ownership(tx)
        for child in owners.children:
            report.rows_deleted[child.table] = report.rows_deleted.get(child.table, 0) + await tx.execute(
                f"DELETE FROM {child.table} WHERE {_child_where(child)}", user_id
            )
        for table in owners.owned:
            report.rows_deleted[table] = await tx.execute(f"DELETE FROM {table} WHERE {USER_COLUMN} = $1", user_id)
        for table, column in SOFT_REFERENCES:
            if column in owners.columns.get(table, {}):
                await tx.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = $1", user_id)
        email = str(await tx.fetchval(f"SELECT email FROM {USERS_TABLE} WHERE id = $1", user_id))
        for table, column, prefix in EMAIL_KEYED:
            if column in owners.columns.get(table, {}):
                await tx.execute(f"DELETE FROM {table} WHERE {column} = $1", prefix + email.strip().lower())
        report.rows_deleted[USERS_TABLE] = await tx.execute(f"DELETE FROM {USERS_TABLE} WHERE id = $1", user_id)
        await tx.execute("DELETE FROM deleted_sessions WHERE expires_at < $1", clock.now_ms())
    report.rows_deleted = {t: n for t, n in report.rows_deleted.items() if n}
    log.info(
        "account deleted",
        extra={"user_id": user_id, "rows": sum(report.rows_deleted.values()), "vendors": report.vendors_deauthorized},
    )
    return report


async def _deauthorize_vendors(
    db: Database, registry: Registry, cipher: Any, user_id: str, report: DeletionReport
) -> None:
    try:
        from trainer.store import accounts
    except ImportError:  # a build without vendor account links has nothing to revoke
        return
    for link in await accounts.list_for_user(db, user_id):
        plugin = link["plugin"]
        oauth = registry.get(plugin, OAuthConnector)
        if oauth is None:
            report.vendors_failed[plugin] = "its plugin is not installed or enabled here"
            continue
        try:
            account = await accounts.get(db, cipher, user_id, plugin)
            if account is not None:
                await oauth.deauthorize(account.tokens)
            report.vendors_deauthorized.append(plugin)
        except Exception as exc:  # the user's right to deletion wins over a vendor outage
            log.warning("could not deauthorize at %s: %s", plugin, type(exc).__name__, extra={"user_id": user_id})
            report.vendors_failed[plugin] = type(exc).__name__


async def _record_deleted_sessions(tx: Transaction, user_id: str, retention_days: int) -> int:
    """Remember the hash of each live refresh token, so its device can learn the account is gone."""
    now = clock.now_ms()
    rows = await tx.fetch(
        """SELECT t.token_hash, f.expires_at FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
           WHERE f.user_id = $1 AND f.revoked_at IS NULL AND t.used_at IS NULL AND f.expires_at > $2""",
        user_id,
        now,
    )
    keep_until = now + retention_days * 86_400_000
    await tx.executemany(
        "INSERT INTO deleted_sessions (token_hash, deleted_at, expires_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (token_hash) DO NOTHING",
        [(r["token_hash"], now, max(r["expires_at"], keep_until)) for r in rows],
    )
    return len(rows)


async def deleted_at(db: Queries, refresh_token: str) -> int | None:
    """When the account this refresh token belonged to was deleted (ms), or None if it was not."""
    value = await db.fetchval(
        "SELECT deleted_at FROM deleted_sessions WHERE token_hash = $1 AND expires_at >= $2",
        hash_token(refresh_token),
        clock.now_ms(),
    )
    return None if value is None else int(value)


async def chunks_of(path_or_file: IO[bytes], size: int = 3 * 64 * 1024) -> AsyncIterator[bytes]:
    """Base64 of a file in pieces (size is a multiple of 3, so pieces concatenate to valid base64)."""
    while True:
        block = await asyncio.to_thread(path_or_file.read, size)
        if not block:
            return
        yield base64.b64encode(block)

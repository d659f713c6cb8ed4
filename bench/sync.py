"""Benchmark WatermelonDB sync, each figure against a baseline measured in the same run.

1. Pull of 10,000 changed records: the pull engine (snapshot, watermark, created/updated split,
   echo filter, JSON) and the whole tRPC request over HTTP, against the raw SELECT of the same rows
   through the same Database interface. Goal: at most 3x the raw SELECT.
2. Push of 1,000 new records over HTTP (one transaction; ids, conflicts, cleaning, upserts).
   Goal: < 1 s on SQLite.
3. Peak Python memory (tracemalloc) of a 100,000-record first sync streamed over HTTP and read in
   chunks by the client, next to the size of the response it produced.

Run: python bench/sync.py [--backend sqlite|postgresql|both] [--small]
(PostgreSQL comes from pgserver, as in the tests; skipped with a note when it cannot start.)
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/sync.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's `http` that aiohttp imports.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from trainer.app import create_app
from trainer.config import load_settings
from trainer.db import Database, create_database
from trainer.db.migrate import migrate
from trainer.store.stamps import next_stamp
from trainer.sync.pull import PullRequest, pull_json, select_list
from trainer.sync.tables import TABLES

PASSWORD = "bench password 123"
PULL_ROWS = 10_000
PUSH_ROWS = 1_000
FIRST_SYNC_ROWS = 100_000


async def best_of(runs: int, fn: Callable[[], Awaitable[Any]]) -> float:
    """Median wall time of `runs` calls, in seconds (after one warm-up call)."""
    await fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def activity_row(i: int, user_id: str, stamp: int) -> tuple:
    return (
        f"bench-{user_id[:8]}-{i:06d}",
        user_id,
        "garmin",
        "run",
        f"Morning run {i}",
        1_700_000_000_000 + i * 86_400_000,
        3600.0 + i % 600,
        10_000.0 + i,
        145.0,
        172.0,
        88.5,
        stamp,
    )


async def seed_activities(db: Database, user_id: str, count: int) -> int:
    """`count` activities written in one transaction with one stamp; returns the stamp."""
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, user_id)
        await tx.executemany(
            """INSERT INTO activities (id, user_id, source, sport, name, start_time, duration_s, distance_m,
                   avg_hr, max_hr, trimp, created_stamp, updated_stamp)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)""",
            [activity_row(i, user_id, stamp) for i in range(count)],
        )
    return stamp


@asynccontextmanager
async def live_app(url: str, folder: Path) -> AsyncIterator[tuple[TestClient, Database]]:
    settings = load_settings(
        None,
        data_dir=folder / "data",
        database_url=url,
        secret_key="bench-secret-key-that-is-long-enough-0123456789",
        registration="open",
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        log_level="warning",
    )
    db = create_database(url, pool_size=4)
    await db.open()
    await migrate(db)
    try:
        async with TestClient(TestServer(create_app(settings, db=db))) as client:
            yield client, db
    finally:
        await db.close()


async def rpc(client: TestClient, path: str, payload: Any, token: str | None = None, query: bool = False) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if query:
        resp = await client.get(f"/trpc/{path}", params={"input": json.dumps(payload)}, headers=headers)
    else:
        resp = await client.post(f"/trpc/{path}", data=json.dumps(payload), headers=headers)
    body = await resp.json()
    assert resp.status == 200, body
    return body["result"].get("data")


async def sign_in(client: TestClient, email: str, device: str) -> tuple[str, str]:
    await rpc(client, "auth.register", {"email": email, "password": PASSWORD})
    auth = await rpc(client, "auth.login", {"email": email, "password": PASSWORD, "deviceId": device})
    return auth["accessToken"], auth["user"]["id"]


async def bench_pull(client: TestClient, db: Database, rows: int) -> dict[str, float]:
    token, user_id = await sign_in(client, "pull@example.com", "phone")
    before = (await rpc(client, "sync.pullChanges", {"lastPulledAt": None}, token, query=True))["timestamp"]
    await seed_activities(db, user_id, rows)
    table = TABLES["activities"]
    raw_sql = f"SELECT {select_list(table)} FROM activities WHERE user_id = $1 AND updated_stamp > $2"

    async def raw_select() -> None:
        got = await db.fetch(raw_sql, user_id, before)
        assert len(got) == rows

    async def engine() -> None:
        body = b"".join([c async for c in pull_json(db, PullRequest(user_id, "phone", before))])
        assert body.count(b'{"id"') == rows

    async def http() -> None:  # the response body as the app receives it (parsing it is the app's work)
        resp = await client.get(
            "/trpc/sync.pullChanges",
            params={"input": json.dumps({"lastPulledAt": before})},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = await resp.read()
        assert resp.status == 200 and body.count(b'{"id"') == rows

    raw = await best_of(5, raw_select)
    return {"raw": raw, "engine": await best_of(5, engine), "http": await best_of(5, http)}


async def bench_push(client: TestClient, rows: int) -> float:
    token, _ = await sign_in(client, "push@example.com", "phone")
    timestamp = (await rpc(client, "sync.pullChanges", {"lastPulledAt": None}, token, query=True))["timestamp"]
    columns = {c.name: c.client_default for c in TABLES["activities"].columns}
    batches = [
        [
            {
                **columns,
                "id": f"push{n}x{i:05d}",
                "source": "app",
                "name": f"Run {i}",
                "start_time": 1_700_000_000_000 + i,
                "duration_s": 1800.0,
                "avg_hr": 150.0,
                "_status": "created",
                "_changed": "",
            }
            for i in range(rows)
        ]
        for n in range(4)
    ]
    times = []
    for batch in batches:
        payload = {
            "changes": {"activities": {"created": batch, "updated": [], "deleted": []}},
            "lastPulledAt": timestamp,
        }
        start = time.perf_counter()
        await rpc(client, "sync.pushChanges", payload, token)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


async def bench_first_sync_memory(client: TestClient, db: Database, rows: int) -> tuple[float, int, float]:
    token, user_id = await sign_in(client, "first@example.com", "phone")
    await seed_activities(db, user_id, rows)
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    resp = await client.get(
        "/trpc/sync.pullChanges",
        params={"input": json.dumps({"lastPulledAt": None})},
        headers={"Authorization": f"Bearer {token}"},
    )
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    assert resp.status == 200
    return peak / 2**20, size, elapsed


async def run_backend(name: str, url: str, folder: Path, small: bool) -> None:
    pull_rows, push_rows, first_rows = (1_000, 200, 5_000) if small else (PULL_ROWS, PUSH_ROWS, FIRST_SYNC_ROWS)
    async with live_app(url, folder) as (client, db):
        pull = await bench_pull(client, db, pull_rows)
        push = await bench_push(client, push_rows)
        peak_mib, size, elapsed = await bench_first_sync_memory(client, db, first_rows)
    print(f"\n== {name} ==")
    print(f"pull of {pull_rows:,} changed records")
    print(f"  raw SELECT of the same rows     {pull['raw'] * 1000:8.1f} ms")
    ratio = pull["engine"] / pull["raw"]
    print(f"  pull engine (snapshot + JSON)   {pull['engine'] * 1000:8.1f} ms   {ratio:.2f}x raw  (goal <= 3x)")
    ratio = pull["http"] / pull["raw"]
    print(f"  sync.pullChanges over HTTP      {pull['http'] * 1000:8.1f} ms   {ratio:.2f}x raw  (whole request)")
    print(f"push of {push_rows:,} new records over HTTP {push * 1000:8.1f} ms   (goal < 1000 ms on SQLite)")
    print(
        f"first sync of {first_rows:,} records: {size / 2**20:.1f} MiB of JSON streamed in {elapsed:.1f} s "
        f"(under tracemalloc); peak Python memory {peak_mib:.1f} MiB"
    )


def start_pgserver(folder: Path) -> tuple[Any, str] | None:
    try:
        import pgserver
    except ImportError:
        return None
    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE bench;")
    return server, server.get_uri("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--small", action="store_true", help="a quick run with a tenth of the rows")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trainer-bench-sync-"))
    try:
        if args.backend in ("sqlite", "both"):
            asyncio.run(run_backend("SQLite", f"sqlite:///{folder / 'bench.db'}", folder / "sqlite", args.small))
        if args.backend in ("postgresql", "both"):
            started = None
            try:
                started = start_pgserver(folder)
            except Exception as exc:
                print(f"\n== PostgreSQL == skipped: pgserver could not start ({exc})")
            if started is not None:
                server, url = started
                try:
                    asyncio.run(run_backend("PostgreSQL 16 (pgserver)", url, folder / "pgbench", args.small))
                finally:
                    server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The queue for real: Huey consumer threads in the server, on SQLite's queue file and on Redis, and a
`trainer worker` process killed with SIGKILL in the middle of a burst."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.ingest.conftest import PATH_TOKEN, connect, registry_with_plugin
from tests.ingest.test_pipeline import event
from tests.ingest.test_webhooks import strava_event
from tests.ingest.testplugin import NAME
from trainer.app import create_app
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.consumer import EmbeddedWorker
from trainer.ingest.queue import IngestQueue
from trainer.ingest.routes import WORKER_PLUGINS, embed_worker
from trainer.ingest.runtime import Closer
from trainer.plugins import Registry
from trainer.services import SERVICES

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"


async def load_test_plugins(settings: Settings, secret: str, db: Database) -> tuple[Registry, Closer]:
    """Worker threads get the test plugin, registered programmatically."""

    async def close() -> None:
        return None

    return registry_with_plugin(settings, db), close


async def wait_until(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def all_done(db: Database, expected: int) -> bool:
    counts = await inbox.count_by_state(db)
    return counts["done"] == expected


async def activity_count(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM activities"))


async def test_serve_with_embedded_worker_processes_webhooks(ingest_settings: Settings, db: Database) -> None:
    external = [f"athlete-{i}" for i in range(4)]
    for i, ext in enumerate(external):
        await connect(db, f"u{i}@example.com", ext)
    app = create_app(ingest_settings, db=db)
    app[WORKER_PLUGINS] = load_test_plugins
    embed_worker(app, 2)
    async with TestClient(TestServer(app)) as client:
        app[SERVICES].plugins.plugins[NAME] = registry_with_plugin(ingest_settings, db).plugins[NAME]
        start = int(time.time()) - 7200
        for n in range(20):
            body = strava_event(owner=external[n % 4], object_id=1000 + n, start=start + 60 * n)
            assert (await client.post(f"/webhooks/{PATH_TOKEN}/{NAME}", json=body)).status == 200
        await wait_until(lambda: all_done(db, 20), 30, "20 events processed")
    assert await activity_count(db) == 20


async def test_sqlite_queue_file_with_retries_through_the_schedule(tmp_path: Path, db: Database, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, ingest_retry_base_s=0.2, ingest_retry_max_s=0.5)
    assert settings.queue_url == ""  # the default: <data_dir>/queue.db
    queue = IngestQueue(settings)
    user_id = await connect(db, "a@example.com", "ext-1")
    events = [event(f"a-{i}", "fail_once" if i % 2 else "", ago_s=3600 - i) for i in range(6)]
    await inbox.record_events(db, NAME, user_id, events, doorbell=queue.ring)
    assert (settings.data_dir / "queue.db").exists()
    worker = EmbeddedWorker(queue, 2, plugins=load_test_plugins)
    worker.start()
    try:
        await wait_until(lambda: all_done(db, 6), 30, "6 events processed, 3 of them after a retry")
    finally:
        await asyncio.to_thread(worker.stop)
    rows = await inbox.list_rows(db)
    assert sorted(r.attempts for r in rows) == [1, 1, 1, 2, 2, 2]
    assert await activity_count(db) == 6


async def test_the_sqlite_doorbell_rings_in_place_and_waits_on_a_thread_only_when_locked(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free queue file is written on the caller's thread; while another connection (a worker
    dequeuing) holds its write lock, the ring waits for it on a thread, and nothing is lost."""
    import sqlite3

    from trainer.ingest import queue as queue_module

    queue = IngestQueue(make_settings(tmp_path, db_url))
    woken: list[None] = []
    queue.listen(lambda: woken.append(None))
    hops: list[Any] = []
    real_to_thread = asyncio.to_thread

    async def counted(func: Any, *args: Any) -> Any:
        hops.append(func)
        return await real_to_thread(func, *args)

    monkeypatch.setattr(queue_module.asyncio, "to_thread", counted)
    await queue.ring(["row-1", "row-2"])
    assert hops == [] and queue.pending() == 2 and len(woken) == 1

    other = sqlite3.connect(tmp_path / "data" / "queue.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        ringing = asyncio.create_task(queue.ring(["row-3"]))
        await asyncio.sleep(0.2)
        assert not ringing.done() and len(hops) == 1  # waiting for the lock, off the loop
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(ringing, 10)
    assert queue.pending() == 3 and len(woken) == 2


@pytest.fixture
def redis_queue_name() -> Any:
    """A queue name (Redis key prefix) of this test only; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); the Redis queue path is not tested")
    name = f"trainer-test-{uuid.uuid4().hex[:12]}"
    yield name
    for key in client.scan_iter(match=f"*{name}*"):
        client.delete(key)
    client.close()


async def test_redis_queue(tmp_path: Path, db: Database, db_url: str, redis_queue_name: str) -> None:
    settings = make_settings(tmp_path, db_url, queue_url=REDIS_URL)
    producer = IngestQueue(settings, name=redis_queue_name)  # e.g. a server ...
    consumer = IngestQueue(settings, name=redis_queue_name)  # ... and a worker elsewhere
    user_ids = [await connect(db, f"u{i}@example.com", f"ext-{i}") for i in range(3)]
    for i, user_id in enumerate(user_ids):
        evs = [event(f"{i}-{n}", external=f"ext-{i}", ago_s=3600 - n) for n in range(4)]
        await inbox.record_events(db, NAME, user_id, evs, doorbell=producer.ring)
    assert producer.pending() >= 1
    worker = EmbeddedWorker(consumer, 2, plugins=load_test_plugins)
    worker.start()
    try:
        await wait_until(lambda: all_done(db, 12), 30, "12 events processed through Redis")
    finally:
        await asyncio.to_thread(worker.stop)
    assert await activity_count(db) == 12
    assert consumer.pending() == 0


def _worker_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.worker_main", "worker", "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path: Path, db: Database, db_url: str) -> None:
    """SIGKILL a real `trainer worker` mid-burst, restart it: every event is processed exactly once."""
    total, lease_s, stale_s = 120, 10, 2
    settings = make_settings(tmp_path, db_url, ingest_lease_s=lease_s, ingest_stale_s=stale_s)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")},
        "TRAINER_DATABASE_URL": db_url,
        "TRAINER_DATA_DIR": str(settings.data_dir),
        "TRAINER_SECRET_KEY": TEST_SECRET,
        "TRAINER_INGEST_LEASE_S": str(lease_s),  # how soon the dead worker's claims are handed on
        "TRAINER_INGEST_STALE_S": str(stale_s),  # how soon the rings it had taken are rung again
        "TRAINER_LOG_LEVEL": "warning",
    }
    users = [await connect(db, f"u{i}@example.com", f"ext-{i}") for i in range(6)]
    queue = IngestQueue(settings)  # the producer side: the same SQLite queue file the worker reads
    for i, user_id in enumerate(users):
        evs = [event(f"{i}-{n}", external=f"ext-{i}", ago_s=7200 - n, sleep_ms=25) for n in range(total // 6)]
        await inbox.record_events(db, NAME, user_id, evs, doorbell=queue.ring)

    log = tmp_path / "worker.log"
    first = _worker_process(env, log)
    try:
        await wait_until(lambda: _done_at_least(db, total // 4), 60, "a quarter of the burst processed")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    interrupted = await inbox.count_by_state(db)
    assert interrupted["done"] < total, "the burst finished before the kill; make it longer"

    await asyncio.sleep(lease_s + 0.5)  # rows the dead worker held become reclaimable
    second = _worker_process(env, log)
    try:
        await wait_until(lambda: all_done(db, total), 90, f"all {total} events processed after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
    assert await activity_count(db) == total
    assert await db.fetchval("SELECT count(DISTINCT external_id) FROM activities") == total
    assert await db.fetchval("SELECT count(*) FROM activity_sources") == total
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


async def _done_at_least(db: Database, n: int) -> bool:
    return (await inbox.count_by_state(db))["done"] >= n


async def test_stopping_lets_running_events_finish(tmp_path: Path, db: Database, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, queue_url="memory://")
    queue = IngestQueue(settings)
    user_id = await connect(db, "a@example.com", "ext-1")
    worker = EmbeddedWorker(queue, 2, plugins=load_test_plugins)
    await asyncio.to_thread(worker.start)
    await inbox.record_events(db, NAME, user_id, [event("slow", sleep_ms=700)], doorbell=queue.ring)
    await wait_until(lambda: _processing(db), 10, "the slow event claimed")
    await asyncio.to_thread(worker.stop)  # returns only once the running event is done
    [row] = await inbox.list_rows(db)
    assert row.state == "done"


async def _processing(db: Database) -> bool:
    return (await inbox.count_by_state(db))["processing"] == 1

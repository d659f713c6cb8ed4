"""Scale-out proof: 2 `trainer serve --no-worker` + 2 `trainer worker` as separate processes on one
PostgreSQL 16 and one Redis, as a deployment behind a load balancer runs them.

- a burst of webhooks spread over both servers, with replays of some of them sent to the *other*
  server, is processed exactly once: one inbox row and one activity per real event, each claimed
  once, and both workers took part;
- sync works through either server: a token issued by one is accepted by the other, and what is
  pushed through one is pulled through the other.

Marked slow (about 20-40 s, most of it starting four Python processes); it runs in CI by default.
Redis isolation: the processes use their own Redis database number, whose queue keys are deleted
afterwards (the queue name is fixed, the database index is not).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from tests.conftest import TEST_SECRET
from tests.ingest.conftest import PATH_TOKEN, connect
from tests.ingest.test_webhooks import strava_event
from tests.ingest.testplugin import NAME
from trainer.db import Database
from trainer.ingest import inbox

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["postgresql"])]

REPO = Path(__file__).resolve().parents[1]
USERS = 5
EVENTS = 60
REPLAYS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(name: str, args: list[str], env: dict[str, str], tmp: Path) -> Proc:
    """`trainer` with the test plugin installed (tests/ingest/worker_main.py), in its own process."""
    log = tmp / f"{name}.log"
    popen = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.worker_main", *args],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Proc(name, popen, log)


def stop(procs: list[Proc]) -> None:
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.popen.wait(20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(5)


async def wait_until(check: Callable[[], Awaitable[bool]], within_s: float, what: str, procs: list[Proc]) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        dead = [p for p in procs if p.popen.poll() is not None]
        if dead:
            raise AssertionError(f"{dead[0].name} exited early:\n{dead[0].output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
def redis_url() -> Any:
    """A Redis database of this run's own (the queue's key names are fixed); emptied of queue keys after."""
    index = random.randint(8, 15)
    url = f"redis://127.0.0.1:6379/{index}"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url} ({exc})")
    yield url
    for key in client.scan_iter(match="huey*"):
        client.delete(key)
    client.close()


@pytest.fixture
async def cluster(tmp_path: Path, db_url: str, redis_url: str) -> AsyncIterator[list[Proc]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")},
        "TRAINER_DATABASE_URL": db_url,
        "TRAINER_QUEUE_URL": redis_url,
        "TRAINER_SECRET_KEY": TEST_SECRET,
        "TRAINER_WEBHOOK_PATH_TOKEN": PATH_TOKEN,
        "TRAINER_AUTO_MIGRATE": "false",  # migrated once, before the fleet starts (the test template)
        "TRAINER_REGISTRATION": "open",
        "TRAINER_ARGON2_MEMORY_KIB": "1024",
        "TRAINER_ARGON2_TIME_COST": "1",
        "TRAINER_LOG_LEVEL": "info",
    }
    procs: list[Proc] = []
    try:
        for i in (1, 2):
            port = free_port()
            server_env = {**env, "TRAINER_DATA_DIR": str(tmp_path / f"server{i}")}
            proc = start(f"server{i}", ["serve", "--no-worker", "--port", str(port)], server_env, tmp_path)
            proc.url = f"http://127.0.0.1:{port}"
            procs.append(proc)
        for i in (1, 2):
            worker_env = {**env, "TRAINER_DATA_DIR": str(tmp_path / f"worker{i}")}
            procs.append(start(f"worker{i}", ["worker", "--workers", "2"], worker_env, tmp_path))
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                for proc in procs[:2]:
                    try:
                        async with http.get(proc.url + "/readyz") as resp:
                            if resp.status != 200:
                                return False
                    except aiohttp.ClientError:
                        return False
                return True

            await wait_until(ready, 60, "both servers ready", procs)
        yield procs
    finally:
        stop(procs)


async def rpc(http: aiohttp.ClientSession, base: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path.endswith("pullChanges"):
        params = {"input": json.dumps(body)}
        async with http.get(f"{base}/trpc/{path}", params=params, headers=headers) as resp:
            doc = await resp.json()
    else:
        async with http.post(f"{base}/trpc/{path}", json=body, headers=headers) as resp:
            doc = await resp.json()
    assert resp.status == 200, doc
    return doc["result"].get("data")


async def test_burst_of_webhooks_is_processed_exactly_once_and_sync_works_through_either_server(
    cluster: list[Proc], db: Database
) -> None:
    servers, workers = cluster[:2], cluster[2:]
    externals = [f"athlete-{i}" for i in range(USERS)]
    user_ids = [await connect(db, f"rider{i}@example.com", ext) for i, ext in enumerate(externals)]

    base = int(time.time()) - 6 * 3600
    bodies = [
        strava_event(
            owner=externals[n % USERS], object_id=5000 + n, start=base + 60 * n, event_time=base + 60 * n, sleep_ms=40
        )
        for n in range(EVENTS)
    ]
    sends = [(servers[n % 2], body) for n, body in enumerate(bodies)]
    sends += [(servers[(n + 1) % 2], bodies[n]) for n in range(0, EVENTS, EVENTS // REPLAYS)]  # replays elsewhere
    random.shuffle(sends)
    async with aiohttp.ClientSession() as http:

        async def post(server: Proc, body: dict) -> int:
            async with http.post(f"{server.url}/webhooks/{PATH_TOKEN}/{NAME}", json=body) as resp:
                return resp.status

        statuses = await asyncio.gather(*(post(server, body) for server, body in sends))
        assert set(statuses) == {200}

        async def all_done() -> bool:
            return (await inbox.count_by_state(db))["done"] >= EVENTS

        await wait_until(all_done, 45, f"{EVENTS} events processed", cluster)

        rows = await inbox.list_rows(db, limit=1000)
        assert len(rows) == EVENTS  # replays were deduplicated, whichever server got them
        assert {r.state for r in rows} == {"done"}
        assert all(r.attempts == 1 for r in rows)  # each claimed and processed exactly once
        assert await db.fetchval("SELECT count(*) FROM activities") == EVENTS
        assert await db.fetchval("SELECT count(DISTINCT external_id) FROM activities") == EVENTS
        per_user = await db.fetch("SELECT user_id, count(*) AS n FROM activities GROUP BY user_id")
        assert {r["user_id"]: r["n"] for r in per_user} == {u: EVENTS // USERS for u in user_ids}
        executed = [w.output().count("Executing trainer.ingest.queue.ingest_process") for w in workers]
        assert all(n > 0 for n in executed), f"tasks per worker: {executed}"  # both workers took part

        # -- sync through either server, with tokens from either
        one, two = servers[0].url, servers[1].url
        auth = await rpc(http, one, "auth.register", {"email": "sync@example.com", "password": "correct horse battery"})
        token = auth["accessToken"]
        first = await rpc(http, two, "sync.pullChanges", {"lastPulledAt": None}, token)
        day = {"id": "d-1", "day": "2026-05-01", "resting_hr": 48, "notes": "pushed through server 1"}
        changes = {"daily_metrics": {"created": [day], "updated": [], "deleted": []}}
        await rpc(http, one, "sync.pushChanges", {"changes": changes, "lastPulledAt": first["timestamp"]}, token)
        pulled = await rpc(http, two, "sync.pullChanges", {"lastPulledAt": first["timestamp"]}, token)
        (row,) = pulled["changes"]["daily_metrics"]["created"] + pulled["changes"]["daily_metrics"]["updated"]
        assert row["notes"] == "pushed through server 1"

        changed = {
            "daily_metrics": {"created": [], "updated": [{**day, "notes": "edited via server 2"}], "deleted": []}
        }
        await rpc(http, two, "sync.pushChanges", {"changes": changed, "lastPulledAt": pulled["timestamp"]}, token)
        again = await rpc(http, one, "sync.pullChanges", {"lastPulledAt": pulled["timestamp"]}, token)
        (row,) = again["changes"]["daily_metrics"]["created"] + again["changes"]["daily_metrics"]["updated"]
        assert row["notes"] == "edited via server 2"

        refreshed = await rpc(http, two, "auth.refresh", {"refreshToken": auth["refreshToken"]})
        await rpc(http, one, "sync.pullChanges", {"lastPulledAt": None}, refreshed["accessToken"])

    for proc in cluster:
        assert "Traceback" not in proc.output(), f"{proc.name}:\n{proc.output()[-3000:]}"

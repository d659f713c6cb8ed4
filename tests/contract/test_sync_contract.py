"""The sync protocol against the REAL clients: WatermelonDB 0.28 `synchronize()` (LokiJS in Node) and
@trpc/client v11, talking to a live `trainer serve` on SQLite and on PostgreSQL.

Each device is a long-running node process (sync/device.mjs) built from the schema `trainer codegen
ts` generates; the test drives devices and server-side writes step by step and asserts on what each
device's local database holds afterwards, and on the server's tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, _in_thread, new_pg_database
from tests.contract.conftest import CONTRACT_DIR, LiveServer
from trainer.codegen import write_typescript
from trainer.db import Database, create_database
from trainer.sync.tables import TABLES

PASSWORD = "correct horse battery"
STEP_TIMEOUT_S = 60
BOOKKEEPING = {"_status", "_changed"}


@pytest.fixture(scope="session")
def sync_schema_dir(node: str, node_modules: Path) -> Iterator[Path]:
    """The generated schema.ts/migrations.ts, compiled to CommonJS for the device script."""
    path = Path(tempfile.mkdtemp(prefix=".sync-schema-", dir=CONTRACT_DIR))
    write_typescript(path)
    (path / "package.json").write_text('{"type": "commonjs"}')
    tsc = CONTRACT_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    options = ["--module", "commonjs", "--target", "ES2020", "--moduleResolution", "node", "--skipLibCheck"]
    proc = subprocess.run(
        [node, str(tsc), *options, "--outDir", str(path), str(path / "schema.ts"), str(path / "migrations.ts")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def sync_server(
    request: pytest.FixtureRequest, trainer_server: Callable[..., LiveServer]
) -> Iterator[tuple[LiveServer, str]]:
    """A live server per backend whose database URL the test knows (for server-side writes and checks)."""
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_server")
        url = _in_thread(lambda: new_pg_database(pg, None))
        yield trainer_server("postgresql", database_url=url), url
        return
    folder = Path(tempfile.mkdtemp(prefix="trainer-sync-contract-"))
    url = f"sqlite:///{folder / 'sync.db'}"
    yield trainer_server("sqlite", database_url=url), url
    shutil.rmtree(folder, ignore_errors=True)


def on_server(url: str, action: Callable[[Database], Awaitable[Any]]) -> Any:
    """Run `action(db)` against the live server's database (a second process writing beside it)."""

    async def run() -> Any:
        db = create_database(url, pool_size=1)
        await db.open()
        try:
            return await action(db)
        finally:
            await db.close()

    return _in_thread(run)


class Device:
    """One app install: a node process running the real WatermelonDB + tRPC client."""

    def __init__(self, node: str, server: LiveServer, schema_dir: Path, device_id: str) -> None:
        env = dict(os.environ, TRPC_URL=server.trpc_url, SYNC_SCHEMA_DIR=str(schema_dir), DEVICE_ID=device_id)
        self.server = server
        self.proc = subprocess.Popen(
            [node, str(CONTRACT_DIR / "sync" / "device.mjs")],
            cwd=CONTRACT_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = ThreadPoolExecutor(1)
        assert self._read() == {"ready": True}

    def _read(self) -> dict:
        line = self._reader.submit(self.proc.stdout.readline).result(timeout=STEP_TIMEOUT_S)  # type: ignore[union-attr]
        if not line:
            raise AssertionError(f"device exited: {self.proc.stderr.read()}\n{self.server.log_tail()}")  # type: ignore[union-attr]
        answer = json.loads(line)
        assert "failed" not in answer, answer["failed"]
        return answer

    def send(self, op: str, **args: Any) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._read()

    def sync(self) -> dict:
        result = self.send("sync")
        assert result["ok"], result
        return result

    def records(self, table: str) -> dict[str, dict]:
        """Local records of one table without WatermelonDB's bookkeeping columns."""
        dump = self.send("dump", tables=[table])[table]
        return {rid: {k: v for k, v in raw.items() if k not in BOOKKEEPING} for rid, raw in dump.items()}

    def statuses(self, table: str) -> dict[str, str]:
        return {rid: raw["_status"] for rid, raw in self.send("dump", tables=[table])[table].items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write('{"op": "exit"}\n')  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reader.shutdown(wait=False)


@pytest.fixture
def devices(node: str, sync_server: tuple[LiveServer, str], sync_schema_dir: Path) -> Iterator[Callable[..., Device]]:
    """Factory: `devices(2)` -> two signed-in installs of one new user (the first registers it)."""
    started: list[Device] = []
    server, _ = sync_server

    def make(count: int = 1, email: str | None = None) -> list[Device]:
        email = email or f"sync-{uuid.uuid4().hex[:10]}@example.com"
        made = []
        for i in range(count):
            device = Device(node, server, sync_schema_dir, f"{email}-device-{i}")
            started.append(device)
            device.user_id = device.send("signin", email=email, password=PASSWORD, register=i == 0)["userId"]
            made.append(device)
        return made

    yield make
    for device in started:
        device.close()


@pytest.fixture
def db_url(sync_server: tuple[LiveServer, str]) -> str:
    return sync_server[1]


def server_rows(url: str, table: str, user_id: str) -> dict[str, dict]:
    async def fetch(db: Database) -> dict[str, dict]:
        rows = await db.fetch(f"SELECT * FROM {table} WHERE user_id = $1", user_id)
        return {r["id"]: r for r in rows}

    return on_server(url, fetch)


def server_write(url: str, user_id: str, *writes: tuple[str, str, dict | str]) -> None:
    """Server-side writes through trainer.sync.writes: ("upsert", table, row) or ("delete", table, id)."""
    from trainer.sync.writes import delete_server_row, upsert_server_row

    async def apply(db: Database) -> None:
        async with db.transaction() as tx:
            for kind, table, value in writes:
                if kind == "upsert":
                    await upsert_server_row(tx, user_id, table, value)  # type: ignore[arg-type]
                else:
                    await delete_server_row(tx, user_id, table, value)  # type: ignore[arg-type]

    on_server(url, apply)


def no_protocol_errors(*devices: Device) -> None:
    """WatermelonDB logs an echo ("already exists locally") or a duplicate id as an error: none allowed."""
    for device in devices:
        assert device.send("errors")["errors"] == []


# -- tests ---------------------------------------------------------------------------------------
# Ids are global on the server (another user's id is refused), and one server serves the module, so
# every test names its records with a suffix of its own: u("run") -> "run-3f2a9c".


@pytest.fixture
def u() -> Callable[[str], str]:
    suffix = uuid.uuid4().hex[:6]
    return lambda name: f"{name}-{suffix}"


def test_first_sync_then_incremental_server_changes(devices, db_url, u):
    (phone,) = devices(1)
    a1, a2, a3, p1, w1, m1 = map(u, ("a1", "a2", "a3", "p1", "w1", "m1"))
    server_write(
        db_url,
        phone.user_id,
        ("upsert", "activities", {"id": a1, "source": "garmin", "start_time": 1_700_000_000_000, "trimp": 55.5}),
        ("upsert", "activities", {"id": a2, "start_time": 1_700_000_100_000, "manual": True}),
        ("upsert", "training_plans", {"id": p1, "name": "Marathon", "race_date": "2025-04-27"}),
        ("upsert", "scheduled_workouts", {"id": w1, "plan_id": p1, "day": "2025-01-06", "kind": "long"}),
        ("upsert", "daily_metrics", {"id": m1, "day": "2025-01-05", "hrv_rmssd_ms": 61.0}),
    )
    first = phone.sync()
    assert first["pulled"]["activities"] == {"created": 2, "updated": 0, "deleted": 0}
    activities = phone.records("activities")
    assert activities[a1]["trimp"] == 55.5 and activities[a1]["source"] == "garmin"
    assert activities[a2]["manual"] is True and activities[a2]["start_time"] == 1_700_000_100_000
    assert phone.records("scheduled_workouts")[w1]["plan_id"] == p1
    assert phone.records("training_plans")[p1]["race_date"] == "2025-04-27"
    assert phone.records("daily_metrics")[m1]["hrv_rmssd_ms"] == 61.0

    server_write(
        db_url,
        phone.user_id,
        ("upsert", "activities", {"id": a1, "trimp": 60.0}),
        ("upsert", "activities", {"id": a3, "start_time": 1_700_000_200_000}),
        ("delete", "activities", a2),
    )
    second = phone.sync()
    assert second["pulled"]["activities"] == {"created": 1, "updated": 1, "deleted": 1}
    assert second["pulled"]["training_plans"] == {"created": 0, "updated": 0, "deleted": 0}
    activities = phone.records("activities")
    assert sorted(activities) == sorted([a1, a3]) and activities[a1]["trimp"] == 60.0
    assert phone.sync()["pulled"]["activities"] == {"created": 0, "updated": 0, "deleted": 0}
    no_protocol_errors(phone)


def test_device_changes_go_both_ways_without_echo(devices, db_url, u):
    phone, tablet = devices(2)
    run, day = u("run"), u("day")
    phone.sync()
    tablet.sync()
    phone.send(
        "create", table="activities", id=run, fields={"name": "Easy", "start_time": 1_700_000_000_000, "source": "app"}
    )
    phone.send("create", table="daily_metrics", id=day, fields={"day": "2025-01-01", "mood": 4, "source": "app"})
    pushed = phone.sync()
    assert pushed["pushed"]["activities"]["created"] == 1
    assert phone.statuses("activities") == {run: "synced"}
    rows = server_rows(db_url, "activities", phone.user_id)
    assert rows[run]["name"] == "Easy" and rows[run]["changed_by_device"].endswith("device-0")

    got = tablet.sync()
    assert got["pulled"]["activities"]["created"] == 1 and tablet.records("activities")[run]["name"] == "Easy"
    tablet.send("update", table="activities", id=run, fields={"name": "Easy run", "rpe": 4})
    tablet.send("delete", table="daily_metrics", id=day)
    tablet.sync()

    echo = phone.sync()  # the phone's own push does not come back (WatermelonDB #649) ...
    assert echo["pulled"]["activities"] == {"created": 0, "updated": 1, "deleted": 0}  # ... only the tablet's edit
    assert echo["pulled"]["daily_metrics"] == {"created": 0, "updated": 0, "deleted": 1}
    assert phone.records("activities")[run]["name"] == "Easy run" and phone.records("activities")[run]["rpe"] == 4
    assert phone.records("daily_metrics") == {}
    assert tablet.sync()["pulled"]["activities"] == {"created": 0, "updated": 0, "deleted": 0}
    assert phone.records("activities") == tablet.records("activities")
    no_protocol_errors(phone, tablet)


def test_conflict_then_pull_merge_and_push_again(devices, db_url, u):
    phone, tablet = devices(2)
    run = u("run")
    phone.send("create", table="activities", id=run, fields={"name": "Run", "start_time": 1, "source": "app"})
    phone.sync()
    tablet.sync()
    phone.send("update", table="activities", id=run, fields={"notes": "felt great"})
    assert phone.send("sync", pauseBeforePush=True) == {"event": "paused"}
    # between the phone's pull and its push, the tablet changes the same record
    tablet.send("update", table="activities", id=run, fields={"name": "Tempo run"})
    tablet.sync()
    conflicted = phone.send("resume")
    assert conflicted["ok"] is False and conflicted["code"] == "CONFLICT"
    assert server_rows(db_url, "activities", phone.user_id)[run]["notes"] == ""  # nothing applied

    merged = phone.sync()  # pull brings the tablet's name; the phone's changed column wins; push succeeds
    assert merged["pulled"]["activities"]["updated"] == 1 and merged["resolvedConflicts"] == 1
    tablet.sync()
    expected = {"name": "Tempo run", "notes": "felt great"}
    for device in (phone, tablet):
        record = device.records("activities")[run]
        assert {k: record[k] for k in expected} == expected
    row = server_rows(db_url, "activities", phone.user_id)[run]
    assert (row["name"], row["notes"]) == ("Tempo run", "felt great")
    no_protocol_errors(phone, tablet)


def test_two_devices_converge_after_offline_edits(devices, db_url, u):
    phone, tablet = devices(2)
    plan, p_day, t_day = u("plan"), u("p-day"), u("t-day")
    phone.send("create", table="training_plans", id=plan, fields={"name": "10k", "options": "{}", "status": "active"})
    phone.sync()
    tablet.sync()
    # both offline: each edits the same plan (different columns) and logs the same day
    phone.send("update", table="training_plans", id=plan, fields={"goal": "sub 45"})
    phone.send("create", table="daily_metrics", id=p_day, fields={"day": "2025-02-01", "soreness": 2, "source": "app"})
    tablet.send("update", table="training_plans", id=plan, fields={"name": "10k spring"})
    tablet.send("create", table="daily_metrics", id=t_day, fields={"day": "2025-02-01", "mood": 5, "source": "app"})
    server_write(db_url, phone.user_id, ("upsert", "training_plans", {"id": plan, "current_phase": "build"}))
    phone.sync()
    tablet.sync()
    phone.sync()
    for table in ("training_plans", "daily_metrics"):
        assert phone.records(table) == tablet.records(table), table
        assert sorted(server_rows(db_url, table, phone.user_id)) == sorted(phone.records(table))
    merged = phone.records("training_plans")[plan]
    assert (merged["goal"], merged["name"], merged["current_phase"]) == ("sub 45", "10k spring", "build")
    assert sorted(phone.records("daily_metrics")) == sorted([p_day, t_day])  # two records for one day: both kept
    no_protocol_errors(phone, tablet)


def test_deleting_a_parent_deletes_its_children_everywhere(devices, db_url, u):
    phone, tablet = devices(2)
    plan, w1, w2 = u("plan"), u("w1"), u("w2")
    phone.send("create", table="training_plans", id=plan, fields={"name": "Base", "options": "{}"})
    for n, workout in enumerate((w1, w2), start=1):
        phone.send("create", table="scheduled_workouts", id=workout, fields={"plan_id": plan, "day": f"2025-03-0{n}"})
    phone.sync()
    tablet.sync()
    assert sorted(tablet.records("scheduled_workouts")) == sorted([w1, w2])
    tablet.send("delete", table="training_plans", id=plan)  # the app deletes only the parent
    tablet.sync()
    assert server_rows(db_url, "scheduled_workouts", phone.user_id) == {}
    phone.sync()
    assert phone.records("training_plans") == {} and phone.records("scheduled_workouts") == {}
    tablet.sync()  # the deleting device is told about the children too
    assert tablet.records("scheduled_workouts") == {}
    no_protocol_errors(phone, tablet)


def test_a_device_past_the_tombstone_horizon_resets_and_keeps_its_unsynced_work(devices, db_url, u):
    (phone,) = devices(1)
    kept, purged, offline = u("kept"), u("purged"), u("offline")
    server_write(
        db_url,
        phone.user_id,
        ("upsert", "activities", {"id": kept, "start_time": 1}),
        ("upsert", "activities", {"id": purged, "start_time": 2}),
    )
    phone.sync()
    server_write(db_url, phone.user_id, ("delete", "activities", purged))

    async def purge_100_days_later(db: Database) -> int:
        from trainer import clock
        from trainer.sync.retention import purge_expired

        with clock.shifted(100 * 86_400):  # only this process's clock: the server's tokens stay valid
            return await purge_expired(db, 90)

    assert on_server(db_url, purge_100_days_later) >= 1
    phone.send("create", table="activities", id=offline, fields={"start_time": 3, "source": "app"})
    result = phone.sync()
    assert result["resetRequired"] is True and sorted(result["pulled"]) == sorted(TABLES)
    assert sorted(phone.records("activities")) == sorted([kept, offline])  # deletion applied, local work kept
    assert sorted(server_rows(db_url, "activities", phone.user_id)) == sorted([kept, offline])
    assert phone.sync()["resetRequired"] is False

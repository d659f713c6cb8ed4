"""Smoke test of the one-file binary: every command an operator runs, against the bundled plugins.

    python packaging/smoke_test.py [--binary dist/trainer] [--quick]

Runs from the repository with trainer installed (it uses the library to link a vendor account and
to read the results, and tests/fakes/strava.py as the vendor). Stages:

    version      cold start: wall time of `trainer version`, three runs
    migrate      schema created by the binary (migrations shipped as data)
    doctor       entry points work inside the binary: the bundled plugins are discovered
    user/import  `trainer user create`, `trainer import` of a GPX file (the files plugin)
    serve        time to a 200 from /readyz; idle RSS; a Strava webhook fetched from the fake
                 Strava API and stored by the embedded worker
    worker       `serve --no-worker` + `trainer worker`: a webhook processed by the separate worker
    backfill     `trainer backfill` from the fake Strava, processed by the worker

--quick stops after the first processed webhook (what packaging/smoke-test.sh checks by default).
Prints one line per stage and a JSON summary of the figures; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.strava import FakeStrava  # noqa: E402
from trainer.db import Database, create_database  # noqa: E402
from trainer.plugins import Account, TokenSet  # noqa: E402
from trainer.store import accounts, users  # noqa: E402
from trainer.store.accounts import TokenCipher  # noqa: E402

SECRET = "smoke-test-secret-key-0123456789-abcdefghijklmnop"
PATH_TOKEN = "Smoke-Test-Path-Token-0123456789"
SUBSCRIPTION_ID = 120475
EMAIL = "smoke@example.com"
PASSWORD = "smoke test password"
GPX = REPO / "tests" / "fixtures" / "gpx" / "korita-zbevnica.gpx"


class SmokeFailure(AssertionError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the one-file bootloader runs Python as a child)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        direct = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return found
    for child in map(int, direct):
        found += [child, *_children(child)]
    return found


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a spawned binary with everything it started (a no-op once the group is gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


class Smoke:
    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.config = work / "trainer.toml"
        self.figures: dict[str, Any] = {"binary_bytes": binary.stat().st_size}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")},
            "TRAINER_CONFIG": str(self.config),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.strava = FakeStrava()
        self.db: Database | None = None

    # -- running the binary --------------------------------------------------------------------

    async def run(self, *args: str, stdin: str | None = None, limit_s: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the binary to completion in a thread: the fake vendor lives on this event loop."""
        done = await asyncio.to_thread(
            subprocess.run,
            [str(self.binary), *args],
            input=stdin,
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=limit_s,
        )
        if done.returncode != 0:
            raise SmokeFailure(f"trainer {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        # Own process group: the one-file bootloader runs Python as a child, and SIGKILL to the
        # bootloader alone would leave that child running.
        proc = subprocess.Popen(
            [str(self.binary), *args], env=self.env, cwd=self.work, stdout=log, stderr=log, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            return proc.wait(5)

    async def until(self, check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> float:
        started = time.monotonic()
        while not await check():
            if time.monotonic() - started > within_s:
                raise SmokeFailure(f"timed out after {within_s:.0f} s waiting for {what}")
            for proc in self.procs:
                if proc.poll() is not None and proc.returncode not in (0, -signal.SIGTERM):
                    raise SmokeFailure(f"a trainer process exited with {proc.returncode} while waiting for {what}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    # -- stages --------------------------------------------------------------------------------

    def write_config(self, port: int) -> None:
        strava = self.strava.plugin_settings(subscription_id=SUBSCRIPTION_ID)
        lines = [
            f'data_dir = "{self.work / "data"}"',
            f'secret_key = "{SECRET}"',
            f'webhook_path_token = "{PATH_TOKEN}"',
            f"port = {port}",
            'log_format = "json"',
            "argon2_memory_kib = 1024",
            "argon2_time_cost = 1",
            "[plugins.strava]",
            *(f"{k} = {json.dumps(v)}" for k, v in strava.items()),
        ]
        self.config.write_text("\n".join(lines) + "\n")

    async def stage_version(self) -> None:
        times = []
        for _ in range(3):
            started = time.monotonic()
            out = (await self.run("version")).stdout
            times.append(time.monotonic() - started)
        if "trainer" not in out:
            raise SmokeFailure(f"unexpected version output: {out!r}")
        self.figures["cold_start_version_s"] = {
            "first": round(times[0], 2),
            "median": round(statistics.median(times), 2),
        }
        print(f"version    {out.strip()}  ({', '.join(f'{t:.2f}' for t in times)} s)")

    async def stage_migrate(self) -> None:
        out = (await self.run("migrate")).stdout
        if "applied 0001_initial" not in out:
            raise SmokeFailure(f"migrate did not apply the schema: {out}")
        print(f"migrate    {len(out.strip().splitlines())} migrations applied")

    async def stage_doctor(self) -> None:
        out = (await self.run("doctor")).stdout
        for plugin in ("strava", "files"):
            if plugin not in out:
                raise SmokeFailure(f"doctor does not list the bundled plugin {plugin}: entry points missing?\n{out}")
        print("doctor     all checks passed; bundled plugins discovered through entry points")

    async def stage_user_and_import(self) -> str:
        await self.run("user", "create", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
        out = (await self.run("import", str(GPX), "--user", EMAIL)).stdout
        assert self.db is not None
        user = await users.get_by_email(self.db, EMAIL)
        count = await self.db.fetchval("SELECT count(*) FROM activities WHERE user_id = $1", user.id)
        if count != 1:
            raise SmokeFailure(f"import stored {count} activities:\n{out}")
        print(f"import     {GPX.name} -> 1 activity")
        return user.id

    async def link_strava(self, user_id: str) -> int:
        athlete = self.strava.add_athlete()
        body = self.strava.issue_tokens(athlete)
        tokens = TokenSet(
            body["access_token"], body["refresh_token"], body["expires_at"], external_user_id=str(athlete)
        )
        assert self.db is not None
        async with self.db.transaction() as tx:
            await accounts.save(tx, TokenCipher(SECRET), Account(user_id, "strava", str(athlete), tokens))
        return athlete

    async def webhook(self, http: aiohttp.ClientSession, base: str, athlete: int, hours_ago: int) -> float:
        activity = self.strava.add_activity(athlete, start=datetime.now(UTC) - timedelta(hours=hours_ago), samples=900)
        event = self.strava.event("create", activity["id"], athlete) | {"subscription_id": SUBSCRIPTION_ID}
        started = time.monotonic()
        async with http.post(f"{base}/webhooks/{PATH_TOKEN}/strava", json=event) as resp:
            if resp.status != 200:
                raise SmokeFailure(f"webhook answered {resp.status}: {await resp.text()}")
        assert self.db is not None
        db = self.db

        async def stored() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT s.sample_count FROM activities a JOIN activity_streams s ON s.activity_id = a.id"
                    " WHERE a.external_id = $1",
                    str(activity["id"]),
                )
            )

        await self.until(stored, 60, f"Strava activity {activity['id']} stored")
        return time.monotonic() - started

    async def stage_serve(self, http: aiohttp.ClientSession, base: str, athlete: int) -> None:
        started = time.monotonic()
        server = self.spawn("serve", "serve")

        async def ready() -> bool:
            try:
                async with http.get(f"{base}/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await self.until(ready, 60, "/readyz")
        self.figures["cold_start_readyz_s"] = round(time.monotonic() - started, 2)
        await asyncio.sleep(3)
        self.figures["idle_rss_mib"] = round(rss_kib(server.pid) / 1024, 1)
        took = await self.webhook(http, base, athlete, hours_ago=30)
        self.figures["webhook_to_stored_s"] = round(took, 2)
        print(
            f"serve      /readyz after {self.figures['cold_start_readyz_s']} s, idle RSS {self.figures['idle_rss_mib']}"
            f" MiB; Strava webhook stored (with streams) in {took:.2f} s"
        )
        code = self.stop(server)
        if code != 0:
            raise SmokeFailure(f"serve exited {code} on SIGTERM")

    async def stage_worker_and_backfill(self, http: aiohttp.ClientSession, base: str, athlete: int) -> None:
        server = self.spawn("serve-no-worker", "serve", "--no-worker")
        worker = self.spawn("worker", "worker", "--workers", "2")

        async def ready() -> bool:
            try:
                async with http.get(f"{base}/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await self.until(ready, 60, "/readyz (--no-worker)")
        took = await self.webhook(http, base, athlete, hours_ago=20)
        print(f"worker     webhook via serve --no-worker, processed by trainer worker in {took:.2f} s")

        for hours in (50, 60):
            self.strava.add_activity(athlete, start=datetime.now(UTC) - timedelta(hours=hours), samples=300)
        since = (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%d")
        out = (await self.run("backfill", "--user", EMAIL, "--source", "strava", "--since", since)).stdout
        assert self.db is not None
        db = self.db

        async def all_there() -> bool:
            n = await db.fetchval("SELECT count(*) FROM activities WHERE source = 'strava'")
            return int(n) >= 4

        await self.until(all_there, 60, "backfilled activities stored")
        print(f"backfill   {out.strip().splitlines()[-1]}; 4 Strava activities stored")
        for proc in (server, worker):
            code = self.stop(proc)
            if code != 0:
                raise SmokeFailure(f"a process exited {code} on SIGTERM")

    async def main(self, quick: bool) -> None:
        await self.strava.start()
        try:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            self.write_config(port)
            await self.stage_version()
            await self.stage_migrate()
            self.db = create_database(f"sqlite:///{self.work / 'data' / 'trainer.db'}")
            await self.db.open()
            if not quick:
                await self.stage_doctor()
            user_id = await self.stage_user_and_import()
            athlete = await self.link_strava(user_id)
            async with aiohttp.ClientSession() as http:
                await self.stage_serve(http, base, athlete)
                if not quick:
                    await self.stage_worker_and_backfill(http, base, athlete)
        finally:
            for proc in self.procs:
                kill_group(proc)
            if self.db is not None:
                await self.db.close()
            await self.strava.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=REPO / "dist" / "trainer")
    parser.add_argument("--quick", action="store_true", help="stop after the first processed webhook")
    args = parser.parse_args()
    binary = args.binary.resolve()
    if not binary.is_file():
        print(f"no binary at {binary}; build it with packaging/build-binary.sh", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="trainer-smoke-") as tmp:
        smoke = Smoke(binary, Path(tmp))
        try:
            asyncio.run(smoke.main(args.quick))
        except SmokeFailure as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            return 1
        print("figures " + json.dumps(smoke.figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

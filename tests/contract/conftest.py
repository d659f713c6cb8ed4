"""Contract tests: real JavaScript clients (@trpc/client, WatermelonDB) against a live `trainer serve`.

What they share:
- `node_modules`: Node.js and the pinned packages; `npm ci` runs when node_modules is missing, so
  `pip install -e '.[test]' && pytest` works on a fresh machine. Skipped only when `node` is absent.
- `trainer_server(backend, **settings)`: starts `trainer serve` as a subprocess on a free port with its
  own data dir (SQLite, or a fresh PostgreSQL database from the pgserver the other tests use) and
  TRAINER_* settings given as keywords; stopped with SIGTERM at the end of the session.
- `live_server`: one open-registration server per backend for the whole session.
- `run_node(script, server, *args)`: runs a script and returns the JSON it prints on its last line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, TEST_SECRET, _in_thread, new_pg_database

CONTRACT_DIR = Path(__file__).resolve().parent
NODE_TIMEOUT_S = 120


@dataclass(frozen=True)
class LiveServer:
    backend: str
    base_url: str
    data_dir: Path
    log_file: Path

    @property
    def trpc_url(self) -> str:
        return self.base_url + "/trpc"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("contract tests need Node.js (`node` is not on PATH)")
    return path


@pytest.fixture(scope="session")
def node_modules(node: str) -> Path:
    """The pinned JavaScript packages, installed from package-lock.json when missing."""
    modules = CONTRACT_DIR / "node_modules"
    if not (modules / ".package-lock.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install the contract test packages")
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CONTRACT_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed in {CONTRACT_DIR}:\n{proc.stdout}\n{proc.stderr}")
    return modules


def _trainer_command() -> list[str]:
    script = Path(sys.executable).parent / "trainer"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from trainer_cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, server: LiveServer, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"trainer serve exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"trainer serve did not become ready in {timeout_s} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def trainer_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveServer]]:
    """Factory: `trainer_server("sqlite", registration="invite")` -> a running server (stopped at session end)."""
    running: list[subprocess.Popen] = []
    root = Path(tempfile.mkdtemp(prefix="trainer-contract-"))

    def start(backend: str, **settings: Any) -> LiveServer:
        data_dir = root / f"server-{len(running)}"
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}
        values: dict[str, Any] = {
            "port": _free_port(),
            "data_dir": data_dir,
            "secret_key": TEST_SECRET,
            "registration": "open",
            "argon2_memory_kib": 1024,
            "argon2_time_cost": 1,
            "log_level": "warning",
        }
        if backend == "postgresql":
            pg_server = request.getfixturevalue("pg_server")
            values["database_url"] = _in_thread(lambda: new_pg_database(pg_server, None))
        values.update(settings)
        for name, value in values.items():
            env["TRAINER_" + name.upper()] = json.dumps(value) if isinstance(value, list | dict) else str(value)
        server = LiveServer(backend, f"http://127.0.0.1:{values['port']}", data_dir, data_dir / "server.log")
        with server.log_file.open("w") as log:
            proc = subprocess.Popen(
                [*_trainer_command(), "serve"], cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        running.append(proc)
        _wait_ready(proc, server)
        return server

    yield start
    for proc in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(request: pytest.FixtureRequest, trainer_server: Callable[..., LiveServer]) -> LiveServer:
    """One server with open registration per backend, shared by the session (tests use unique emails)."""
    return trainer_server(request.param)


@pytest.fixture(scope="session")
def run_node(node: str, node_modules: Path) -> Callable[..., Any]:
    """Run a contract script with the server's URLs; returns the JSON printed on its last stdout line."""

    def run(script: str | Path, server: LiveServer, *args: str) -> Any:
        path = CONTRACT_DIR / script
        env = dict(os.environ, TRAINER_URL=server.base_url, TRPC_URL=server.trpc_url)
        proc = subprocess.run(
            [node, str(path), *args], cwd=CONTRACT_DIR, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT_S
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{path.name} {' '.join(args)} exited with {proc.returncode}\n--- stdout\n{proc.stdout}\n"
                f"--- stderr\n{proc.stderr}\n--- server log ({server.backend})\n{server.log_tail()}"
            )
        lines = proc.stdout.strip().splitlines()
        assert lines, f"{path.name} printed nothing; stderr:\n{proc.stderr}"
        return json.loads(lines[-1])

    return run

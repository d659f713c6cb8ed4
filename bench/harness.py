"""What the HTTP benchmarks share: the bare aiohttp baseline, server processes, and results.

The bare server is the ceiling each figure is compared with: aiohttp with one route that reads
the body and answers 200, nothing else (no middleware, no logging), on the same machine and
driven by the same load generator in the same run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float | None = None  # CPU time the server process used meanwhile (Linux only)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_us(self) -> float | None:
        """The server's CPU time per request, in microseconds."""
        return None if self.server_cpu_s is None or not self.requests else self.server_cpu_s / self.requests * 1e6

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def bare_server(port: int) -> None:
    """The baseline (run in its own process): `/ok` for any method, body read, 200 with a tiny JSON,
    on the same event loop trainer runs on (uvloop where installed): the ratio measures trainer's
    work, not a difference of loops."""
    from aiohttp import web

    from trainer.loops import loop_factory

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=loop_factory()())


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads) from /proc; None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trainer_command(*args: str) -> list[str]:
    """The installed `trainer` command (or the same entry point through this Python)."""
    script = Path(sys.executable).parent / "trainer"
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from trainer_cli.main import main; main()"]
    return [*base, *args]


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path, *, cwd: Path = ROOT) -> Iterator[subprocess.Popen]:
    """A server process for the duration of the block, stopped with SIGTERM (killed after 30 s)."""
    with log.open("a") as out:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_until_up(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen, log: Path) -> None:
    """Until `url` answers below 500 (503 is a server that is not ready yet); exits if the process dies."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{tail(log)}")
        try:
            async with session.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up:\n{tail(log)}")

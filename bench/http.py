"""Benchmark the HTTP API: tRPC `user.getProfile` against a bare aiohttp handler, in the same run.

Both servers run as their own process (the real `trainer serve` on a fresh SQLite database, and a
one-route aiohttp app answering 200 OK), and one load generator drives each in turn over loopback:
an aiohttp client session with keep-alive and N concurrent workers, each sending its next request
when the previous answer is read, for a fixed duration (or request count). The bare handler is the
ceiling of this machine, Python and aiohttp; the ratio says what trainer's stack costs on top of it:
middlewares, tRPC envelope, bearer-token check (JWT + one session query) and the profile query.

Run: python bench/http.py [--duration 5] [--concurrency 32] [--requests N] [--database-url URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/http.py`, this file's folder comes first on sys.path and this module would
# shadow the standard library's `http`, which aiohttp imports. Drop that entry before importing.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for bench.harness

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time

import aiohttp

from bench.harness import Result, bare_server, free_port, process, trainer_command, wait_until_up

BENCH_PASSWORD = "bench password 0123456789"
THIS_FILE = Path(__file__).resolve()


async def sign_up(session: aiohttp.ClientSession, trpc: str) -> str:
    """An account to read the profile of; returns its access token (valid for 15 minutes)."""
    body = {"email": "bench@example.com", "password": BENCH_PASSWORD}
    async with session.post(f"{trpc}/auth.register", json=body) as resp:
        doc = await resp.json()
    if resp.status != 200:
        raise SystemExit(f"could not register the bench user: {doc}")
    return doc["result"]["data"]["accessToken"]


# -- the load generator ---------------------------------------------------------------------------


async def drive(
    session: aiohttp.ClientSession,
    name: str,
    url: str,
    headers: dict[str, str],
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int | None,
) -> Result:
    """N workers, each with one request in flight, until the time or the request budget runs out."""
    latencies: list[float] = []
    errors = 0
    budget = [max_requests if max_requests is not None else -1]
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            if budget[0] == 0:
                return
            budget[0] -= 1
            started = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return Result(name, len(latencies), errors, elapsed, latencies)


async def measure(args: argparse.Namespace, bare_url: str, trpc_url: str, token: str) -> list[Result]:
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    auth = {"Authorization": f"Bearer {token}"}
    targets = [("bare aiohttp 200 OK", bare_url, {}), ("tRPC user.getProfile", f"{trpc_url}/user.getProfile", auth)]
    async with aiohttp.ClientSession(connector=connector) as session:
        for _name, url, headers in targets:  # warm up: connections open, caches and code paths hot
            await drive(
                session, "warm-up", url, headers, concurrency=args.concurrency, duration_s=1.0, max_requests=None
            )
        results = []
        for name, url, headers in targets:
            results.append(
                await drive(
                    session,
                    name,
                    url,
                    headers,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    max_requests=args.requests,
                )
            )
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"loopback, {args.concurrency} concurrent keep-alive workers, {args.duration:g} s per target"
        + (f" (at most {args.requests} requests)" if args.requests else "")
        + f", Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by client and server"
    )
    print(f"{'target':<24} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        p50, p99 = r.percentile(50), r.percentile(99)
        print(f"{r.name:<24} {r.requests:>9} {r.errors:>7} {r.rate:>9.0f} {p50:>8.2f} {p99:>8.2f}")
    bare, trpc = results
    ratio = trpc.rate / bare.rate if bare.rate else float("nan")
    p50 = statistics.median(trpc.latencies_ms) / statistics.median(bare.latencies_ms) if bare.latencies_ms else 0
    print(f"ratio tRPC / bare: {ratio:.2f} of the throughput ({1 / ratio:.1f}x slower), {p50:.1f}x the median latency")


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="trainer-bench-") as tmp:
        root = Path(tmp)
        bare_port, trainer_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}
        trainer_env = dict(
            env,
            TRAINER_PORT=str(trainer_port),
            TRAINER_DATA_DIR=str(root / "data"),
            TRAINER_REGISTRATION="open",
            TRAINER_LOG_LEVEL="warning",
        )
        if args.database_url:
            trainer_env["TRAINER_DATABASE_URL"] = args.database_url
        bare_cmd = [sys.executable, str(THIS_FILE), "--bare-server", str(bare_port)]
        with (
            process(bare_cmd, env, root / "bare.log", cwd=root) as bare_proc,
            process(trainer_command("serve"), trainer_env, root / "trainer.log", cwd=root) as trainer_proc,
        ):
            base = f"http://127.0.0.1:{trainer_port}"
            async with aiohttp.ClientSession() as session:
                await wait_until_up(session, f"http://127.0.0.1:{bare_port}/ok", bare_proc, root / "bare.log")
                await wait_until_up(session, f"{base}/readyz", trainer_proc, root / "trainer.log")
                token = await sign_up(session, f"{base}/trpc")
                async with session.get(
                    f"{base}/trpc/user.getProfile", headers={"Authorization": f"Bearer {token}"}
                ) as r:
                    profile = json.loads(await r.text())
                    assert r.status == 200 and profile["result"]["data"]["email"] == "bench@example.com", profile
            results = await measure(args, f"http://127.0.0.1:{bare_port}/ok", f"{base}/trpc", token)
    report(results, args)
    failed = sum(r.errors for r in results)
    if failed:
        print(f"{failed} request(s) did not answer 200", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per target (default 5)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent workers (default 32)")
    parser.add_argument("--requests", type=int, default=None, help="stop each target after this many requests")
    parser.add_argument("--database-url", default="", help="benchmark trainer on this database (default: SQLite)")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()

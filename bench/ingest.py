"""Benchmark webhook ingestion: durable ingest beside a bare aiohttp handler, and end-to-end processing.

1. Ingest, on SQLite and on PostgreSQL 16 (pgserver): the real `trainer serve --no-worker` receiving
   Strava webhook events (path token, the Strava plugin's validation, account lookup, one inbox row
   committed per event, the doorbell rung in the SQLite queue file) against a bare aiohttp app whose
   one handler reads the body and answers 200 OK - both as their own process, driven in turn by the
   same keep-alive load generator over loopback, alternating in --rounds rounds so that a shared
   machine's slow spells fall on both. Every accepted event is a committed row: the bench counts
   them. Goal: trainer >= 0.5x the bare handler's requests/s.

2. End to end: 1,000 Strava events queued in the inbox (the webhooks' rows, 20 for each of 50
   athletes), rung all at once into running `trainer worker` processes (one, then one per CPU, as
   the docs advise for using every core) that process them against a local fake Strava (activity
   + 1 Hz streams per event): fetch, normalize, training load, store with streams, recompute the
   user's daily state. Timed from the ring to the last event done; the workers are warmed up first
   by one event per process, of other athletes (their start-up, about a second of imports, pools
   and plugins, is printed beside). Goal: >= 200 events/s on 2 cores (the fake, the database and
   the workers share them).

Loopback only, bounded by --duration and --events. Prints figures; exits 0 unless something failed.

Run: python bench/ingest.py [--duration 5] [--rounds 5] [--concurrency 32] [--events 1000] [--workers 16]
     [--sqlite-only]
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/ingest.py` puts bench/ first on sys.path (bench/http.py would shadow the standard
# library's http); the repository root is needed for the fake vendor in tests/fakes.
ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import aiohttp  # noqa: E402

from bench.harness import (  # noqa: E402
    Result,
    bare_server,
    cpu_seconds,
    free_port,
    process,
    tail,
    trainer_command,
    wait_until_up,
)

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
PATH_TOKEN = "Bench-Path-Token_0123456789abcdef"
SUBSCRIPTION_ID = 120475
ATHLETES = 50


# -- the deployment under test ----------------------------------------------------------------------


def write_config(root: Path, database_url: str, strava_api: str, port: int) -> Path:
    path = root / "trainer.toml"
    path.write_text(
        f"""
data_dir = "{root / "data"}"
database_url = "{database_url}"
port = {port}
secret_key = "{SECRET}"
webhook_path_token = "{PATH_TOKEN}"
log_level = "warning"

[plugins.strava]
client_id = "4242"
client_secret = "fake-strava-client-secret"
verify_token = "fake-strava-verify-token"
subscription_id = {SUBSCRIPTION_ID}
api_base = "{strava_api}/api/v3"
oauth_base = "{strava_api}/oauth"
""",
        encoding="utf-8",
    )
    return path


async def seed_accounts(config: Path, tokens: dict[int, dict]) -> dict[int, str]:
    """A trainer user linked to each Strava athlete; returns athlete -> user id."""
    from trainer.config import load_settings
    from trainer.db import create_database
    from trainer.db.migrate import migrate
    from trainer.plugins import Account, TokenSet
    from trainer.store import accounts, users
    from trainer.store.accounts import TokenCipher

    settings = load_settings(config)
    db = create_database(settings.resolved_database_url, pool_size=2)
    await db.open()
    try:
        await migrate(db)
        cipher, linked = TokenCipher(SECRET), {}
        for athlete, body in tokens.items():
            user = await users.create(db, email=f"athlete{athlete}@bench.example", password_hash="x")
            await users.set_settings(db, user.id, {"hr_max": 190, "hr_rest": 50})
            token_set = TokenSet(body["access_token"], body["refresh_token"], body["expires_at"])
            async with db.transaction() as tx:
                await accounts.save(tx, cipher, Account(user.id, "strava", str(athlete), token_set))
            linked[athlete] = user.id
        return linked
    finally:
        await db.close()


# -- part 1: ingest ---------------------------------------------------------------------------------


async def drive(url: str, bodies: Iterator[bytes], concurrency: int, duration_s: float) -> Result:
    """N keep-alive workers, each with one POST in flight, for `duration_s`."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=next(bodies), headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(url, len(latencies), errors, elapsed, latencies)


async def measured(pid: int, run: Awaitable[Result]) -> Result:
    """`run`'s result with the CPU time the server process `pid` used meanwhile."""
    before = cpu_seconds(pid)
    result = await run
    after = cpu_seconds(pid)
    used = None if before is None or after is None else after - before
    return dataclasses.replace(result, server_cpu_s=used)


def strava_events(athletes: list[int], start_id: int) -> Iterator[bytes]:
    """Distinct create events (each one a new inbox row), round-robin over the athletes."""
    now = int(time.time())
    for n in itertools.count():
        athlete = athletes[n % len(athletes)]
        yield (
            f'{{"aspect_type":"create","event_time":{now},"object_id":{start_id + n},"object_type":"activity",'
            f'"owner_id":{athlete},"subscription_id":{SUBSCRIPTION_ID},"updates":{{}}}}'
        ).encode()


async def count_inbox(config: Path) -> int:
    from trainer.config import load_settings
    from trainer.db import create_database

    db = create_database(load_settings(config).resolved_database_url, pool_size=1)
    await db.open()
    try:
        return int(await db.fetchval("SELECT count(*) FROM inbox"))
    finally:
        await db.close()


async def bench_ingest(args: argparse.Namespace, label: str, database_url: str, root: Path) -> tuple[Result, Result]:
    from tests.fakes.strava import FakeStrava

    fake = await FakeStrava().start()  # only for its tokens here; nothing is fetched while ingesting
    athletes = [fake.add_athlete() for _ in range(ATHLETES)]
    port, bare_port = free_port(), free_port()
    config = write_config(root, database_url, fake.url, port)
    await seed_accounts(config, {a: fake.issue_tokens(a) for a in athletes})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}, "TRAINER_CONFIG": str(config)}
    webhook = f"http://127.0.0.1:{port}/webhooks/{PATH_TOKEN}/strava"
    bare = f"http://127.0.0.1:{bare_port}/ok"
    try:
        with (
            process([sys.executable, __file__, "--bare-server", str(bare_port)], env, root / "bare.log") as bare_proc,
            process(trainer_command("serve", "--no-worker"), env, root / "serve.log") as serve_proc,
        ):
            async with aiohttp.ClientSession() as session:
                await wait_until_up(session, bare, bare_proc, root / "bare.log")
                await wait_until_up(session, f"http://127.0.0.1:{port}/readyz", serve_proc, root / "serve.log")
            bodies = strava_events(athletes, 1)
            await drive(bare, bodies, args.concurrency, 1.0)  # warm-up: connections, caches, code paths
            await drive(webhook, bodies, args.concurrency, 1.0)
            before = await count_inbox(config)
            bare_runs, ingest_runs = [], []
            for _ in range(args.rounds):  # alternated: a machine that slows down for a while slows both
                share = args.duration / args.rounds
                bare_runs.append(await measured(bare_proc.pid, drive(bare, bodies, args.concurrency, share)))
                ingest_runs.append(await measured(serve_proc.pid, drive(webhook, bodies, args.concurrency, share)))
            recorded = await count_inbox(config) - before
    finally:
        await fake.close()
    bare_result, ingest_result = (
        combined(f"bare aiohttp ({label})", bare_runs),
        combined(f"durable ingest ({label})", ingest_runs),
    )
    if recorded != ingest_result.requests - ingest_result.errors:
        raise SystemExit(f"{label}: {ingest_result.requests} webhooks answered but {recorded} inbox rows committed")
    return bare_result, ingest_result


def combined(name: str, runs: list[Result]) -> Result:
    """One result for the rounds of one target: requests, time and CPU summed, latencies pooled."""
    cpu = [r.server_cpu_s for r in runs]
    return Result(
        name,
        sum(r.requests for r in runs),
        sum(r.errors for r in runs),
        sum(r.seconds for r in runs),
        [ms for r in runs for ms in r.latencies_ms],
        None if None in cpu else sum(c for c in cpu if c is not None),
    )


# -- part 2: end to end -----------------------------------------------------------------------------


async def bench_end_to_end(
    args: argparse.Namespace, label: str, database_url: str, root: Path, processes: int
) -> tuple[int, float, float]:
    """(events, seconds from the ring to the last one done, worker start-up seconds)."""
    from tests.fakes.strava import FakeStrava
    from trainer.config import load_settings
    from trainer.db import create_database
    from trainer.ingest import inbox
    from trainer.ingest.queue import IngestQueue
    from trainer.plugins import NewEvent

    fake = await FakeStrava().start()
    fake.usage.limit = fake.usage.read_limit = (10**7, 10**8)  # a bench is not a quota test
    athletes = [fake.add_athlete() for _ in range(ATHLETES + processes)]  # the last ones only warm workers up
    config = write_config(root, database_url, fake.url, free_port())
    linked = await seed_accounts(config, {a: fake.issue_tokens(a) for a in athletes})
    settings = load_settings(config)
    db = create_database(settings.resolved_database_url, pool_size=2)
    await db.open()
    now = datetime.now(UTC)
    queue = IngestQueue(settings)

    async def record(athlete: int, start: datetime, doorbell: Callable[[list[str]], Awaitable[None]]) -> None:
        activity = fake.add_activity(athlete, start=start, samples=args.samples)
        event = NewEvent(
            "activity",
            str(athlete),
            str(activity["id"]),
            int(time.time()),
            f"bench:{activity['id']}",
            {"aspect_type": "create", "updates": {}},
        )
        await inbox.record_events(db, "strava", linked[athlete], [event], doorbell=doorbell)

    async def done() -> int:
        return int(await db.fetchval("SELECT count(*) FROM inbox WHERE state = 'done'"))

    try:
        queued: list[str] = []

        async def hold(ids: list[str]) -> None:  # recorded now, rung all at once when the worker is up
            queued.extend(ids)

        per_athlete = args.events // ATHLETES
        for n in range(per_athlete):  # interleaved across athletes, as webhooks arrive
            for i, athlete in enumerate(athletes[:ATHLETES]):
                start = now - timedelta(days=30) + timedelta(hours=(n * ATHLETES + i) * 30 * 24 / args.events)
                await record(athlete, start, hold)
        total = len(queued)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}, "TRAINER_CONFIG": str(config)}
        command = trainer_command("worker", "--workers", str(args.workers))
        with ExitStack() as stack:
            launched = time.perf_counter()
            procs = [stack.enter_context(process(command, env, root / f"worker{n}.log")) for n in range(processes)]

            async def until(count: int) -> None:
                deadline = time.perf_counter() + args.timeout
                while (finished := await done()) < count:
                    if any(p.poll() is not None for p in procs) or time.perf_counter() > deadline:
                        log = tail(root / "worker0.log")
                        raise SystemExit(f"{label}: {finished} of {count} processed; worker log:\n{log}")
                    await asyncio.sleep(0.02)

            for athlete in athletes[ATHLETES:]:  # one event each: imports, pools and plugins warmed up
                await record(athlete, now, queue.ring)
            await until(processes)
            started = time.perf_counter()
            await queue.ring(queued)
            await until(total + processes)
            finished = time.perf_counter()
        stored = await db.fetchval("SELECT count(*) FROM activity_streams")
        failed = await db.fetchval("SELECT count(*) FROM inbox WHERE state <> 'done'")
        if stored != total + processes or failed:
            raise SystemExit(f"{label}: {stored} activities with streams stored, {failed} events not done")
    finally:
        await db.close()
        await fake.close()
    return total, finished - started, started - launched


# -- the run ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    print(
        f"loopback, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared by load generator, servers, "
        f"database and fake vendor"
    )
    rows: list[tuple[Result, Result]] = []
    e2e: list[tuple[str, int, int, float, float]] = []
    worker_counts = [args.processes] if args.processes else sorted({1, os.cpu_count() or 1})
    with tempfile.TemporaryDirectory(prefix="trainer-bench-ingest-") as tmp:
        root = Path(tmp)
        backends: list[tuple[str, Callable[[str], str]]] = [("SQLite", lambda name: f"sqlite:///{root / name}.db")]
        pg = None
        if not args.sqlite_only:
            import pgserver

            pg = pgserver.get_server(root / "pg", cleanup_mode="stop")

            def pg_database(name: str) -> str:
                pg.psql(f"CREATE DATABASE {name};")
                return pg.get_uri(name)

            backends.append(("PostgreSQL 16", pg_database))
        try:
            for n, (label, database) in enumerate(backends):
                (root / f"ingest-{n}").mkdir()
                rows.append(await bench_ingest(args, label, database(f"ingest_{n}"), root / f"ingest-{n}"))
                for count in worker_counts:
                    where = root / f"e2e-{n}-{count}"
                    where.mkdir()
                    run = await bench_end_to_end(args, label, database(f"e2e_{n}_{count}"), where, count)
                    e2e.append((label, count, *run))
        finally:
            if pg is not None:
                pg.cleanup()

    print(
        f"\n1. durable webhook ingest: {args.concurrency} concurrent keep-alive clients, {args.duration:g} s each, "
        f"alternated in {args.rounds} rounds"
    )
    print(
        f"{'target':<34} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} "
        f"{'server CPU us/req':>18}"
    )
    errors = 0
    for bare, ingest in rows:
        for r in (bare, ingest):
            ratio = f"{r.rate / bare.rate:.2f}" if bare.rate else "-"
            cpu = f"{r.server_cpu_us:.0f}" if r.server_cpu_us is not None else "-"
            print(
                f"{r.name:<34} {r.requests:>9} {r.errors:>7} {r.rate:>8.0f} {r.percentile(50):>8.2f} "
                f"{r.percentile(99):>8.2f} {ratio:>6} {cpu:>18}"
            )
            errors += r.errors
    goal = all(i.rate >= 0.5 * b.rate for b, i in rows)
    print(f"goal: durable ingest >= 0.5x bare -> {'met' if goal else 'NOT met'}")
    print("(server CPU: the server process alone; PostgreSQL's own processes and the load generator not counted)")

    print(
        f"\n2. end to end: {args.events} queued Strava events, `trainer worker --workers {args.workers}` "
        f"processes, fake Strava with {args.samples}-sample streams"
    )
    print(f"{'database':<16} {'workers':>8} {'events':>7} {'seconds':>8} {'events/s':>9} {'worker start-up s':>18}")
    best: dict[str, float] = {}
    for label, count, total, seconds, startup in e2e:
        print(f"{label:<16} {count:>8} {total:>7} {seconds:>8.2f} {total / seconds:>9.0f} {startup:>18.2f}")
        best[label] = max(best.get(label, 0.0), total / seconds)
    goal = all(rate >= 200 for rate in best.values())
    print(f"goal: >= 200 events/s with the best worker count -> {'met' if goal else 'NOT met'}")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per ingest target (default 5)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent webhook senders (default 32)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="bare and trainer alternate this many times within --duration (default 5)"
    )
    parser.add_argument("--events", type=int, default=1000, help="events for the end-to-end run (default 1000)")
    parser.add_argument("--samples", type=int, default=900, help="stream samples per activity (default 900)")
    parser.add_argument("--workers", type=int, default=16, help="events in flight per worker (default 16)")
    parser.add_argument(
        "--processes", type=int, default=0, help="`trainer worker` processes (default: 1, then one per CPU)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on the end-to-end run after this")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()

"""Benchmark recompute_user: three years of one user's daily history through the real database path.

Measured on SQLite (the embedded default), in one run:
- baseline: the pure computation alone (trainer.engine.recompute.compute_rows over arrays already
  in memory: PMC, ACWR, monotony/strain, readiness, EWMA states) - goal < 200 ms;
- a first full recompute (every row inserted), split into read / compute / write / plan time;
- a full recompute that finds nothing changed (compare only, no stamp);
- an incremental recompute after one late activity 10 days ago (the common ingest case);
- ingest-sized: an activities-only user with a month of history (the webhook benchmark's athletes,
  bench/ingest.py), recomputed after each new activity - a full recompute of ~30 days each time.

Run: python bench/recompute.py
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from trainer import clock
from trainer.db import Database, create_database
from trainer.db.migrate import migrate
from trainer.engine.days import day_start_ms, user_zone
from trainer.engine.inputs import read_inputs
from trainer.engine.recompute import RecomputeResult, compute_rows, recompute_user
from trainer.profile import UserSettings
from trainer.store import users

DAYS = 3 * 365 + 1
LAST = dt.date(2024, 6, 30)
FIRST = LAST - dt.timedelta(days=DAYS - 1)
SETTINGS = UserSettings(timezone="Europe/Berlin", hr_max=190, hr_rest=50)
NOON = dt.datetime.combine(LAST, dt.time(12), tzinfo=dt.UTC).timestamp()


async def seed_user(db: Database, rng: np.random.Generator) -> str:
    """~5 sessions a week and a morning reading every day for three years (bulk insert: setup only)."""
    user = await users.create(db, email=f"{uuid.uuid4().hex[:8]}@bench.example", password_hash="x")
    await users.set_settings(db, user.id, SETTINGS.model_dump(mode="json"))
    zone = user_zone(SETTINGS)
    activities, metrics = [], []
    for i in range(DAYS):
        day = FIRST + dt.timedelta(days=i)
        if rng.random() < 5 / 7:
            start = day_start_ms(day, zone) + int(rng.uniform(6, 20) * 3_600_000)
            load = float(rng.gamma(4.0, 20.0))
            activities.append((str(uuid.uuid4()), user.id, start, 3600.0, load))
        metrics.append(
            (
                str(uuid.uuid4()),
                user.id,
                day.isoformat(),
                float(rng.normal(50, 2)),
                float(np.exp(rng.normal(4.1, 0.12))),
                float(rng.normal(7.3, 0.6) * 3600),
                int(rng.integers(1, 8)),
            )
        )
    async with db.transaction() as tx:
        await tx.executemany(
            """INSERT INTO activities (id, user_id, start_time, duration_s, training_load, created_stamp, updated_stamp)
               VALUES ($1, $2, $3, $4, $5, 1, 1)""",
            activities,
        )
        await tx.executemany(
            """INSERT INTO daily_metrics (id, user_id, day, resting_hr, hrv_rmssd_ms, sleep_s, soreness,
                                          created_stamp, updated_stamp) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 1)""",
            metrics,
        )
    return user.id


async def month_of_activities(db: Database, rng: np.random.Generator) -> tuple[str, list[float]]:
    """A month of history arriving one activity at a time, a recompute after each (seconds each)."""
    user = await users.create(db, email=f"{uuid.uuid4().hex[:8]}@bench.example", password_hash="x")
    await users.set_settings(db, user.id, SETTINGS.model_dump(mode="json"))
    zone = user_zone(SETTINGS)
    seconds = []
    for i in range(30):
        day = LAST - dt.timedelta(days=29 - i)
        async with db.transaction() as tx:
            await tx.execute(
                """INSERT INTO activities (id, user_id, start_time, duration_s, training_load,
                       created_stamp, updated_stamp) VALUES ($1, $2, $3, 3600, $4, 1, 1)""",
                str(uuid.uuid4()),
                user.id,
                day_start_ms(day, zone) + 8 * 3_600_000,
                float(rng.gamma(4.0, 20.0)),
            )
        t0 = time.perf_counter()
        await recompute_user(db, user.id, day)
        seconds.append(time.perf_counter() - t0)
    return user.id, seconds


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def split(results: list[RecomputeResult]) -> dict[str, float]:
    keys = ("read", "compute", "write", "plan")
    return {k: statistics.median(r.timings.get(k, 0.0) for r in results) for k in keys}


async def timed(db: Database, user: str, from_day: dt.date | None) -> tuple[float, RecomputeResult]:
    t0 = time.perf_counter()
    result = await recompute_user(db, user, from_day)
    return time.perf_counter() - t0, result


async def main() -> int:
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await db.open()
        try:
            await migrate(db)
            users_ = [await seed_user(db, rng) for _ in range(5)]
            with clock.frozen(NOON):
                inputs = await read_inputs(db, users_[0], user_zone(SETTINGS), FIRST, LAST)
                pure = []
                for _ in range(7):
                    t0 = time.perf_counter()
                    rows = compute_rows(inputs, pmc_seed=None, acwr_seed="zero", settings=SETTINGS)
                    pure.append(time.perf_counter() - t0)
                assert len(rows) == DAYS

                first = [await timed(db, u, None) for u in users_]  # every row new
                unchanged = [await timed(db, users_[0], None) for _ in range(5)]  # compare only
                late = []
                for u in users_:
                    day = LAST - dt.timedelta(days=10)
                    async with db.transaction() as tx:
                        await tx.execute(
                            """INSERT INTO activities (id, user_id, start_time, duration_s, training_load,
                                   created_stamp, updated_stamp) VALUES ($1, $2, $3, 1800, 40, 1, 1)""",
                            str(uuid.uuid4()),
                            u,
                            day_start_ms(day, user_zone(SETTINGS)) + 7 * 3_600_000,
                        )
                    late.append(await timed(db, u, day))
                month = [t for _ in range(10) for t in (await month_of_activities(db, rng))[1]]
        finally:
            await db.close()

    total = lambda runs: statistics.median(t for t, _ in runs)  # noqa: E731
    f, s, u, i = (
        split([r for _, r in first]),
        first[0][1],
        split([r for _, r in unchanged]),
        split([r for _, r in late]),
    )
    print(f"history: {DAYS:,} days, ~{5 / 7 * DAYS:,.0f} activities, a reading every day (SQLite, median of runs)")
    print(f"  baseline: pure computation alone (compute_rows)    {ms(statistics.median(pure))}   goal < 200 ms")
    print(f"  full recompute, every row new ({s.changed:,} rows)      {ms(total(first))}")
    print(f"    read {ms(f['read'])}  compute {ms(f['compute'])}  DB write {ms(f['write'])}  plan {ms(f['plan'])}")
    print(f"  full recompute, nothing changed (no writes)        {ms(total(unchanged))}")
    print(f"    read {ms(u['read'])}  compute {ms(u['compute'])}  compare {ms(u['write'])}")
    changed = late[0][1].changed
    print(f"  incremental after a late activity ({changed} rows)    {ms(total(late))}")
    print(f"    read {ms(i['read'])}  compute {ms(i['compute'])}  DB write {ms(i['write'])}")
    print(f"  ingest-sized: a month of activities only, per event {ms(statistics.median(month))}   (median of 300)")
    print(f"  full recompute vs pure computation                 {total(first) / statistics.median(pure):8.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

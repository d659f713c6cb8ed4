"""Failure counters for login throttling, in the database so every process sees the same counts."""

from __future__ import annotations

from dataclasses import dataclass

from trainer.db import Queries


@dataclass(frozen=True)
class Counter:
    failures: int
    window_start: int
    locked_until: int


async def get(db: Queries, key: str) -> Counter | None:
    row = await db.fetchrow("SELECT failures, window_start, locked_until FROM login_throttle WHERE key = $1", key)
    return None if row is None else Counter(row["failures"], row["window_start"], row["locked_until"])


async def put(db: Queries, key: str, counter: Counter) -> None:
    await db.execute(
        """INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
               window_start = excluded.window_start, locked_until = excluded.locked_until""",
        key,
        counter.failures,
        counter.window_start,
        counter.locked_until,
    )


async def clear(db: Queries, key: str) -> None:
    await db.execute("DELETE FROM login_throttle WHERE key = $1", key)

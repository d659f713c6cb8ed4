"""The daily_state table: read the seed of an incremental recompute, write only what changed.

daily_state is derived data synced read-only to the app. A recompute compares each computed row
with the stored one and writes (with a new change stamp) only rows whose values changed, so a
late activity from last week costs the app a handful of rows on its next pull, not years.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from trainer.analysis.pmc import RAMP_DAYS, PmcState
from trainer.db import Queries, Row, Transaction
from trainer.store.stamps import record_deletion

__all__ = [
    "COLUMNS",
    "TABLE",
    "Seed",
    "StateRow",
    "changed_rows",
    "delete_rows",
    "ids_outside",
    "read_for_compare",
    "read_incremental",
    "read_rows",
    "read_seed",
    "row_id",
    "write_changed",
]

TABLE = "daily_state"
# Value columns in storage order; everything the app reads besides id and day.
COLUMNS = (
    "load",
    "ctl",
    "atl",
    "tsb",
    "ramp",
    "acwr",
    "acwr_acute",
    "acwr_chronic",
    "monotony",
    "strain",
    "readiness_score",
    "readiness_band",
    "readiness_confidence",
    "readiness_reasons",
)
StateRow = dict[str, Any]  # "day" (ISO text) plus COLUMNS
_NAMESPACE = uuid.UUID("5f0f4a8e-2d55-4d0e-9a57-6b0c1c3f5d21")
# Two computations of the same day may differ in the last bits (numpy may sum a window in another
# order); such a difference is not a change and must not cost a sync stamp.
_REL_TOL = 1e-12
_ABS_TOL = 1e-9


def row_id(user_id: str, day: dt.date | str) -> str:
    """Deterministic id: rebuilding a day yields the same row on every device, never a duplicate."""
    return _row_id(f"{user_id}:{day}")


@lru_cache(maxsize=1 << 16)
def _row_id(name: str) -> str:
    # Cached: each ingest event rewrites the same user's latest days (uuid5 hashes with SHA-1 and
    # builds a UUID object, several microseconds a row); 65,536 entries are a few MB.
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class Seed:
    """Stored state at the end of the day before a recompute window: enough to resume exactly."""

    pmc: PmcState
    acwr: tuple[float, float]  # (acute, chronic) EWMA


async def read_seed(db: Queries, user_id: str, window_start: dt.date) -> Seed | None:
    """The state after `window_start - 1`, or None when any of the last RAMP_DAYS rows is missing
    (the ramp rate needs the CTL of each of them; the caller then recomputes in full)."""
    first = window_start - dt.timedelta(days=RAMP_DAYS)
    last = window_start - dt.timedelta(days=1)
    rows = await db.fetch(
        f"SELECT day, ctl, atl, acwr_acute, acwr_chronic FROM {TABLE} WHERE user_id = $1 AND day >= $2 AND day <= $3"
        " ORDER BY day",
        user_id,
        first.isoformat(),
        last.isoformat(),
    )
    return _seed(rows, last)


def _seed(rows: Sequence[Row], last: dt.date) -> Seed | None:
    """The seed from the rows of the RAMP_DAYS days up to `last`, in day order (None: a gap)."""
    if len(rows) != RAMP_DAYS or str(rows[-1]["day"]) != last.isoformat():
        return None
    end = rows[-1]
    history = tuple(float(r["ctl"]) for r in rows)
    return Seed(
        PmcState(float(end["ctl"]), float(end["atl"]), history),
        (float(end["acwr_acute"]), float(end["acwr_chronic"])),
    )


async def read_incremental(
    db: Queries, user_id: str, window_start: dt.date, first: dt.date, end: dt.date
) -> tuple[Seed | None, dict[str, StateRow], list[str]]:
    """`read_seed(window_start)` and `read_for_compare(first, end, stale_before=None)` in one
    statement (two index ranges, UNION ALL): an incremental recompute reads its seed and the rows
    it compares in one trip to the database."""
    seed_first = window_start - dt.timedelta(days=RAMP_DAYS)
    seed_last = window_start - dt.timedelta(days=1)
    lo = min(first, end + dt.timedelta(days=1))
    if lo <= seed_last:  # overlapping ranges (today long before `first`): read them apart
        return (
            await read_seed(db, user_id, window_start),
            *await read_for_compare(db, user_id, first, end, stale_before=None),
        )
    select = f"SELECT id, day, {', '.join(COLUMNS)} FROM {TABLE} WHERE user_id = $1"
    rows = await db.fetch(
        f"{select} AND day >= $2 AND day <= $3 UNION ALL {select} AND day >= $4 ORDER BY day",
        user_id,
        seed_first.isoformat(),
        seed_last.isoformat(),
        lo.isoformat(),
    )
    last_day = seed_last.isoformat()
    split = next((i for i, r in enumerate(rows) if str(r["day"]) > last_day), len(rows))
    return (_seed(rows[:split], seed_last), *_compare_and_stale(rows[split:], first, end, None))


async def read_rows(db: Queries, user_id: str, start: dt.date, end: dt.date) -> dict[str, StateRow]:
    """Stored rows for start..end keyed by ISO day."""
    rows = await db.fetch(
        f"SELECT day, {', '.join(COLUMNS)} FROM {TABLE} WHERE user_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        user_id,
        start.isoformat(),
        end.isoformat(),
    )
    return {str(r["day"]): {**r, "day": str(r["day"])} for r in rows}


async def read_for_compare(
    db: Queries, user_id: str, first: dt.date, end: dt.date, *, stale_before: dt.date | None
) -> tuple[dict[str, StateRow], list[str]]:
    """(stored rows for first..end keyed by ISO day, ids of rows before `stale_before` or after
    `end`) in one statement: `read_rows` and `ids_outside` for the price of one trip to the
    database. `stale_before` None keeps every row before `first` (an incremental recompute)."""
    names = ", ".join(COLUMNS)
    if stale_before is None:
        lo = min(first, end + dt.timedelta(days=1))  # from `first`, and every row after `end`
        sql = f"SELECT id, day, {names} FROM {TABLE} WHERE user_id = $1 AND day >= $2 ORDER BY day"
        rows = await db.fetch(sql, user_id, lo.isoformat())
    else:
        rows = await db.fetch(f"SELECT id, day, {names} FROM {TABLE} WHERE user_id = $1 ORDER BY day", user_id)
    return _compare_and_stale(rows, first, end, stale_before)


def _compare_and_stale(
    rows: Sequence[Row], first: dt.date, end: dt.date, stale_before: dt.date | None
) -> tuple[dict[str, StateRow], list[str]]:
    lo_day = stale_before.isoformat() if stale_before is not None else ""
    first_day, end_day = first.isoformat(), end.isoformat()
    stored: dict[str, StateRow] = {}
    stale: list[str] = []
    for r in rows:
        rid, day = str(r.pop("id")), str(r.pop("day"))
        if day < lo_day or day > end_day:
            stale.append(rid)
        elif day >= first_day:
            stored[day] = {"day": day, **r}
    return stored, stale


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a == b


_values = itemgetter(*COLUMNS)


def changed_rows(computed: Sequence[StateRow], stored: dict[str, StateRow]) -> list[StateRow]:
    """The computed rows that are new or differ from the stored ones in any value.

    Most rows of a recompute come out exactly as stored (the same arithmetic on the same inputs),
    so one tuple comparison in C settles them; only rows that differ at all are compared column
    by column with `_same`. Equal tuples are always `_same`: the computed values are never NaN
    (undefined values are None), and for every other value `==` implies `_same`.
    """
    out = []
    for row in computed:
        old = stored.get(row["day"])
        if old is None or (_values(row) != _values(old) and not all(_same(row[c], old[c]) for c in COLUMNS)):
            out.append(row)
    return out


async def write_changed(tx: Transaction, user_id: str, rows: Sequence[StateRow], stamp: int) -> None:
    """Upsert rows under one change stamp; created_stamp is kept for existing rows (pull sends them
    as `updated`), and changed_by_device is cleared: every device must receive server values."""
    if not rows:
        return
    names = ", ".join(COLUMNS)
    params = ", ".join(f"${i}" for i in range(4, 4 + len(COLUMNS)))
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
    stamp_param = f"${4 + len(COLUMNS)}"
    sql = f"""INSERT INTO {TABLE} (id, user_id, day, {names}, created_stamp, updated_stamp, changed_by_device)
              VALUES ($1, $2, $3, {params}, {stamp_param}, {stamp_param}, NULL)
              ON CONFLICT (user_id, day) DO UPDATE SET {updates},
                  updated_stamp = excluded.updated_stamp, changed_by_device = NULL"""
    await tx.executemany(
        sql,
        [(row_id(user_id, r["day"]), user_id, r["day"], *(r[c] for c in COLUMNS), stamp) for r in rows],
    )


async def ids_outside(db: Queries, user_id: str, first: dt.date | None, last: dt.date | None) -> list[str]:
    """Ids of rows before `first` or after `last` (None: no bound on that side; both None: every row)."""
    sql = f"SELECT id FROM {TABLE} WHERE user_id = $1"
    if first is None and last is None:
        rows = await db.fetch(sql, user_id)
    else:
        lo = (first or dt.date.min).isoformat()
        hi = (last or dt.date.max).isoformat()
        rows = await db.fetch(sql + " AND (day < $2 OR day > $3)", user_id, lo, hi)
    return [str(r["id"]) for r in rows]


async def delete_rows(tx: Transaction, user_id: str, ids: Sequence[str], stamp: int) -> None:
    """Delete rows whose day no longer has history (data removed), leaving tombstones for devices."""
    for rid in ids:
        await tx.execute(f"DELETE FROM {TABLE} WHERE id = $1 AND user_id = $2", rid, user_id)
        await record_deletion(tx, user_id, TABLE, rid, stamp)

"""recompute_user: bring a user's daily_state up to date after new, late or removed data.

Incremental from the earliest changed day. Everything before `from_day` is unchanged by
definition, so its stored state is valid: the computation resumes from the stored state at the
start of a look-back window (the readiness baseline needs the 60 days before each day) and writes
only days from `from_day` on. The EWMAs resume bit-exactly from full-precision stored values, and
the rolling windows see the same inputs, so an incremental recompute equals a full one
(tests/engine/test_recompute_properties.py).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace

from trainer.analysis.acwr import EwmaSeed
from trainer.analysis.daily import daily_series
from trainer.analysis.pmc import RAMP_DAYS, PmcState
from trainer.db import Database, Transaction
from trainer.engine import state_store
from trainer.engine.days import today, user_zone
from trainer.engine.inputs import LOOKBACK_DAYS, DailyInputs, history, read_inputs
from trainer.engine.physiology import analysis_settings_for, readiness_settings_for
from trainer.profile import UserSettings
from trainer.store import users
from trainer.store.stamps import next_stamp

__all__ = ["LOOKBACK_DAYS", "RecomputeResult", "bring_up_to_date", "compute_rows", "recompute_in", "recompute_user"]


@dataclass(frozen=True)
class RecomputeResult:
    """What one recompute did; timings split so the benchmark can report compute vs DB time."""

    user_id: str
    first_day: dt.date | None  # first day compared against the stored rows (None: nothing computed)
    last_day: dt.date | None  # the user's today (days up to here have a row)
    days: int  # days compared
    changed: int  # rows inserted or updated (each got the new stamp)
    deleted: int  # rows removed because their day no longer has history
    full: bool  # computed from the first day of history
    stamp: int | None  # the change stamp of the writes, None when nothing changed
    plan_changes: int = 0  # scheduled workouts / plans changed by the adaptation step
    timings: dict[str, float] = field(default_factory=dict)  # seconds: read, compute, write, plan
    # The user's settings as read under the recompute's lock, for callers in the same transaction
    # (the ingest pipeline's notification hook) that would otherwise read them again.
    settings: UserSettings | None = field(default=None, compare=False, repr=False)


def compute_rows(
    inputs: DailyInputs,
    *,
    pmc_seed: PmcState | None,
    acwr_seed: EwmaSeed,
    settings: UserSettings,
    first: int = 0,
) -> list[state_store.StateRow]:
    """daily_state rows for the days of `inputs` from index `first` on (pure: the same function
    serves tests and bench). Earlier days only feed the EWMAs and rolling windows, so an
    incremental recompute pays no per-day work for its look-back window."""
    s = daily_series(
        inputs.start,
        inputs.loads,
        rmssd_ms=inputs.rmssd_ms,
        rhr_bpm=inputs.rhr_bpm,
        sleep_h=inputs.sleep_h,
        soreness=inputs.soreness,
        stress=inputs.stress,
        pmc_seed=pmc_seed,
        acwr_seed=acwr_seed,
        settings=analysis_settings_for(settings),
        readiness_settings=readiness_settings_for(settings),
        first=first,
    )
    start = s.start.toordinal()
    days = [dt.date.fromordinal(start + i).isoformat() for i in range(len(s.readiness))]
    # One dict per day straight from the columns, keys in the order of _KEYS ("day", then COLUMNS).
    return [
        dict(zip(_KEYS, values, strict=True))
        for values in zip(
            days,
            s.load,
            s.ctl,
            s.atl,
            s.tsb,
            s.ramp,
            s.acwr_ewma,
            s.acwr_acute,
            s.acwr_chronic,
            s.monotony,
            s.strain,
            [r.score for r in s.readiness],
            [r.band for r in s.readiness],
            [r.confidence for r in s.readiness],
            [list(r.reasons) for r in s.readiness],
            strict=True,
        )
    ]


# The row's keys in the order compute_rows zips its columns: the day, then the stored columns.
_KEYS = ("day", *state_store.COLUMNS)


def first_affected_day(activity_day: dt.date) -> dt.date:
    """The day to recompute from after a change on `activity_day`, a day taken in the activity's
    own UTC offset: the daily state buckets activities in the user's time zone, where the same
    moment can fall on the day before. One day earlier covers it (later days are recomputed anyway)."""
    return activity_day - dt.timedelta(days=1)


async def recompute_user(db: Database, user_id: str, from_day: dt.date | None = None) -> RecomputeResult:
    """Recompute the user's daily state from `from_day` (None: from the first day of history) up to
    the user's today, then re-apply the plan adaptation rules.

    Call it after committing new or changed data, with the earliest local calendar day the data
    touches (an activity's local start day, a daily_metrics day). Idempotent, and serialized per
    user: concurrent calls for one user run one after the other, each seeing the other's result.
    Raises trainer.errors.NotFound for an unknown user.
    """
    async with db.transaction() as tx:
        return await recompute_in(tx, user_id, from_day)


async def recompute_in(tx: Transaction, user_id: str, from_day: dt.date | None = None) -> RecomputeResult:
    """`recompute_user` inside the caller's transaction, so what the caller writes with `tx` (the
    ingest pipeline closes its inbox row) commits together with the new state, or neither does."""
    from trainer.engine.adaptation import adapt_after_recompute  # the plan layer builds on this module

    timings: dict[str, float] = {}
    await tx.lock("recompute:" + user_id)
    settings = UserSettings.model_validate((await users.get(tx, user_id)).settings)
    result = await _recompute_state(tx, user_id, settings, from_day, timings)
    t0 = time.perf_counter()
    plan_changes = await adapt_after_recompute(tx, user_id, settings, from_day=result.first_day)
    timings["plan"] = time.perf_counter() - t0
    return replace(result, plan_changes=plan_changes, timings=timings, settings=settings)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where a recompute runs and what it compares against, as read in one or two statements."""

    window: dt.date  # first day to compute
    first: dt.date  # first day to compare and write
    seed: state_store.Seed | None  # None: full recompute from the first day of history
    stored: dict[str, state_store.StateRow]  # stored rows from `first` to today
    stale: list[str]  # ids of rows whose day has no history any more


async def _window(tx: Transaction, user_id: str, start: dt.date, from_day: dt.date | None, end: dt.date) -> _Plan:
    """Incremental when the look-back window fits after the first day of history and its seed rows
    are stored (seed and stored rows come from one statement), else full from `start`."""
    if from_day is not None and from_day >= start + dt.timedelta(days=LOOKBACK_DAYS + RAMP_DAYS):
        window = from_day - dt.timedelta(days=LOOKBACK_DAYS)
        seed, stored, stale = await state_store.read_incremental(tx, user_id, window, from_day, end)
        if seed is not None:
            return _Plan(window, from_day, seed, stored, stale)
    # Rows whose day lost its history: before the first day (data removed) or after today.
    stored, stale = await state_store.read_for_compare(tx, user_id, start, end, stale_before=start)
    return _Plan(start, start, None, stored, stale)


async def _recompute_state(
    tx: Transaction, user_id: str, settings: UserSettings, from_day: dt.date | None, timings: dict[str, float]
) -> RecomputeResult:
    t0 = time.perf_counter()
    zone = user_zone(settings)
    end = today(zone)
    known = await history(tx, user_id, zone)
    start = known.start
    rows: list[state_store.StateRow] = []
    stored: dict[str, state_store.StateRow] = {}
    first: dt.date | None = None
    full = True
    compute_s = 0.0
    if start is None:  # no data (left): no rows at all
        stale = await state_store.ids_outside(tx, user_id, None, None)
    else:
        plan = await _window(tx, user_id, start, from_day, end)
        full, stored, stale = plan.seed is None, plan.stored, plan.stale
        first = plan.first
        if first > end:
            first = None
        else:
            inputs = await read_inputs(tx, user_id, zone, plan.window, end, known=known)
            t1 = time.perf_counter()
            rows = compute_rows(
                inputs,
                pmc_seed=plan.seed.pmc if plan.seed else None,
                acwr_seed=plan.seed.acwr if plan.seed else "zero",
                settings=settings,
                first=(first - plan.window).days,
            )
            compute_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    timings["read"] = t2 - t0 - compute_s
    timings["compute"] = compute_s
    changed = state_store.changed_rows(rows, stored)
    stamp = None
    if changed or stale:
        stamp = await next_stamp(tx, user_id)
        await state_store.write_changed(tx, user_id, changed, stamp)
        await state_store.delete_rows(tx, user_id, stale, stamp)
    timings["write"] = time.perf_counter() - t2
    return RecomputeResult(
        user_id=user_id,
        first_day=first,
        last_day=end if first is not None else None,
        days=len(rows),
        changed=len(changed),
        deleted=len(stale),
        full=full,
        stamp=stamp,
    )


async def bring_up_to_date(db: Database, user_id: str) -> RecomputeResult | None:
    """Extend daily_state to the user's today if it ends earlier (days pass without new data: CTL
    decays, readiness moves on, yesterday's session may now be missed). Cheap when current: one read.

    The dashboard calls this before reading, so the first look of the day also runs the plan rules.
    """
    settings = UserSettings.model_validate((await users.get(db, user_id)).settings)
    local_today = today(user_zone(settings))
    last = await db.fetchval("SELECT MAX(day) FROM daily_state WHERE user_id = $1", user_id)
    if last is not None and str(last) >= local_today.isoformat():
        return None
    from_day = dt.date.fromisoformat(str(last)) + dt.timedelta(days=1) if last is not None else None
    return await recompute_user(db, user_id, from_day)

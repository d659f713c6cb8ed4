"""After every recompute: keep the active plan's calendar true to what happened and how the athlete is.

In order, all through stamped server writes so every change syncs to the app:
1. completion: a planned session with an activity on the same local day becomes 'completed'
   (completed_activity_id = that day's activity with the highest load not matched yet);
2. missed: a past session still 'planned'/'adapted' becomes 'missed'; key sessions missed earlier
   this week are moved to a free easy/rest day later this week (analysis.plan.reschedule_missed);
3. today: the adaptation rules (analysis.plan.adapt_workout) run on today's session *as planned*
   (the `planned` JSON), so a better reading later in the day restores it; the change is recorded
   as kind + original_kind + adaptation_reason, status 'adapted';
4. the plan's current_phase follows the calendar; after race day the plan is 'completed'.
Only today is adapted: readiness is a morning reading, and tomorrow's session is judged tomorrow.
Sessions completed, missed or skipped (by the athlete, in the app) are never changed again, and a
session the athlete edited in the app is theirs: the rules neither adapt nor restore it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from typing import Any

from trainer.analysis.daily import acwr_norm
from trainer.analysis.plan import Adjustment, DayState, ScheduledWorkout, adapt_workout, reschedule_missed
from trainer.analysis.readiness import Readiness, assess_readiness
from trainer.db import Row, Transaction
from trainer.engine.days import ONE_DAY, day_start_ms, local_day, today, user_zone
from trainer.engine.inputs import LOOKBACK_DAYS, read_inputs
from trainer.engine.physiology import READINESS_SETTINGS
from trainer.engine.plans import StoredPlan, active_plan, planned_of, title_for
from trainer.profile import UserSettings
from trainer.store.stamps import next_stamp
from trainer.sync.writes import upsert_server_row

__all__ = ["adapt_after_recompute", "day_state", "edited_by_athlete"]

OPEN = ("planned", "adapted")  # statuses the server may still change
_REASON_MAX = 1000  # scheduled_workouts.adaptation_reason limit (trainer/sync/tables.py)
_NORM_DAYS = 90


class _Writer:
    """Stamped patches of scheduled_workouts / training_plans rows; one stamp, taken on first change."""

    def __init__(self, tx: Transaction, user_id: str) -> None:
        self.tx, self.user_id = tx, user_id
        self.stamp: int | None = None
        self.count = 0

    async def patch(self, table: str, row: Row, values: dict[str, Any]) -> None:
        diff = {k: v for k, v in values.items() if not _same(row.get(k), v)}
        if not diff:
            return
        if self.stamp is None:
            self.stamp = await next_stamp(self.tx, self.user_id)
        await upsert_server_row(self.tx, self.user_id, table, {"id": row["id"], **diff}, stamp=self.stamp)
        row.update(diff, changed_by_device=None)
        self.count += 1


def edited_by_athlete(row: Row) -> bool:
    """The last change came from a device (sync marks it; any server write clears the mark), or a
    'planned' session no longer matches what was planned (an edit pushed without a device id)."""
    if row.get("changed_by_device"):
        return True
    if row["status"] != "planned" or not row.get("planned"):
        return False
    planned = planned_of(row)
    return any(not _same(row[k], planned[k]) for k in ("kind", "target_load", "target_duration_min"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


async def adapt_after_recompute(
    tx: Transaction, user_id: str, settings: UserSettings, *, from_day: dt.date | None
) -> int:
    """Apply completion, missed-session and readiness rules to the active plan; returns rows changed.

    Runs inside the recompute transaction (after daily_state is written) and when a plan is created.
    """
    plan = await active_plan(tx, user_id)
    if plan is None:
        return 0
    zone = user_zone(settings)
    local_today = today(zone)
    writer = _Writer(tx, user_id)
    rows = {str(w["day"]): dict(w) for w in plan.workouts}
    plan = StoredPlan(plan.row, list(rows.values()))  # the same dicts: patches keep it current
    first = max(plan.start, from_day) if from_day is not None else plan.start
    await _match_completions(tx, writer, user_id, zone, rows, first, min(local_today, plan.race_date))
    missed = await _mark_missed(writer, rows, plan.start, local_today)
    if missed:
        await _reschedule(writer, plan, rows, missed, local_today)
    row = rows.get(local_today.isoformat())
    if row is not None and row["status"] in OPEN and not edited_by_athlete(row):
        state = await day_state(tx, user_id, settings, local_today)
        await _adapt_today(writer, plan, row, state, local_today)
    await _update_plan(writer, plan, local_today)
    return writer.count


async def _match_completions(
    tx: Transaction,
    writer: _Writer,
    user_id: str,
    zone: Any,
    rows: dict[str, Row],
    first: dt.date,
    last: dt.date,
) -> None:
    if first > last:
        return
    activities = await tx.fetch(
        """SELECT id, start_time, training_load, duration_s FROM activities
           WHERE user_id = $1 AND start_time >= $2 AND start_time < $3""",
        user_id,
        day_start_ms(first, zone),
        day_start_ms(last + ONE_DAY, zone),
    )
    taken = {r["completed_activity_id"] for r in rows.values() if r["completed_activity_id"]}
    by_day: dict[str, list[Row]] = {}
    for a in activities:
        if a["id"] not in taken:
            by_day.setdefault(local_day(int(a["start_time"]), zone).isoformat(), []).append(a)
    for day, candidates in sorted(by_day.items()):
        row = rows.get(day)
        if row is None or row["kind"] == "rest" or row["status"] not in (*OPEN, "missed"):
            continue
        best = max(candidates, key=lambda a: (float(a["training_load"] or 0.0), float(a["duration_s"] or 0.0)))
        await writer.patch("scheduled_workouts", row, {"status": "completed", "completed_activity_id": str(best["id"])})


async def _mark_missed(writer: _Writer, rows: dict[str, Row], start: dt.date, local_today: dt.date) -> list[dt.date]:
    """Past open sessions (not rest) are missed; returns their days."""
    missed = []
    for day, row in sorted(rows.items()):
        d = dt.date.fromisoformat(day)
        if start <= d < local_today and row["status"] in OPEN and row["kind"] != "rest":
            await writer.patch("scheduled_workouts", row, {"status": "missed"})
            missed.append(d)
    return missed


async def _reschedule(
    writer: _Writer, plan: StoredPlan, rows: dict[str, Row], missed: list[dt.date], local_today: dt.date
) -> None:
    """Move this week's missed key sessions (the rules are analysis.plan.reschedule_missed)."""
    calendar = plan.as_calendar()
    # as_calendar shows missed days as rest; the ones just missed are what reschedule_missed moves.
    workouts = list(calendar.workouts)
    for d in missed:
        i = (d - calendar.start).days
        row = rows[d.isoformat()]
        workouts[i] = ScheduledWorkout(
            d,
            row["kind"],
            float(row["target_load"] or 0.0),
            float(row["target_duration_min"] or 0.0),
            row["description"],
            workouts[i].phase,
        )
    calendar = replace(calendar, workouts=tuple(workouts))
    for adj in reschedule_missed(calendar, missed, local_today):
        row = rows[adj.date.isoformat()]
        if adj.date < local_today:
            await writer.patch("scheduled_workouts", row, {"adaptation_reason": _reason(adj)})
            continue
        await _receive(writer, plan, row, adj)


async def _receive(writer: _Writer, plan: StoredPlan, row: Row, adj: Adjustment) -> None:
    """The day a missed session moves to: that session becomes what is planned there."""
    before = planned_of(row)
    moved = adj.after
    planned = {
        "kind": moved.kind,
        "title": title_for(moved.kind, plan.sport_name, plan.goal),
        "description": moved.description,
        "target_load": round(moved.target_load, 1),
        "target_duration_min": moved.target_duration_min,
        "original_kind": before.get("original_kind") or before["kind"],
        "reason": _reason(adj),
    }
    await writer.patch(
        "scheduled_workouts",
        row,
        {**_session(planned), "status": "adapted", "planned": json.dumps(planned, separators=(",", ":"))},
    )


def _session(s: dict[str, Any]) -> dict[str, Any]:
    """Row values of a planned-session dict, adaptation bookkeeping included."""
    return {
        "kind": s["kind"],
        "title": s["title"],
        "description": s["description"],
        "target_load": s["target_load"],
        "target_duration_min": s["target_duration_min"],
        "original_kind": s.get("original_kind"),
        "adaptation_reason": s.get("reason"),
    }


def _reason(adj: Adjustment) -> str:
    text = adj.reason
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


async def _adapt_today(writer: _Writer, plan: StoredPlan, row: Row, state: DayState, local_today: dt.date) -> None:
    base = planned_of(row)
    workout = ScheduledWorkout(
        local_today,
        base["kind"],
        float(base["target_load"] or 0.0),
        float(base["target_duration_min"] or 0.0),
        base["description"],
        plan.phase_on(local_today) or "base",  # type: ignore[arg-type]
    )
    adj = adapt_workout(workout, state, sport=plan.sport_name)
    if adj is None:
        values = {**_session(base), "status": "adapted" if base.get("reason") else "planned"}
    else:
        after = adj.after
        values = {
            "kind": after.kind,
            "title": title_for(after.kind, plan.sport_name, plan.goal),
            "description": after.description,
            "target_load": round(after.target_load, 1),
            "target_duration_min": after.target_duration_min,
            "original_kind": base["kind"],
            "adaptation_reason": _reason(adj),
            "status": "adapted",
        }
    await writer.patch("scheduled_workouts", row, values)


async def _update_plan(writer: _Writer, plan: StoredPlan, local_today: dt.date) -> None:
    values: dict[str, Any] = {"current_phase": plan.phase_on(local_today)}
    if local_today > plan.race_date:
        values["status"] = "completed"
    await writer.patch("training_plans", plan.row, values)


async def day_state(tx: Transaction, user_id: str, settings: UserSettings, day: dt.date) -> DayState:
    """What the rules know on `day`: that morning's readiness, form (TSB, already the state before
    the day's session) and yesterday's ACWR / monotony against the athlete's usual ACWR, so a
    session done earlier today does not change the verdict on it."""
    zone = user_zone(settings)
    inputs = await read_inputs(tx, user_id, zone, day - dt.timedelta(days=LOOKBACK_DAYS), day)
    readiness: Readiness = assess_readiness(
        inputs.rmssd_ms,
        inputs.rhr_bpm,
        sleep_h=float(inputs.sleep_h[-1]),
        soreness=float(inputs.soreness[-1]),
        stress=float(inputs.stress[-1]),
        settings=READINESS_SETTINGS,
    )
    states = await tx.fetch(
        "SELECT day, tsb, acwr, monotony FROM daily_state WHERE user_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        user_id,
        (day - dt.timedelta(days=_NORM_DAYS)).isoformat(),
        day.isoformat(),
    )
    by_day = {str(s["day"]): s for s in states}
    now, before = by_day.get(day.isoformat()), by_day.get((day - ONE_DAY).isoformat())
    history = [s["acwr"] for s in states if str(s["day"]) < day.isoformat()]
    return DayState.from_readiness(
        readiness,
        tsb=None if now is None else float(now["tsb"]),
        acwr=None if before is None or before["acwr"] is None else float(before["acwr"]),
        acwr_norm=acwr_norm([math.nan if a is None else float(a) for a in history], window=_NORM_DAYS),
        monotony=None if before is None or before["monotony"] is None else float(before["monotony"]),
    )

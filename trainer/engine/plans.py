"""Training plans in the database: generate one toward a goal race, read it back.

The app asks for a plan with the tRPC mutation `plans.generate`; the server generates it with
trainer.analysis.plan and writes one training_plans row plus one scheduled_workouts row per day
(rest days included, so the calendar is complete). Those rows reach the app through sync, like any
other data; later adaptations change the same rows. A new plan replaces the active one: the old
plan is marked 'replaced' and its sessions from the new start on are deleted (completed ones stay).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from trainer.analysis.plan import Plan, PlanWeek, ScheduledWorkout, current_phase, generate_plan
from trainer.db import Database, Queries, Row, Transaction
from trainer.engine.days import today, user_zone
from trainer.errors import InvalidInput, NotFound
from trainer.profile import UserSettings
from trainer.store import users
from trainer.store.stamps import next_stamp
from trainer.sync.writes import delete_server_row, upsert_server_row

__all__ = [
    "MAX_PLAN_DAYS",
    "PlanSpec",
    "StoredPlan",
    "active_plan",
    "create_plan",
    "get_plan",
    "list_plans",
    "planned_of",
    "title_for",
]

MAX_PLAN_DAYS = 366  # a season; longer horizons are not plannable week by week
_NOUN = {"run": "run", "bike": "ride", "swim": "swim"}
_TITLE = {
    "rest": "Rest day",
    "easy": "Easy {noun}",
    "endurance": "Endurance {noun}",
    "long": "Long {noun}",
    "tempo": "Tempo {noun}",
    "intervals": "Intervals",
}
_PLAN_COLUMNS = "id, name, sport, goal, start_date, race_date, status, current_phase, options, updated_stamp"
_WORKOUT_COLUMNS = (
    "id, plan_id, day, kind, title, description, target_duration_min, target_load, status, "
    "completed_activity_id, original_kind, adaptation_reason, planned, updated_stamp, changed_by_device"
)


def title_for(kind: str, sport: str, goal: str = "") -> str:
    if kind == "race":
        return goal or "Race day"
    return _TITLE[kind].format(noun=_NOUN.get(sport, "session"))


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """What the athlete asks for (validated at the API edge)."""

    goal: str
    race_date: dt.date
    sport: str = "run"
    start_date: dt.date | None = None
    weekly_hours: float | None = None


@dataclass(frozen=True)
class StoredPlan:
    """A training_plans row and its scheduled_workouts rows (ordered by day)."""

    row: Row
    workouts: list[Row]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def sport_name(self) -> str:
        return str(self.row["sport"])

    @property
    def goal(self) -> str:
        return str(self.row["goal"] or "")

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(str(self.row["start_date"]))

    @property
    def race_date(self) -> dt.date:
        return dt.date.fromisoformat(str(self.row["race_date"]))

    @property
    def weeks(self) -> tuple[PlanWeek, ...]:
        return tuple(
            PlanWeek(
                dt.date.fromisoformat(w["start"]),
                dt.date.fromisoformat(w["end"]),
                w["phase"],
                float(w["targetLoad"]),
                bool(w["recovery"]),
            )
            for w in (self.row["options"] or {}).get("weeks", [])
        )

    def phase_on(self, day: dt.date) -> str | None:
        week = next((w for w in self.weeks if w.start <= day <= w.end), None)
        return None if week is None else week.phase

    def as_calendar(self) -> Plan:
        """The analysis-side Plan as the calendar stands now: one ScheduledWorkout per day from start
        to race day with each row's current session; days already missed or skipped, and days
        without a row, count as rest (nothing was done there)."""
        by_day = {str(w["day"]): w for w in self.workouts}
        out: list[ScheduledWorkout] = []
        day = self.start
        while day <= self.race_date:
            row = by_day.get(day.isoformat())
            phase: Any = self.phase_on(day) or "base"
            if row is None or row["status"] in ("missed", "skipped"):
                out.append(ScheduledWorkout(day, "rest", 0.0, 0.0, "", phase))
            else:
                load, minutes = float(row["target_load"] or 0.0), float(row["target_duration_min"] or 0.0)
                out.append(ScheduledWorkout(day, row["kind"], load, minutes, row["description"], phase))
            day += dt.timedelta(days=1)
        return Plan(self.start, self.race_date, str(self.row["sport"]), self.weeks, tuple(out))


def planned_of(row: Row) -> dict[str, Any]:
    """The session as planned before adaptation: the `planned` JSON, else the row's own values
    (a workout the app created itself has no plan history)."""
    if row.get("planned"):
        return dict(json.loads(row["planned"]))
    return {
        "kind": row["kind"],
        "title": row["title"],
        "description": row["description"],
        "target_load": row["target_load"],
        "target_duration_min": row["target_duration_min"],
    }


async def _plan_rows(db: Queries, user_id: str, where: str, *args: Any) -> list[Row]:
    return await db.fetch(
        f"SELECT {_PLAN_COLUMNS} FROM training_plans WHERE user_id = $1 AND {where} ORDER BY start_date DESC, id",
        user_id,
        *args,
    )


async def _with_workouts(db: Queries, user_id: str, row: Row) -> StoredPlan:
    workouts = await db.fetch(
        f"SELECT {_WORKOUT_COLUMNS} FROM scheduled_workouts WHERE user_id = $1 AND plan_id = $2 ORDER BY day, id",
        user_id,
        row["id"],
    )
    return StoredPlan(row, workouts)


async def list_plans(db: Queries, user_id: str) -> list[Row]:
    return await _plan_rows(db, user_id, "TRUE")


async def get_plan(db: Queries, user_id: str, plan_id: str) -> StoredPlan:
    rows = await _plan_rows(db, user_id, "id = $2", plan_id)
    if not rows:
        raise NotFound("no such plan")
    return await _with_workouts(db, user_id, rows[0])


async def active_plan(db: Queries, user_id: str) -> StoredPlan | None:
    """The plan the adaptation rules work on: the newest active one."""
    rows = await _plan_rows(db, user_id, "status = 'active'")
    return await _with_workouts(db, user_id, rows[0]) if rows else None


async def _current_ctl(db: Queries, user_id: str, day: dt.date) -> float | None:
    ctl = await db.fetchval(
        "SELECT ctl FROM daily_state WHERE user_id = $1 AND day <= $2 ORDER BY day DESC LIMIT 1",
        user_id,
        day.isoformat(),
    )
    return None if ctl is None else float(ctl)


def _check(spec: PlanSpec, start: dt.date, local_today: dt.date) -> None:
    if spec.race_date < local_today:
        raise InvalidInput("raceDate: the race is in the past")
    if spec.race_date < start:
        raise InvalidInput("raceDate: must be on or after startDate")
    if start < local_today - dt.timedelta(days=7):
        raise InvalidInput("startDate: cannot start more than a week ago")
    if (spec.race_date - start).days + 1 > MAX_PLAN_DAYS:
        raise InvalidInput(f"raceDate: a plan can span at most {MAX_PLAN_DAYS} days")


async def create_plan(db: Database, user_id: str, spec: PlanSpec) -> str:
    """Generate and store a plan; returns its id. The same recompute lock as the adaptation step
    is held, so a plan is never written while the rules are rewriting the previous one."""
    from trainer.engine.adaptation import adapt_after_recompute
    from trainer.engine.recompute import bring_up_to_date

    await bring_up_to_date(db, user_id)  # today's state (form, readiness) for the first adaptation
    async with db.transaction() as tx:
        await tx.lock("recompute:" + user_id)
        settings = UserSettings.model_validate((await users.get(tx, user_id)).settings)
        local_today = today(user_zone(settings))
        start = spec.start_date or local_today
        _check(spec, start, local_today)
        ctl = None if spec.weekly_hours is not None else await _current_ctl(tx, user_id, min(start, local_today))
        plan = generate_plan(
            spec.race_date, start=start, sport=spec.sport, current_ctl=ctl, weekly_hours=spec.weekly_hours
        )
        stamp = await next_stamp(tx, user_id)
        await _retire_active(tx, user_id, start, stamp)
        plan_id = await _store(tx, user_id, spec, plan, ctl, stamp, local_today)
        await adapt_after_recompute(tx, user_id, settings, from_day=start)
    return plan_id


async def _retire_active(tx: Transaction, user_id: str, start: dt.date, stamp: int) -> None:
    for row in await _plan_rows(tx, user_id, "status = 'active'"):
        await upsert_server_row(tx, user_id, "training_plans", {"id": row["id"], "status": "replaced"}, stamp=stamp)
        doomed = await tx.fetch(
            """SELECT id FROM scheduled_workouts WHERE user_id = $1 AND plan_id = $2 AND day >= $3
               AND status <> 'completed'""",
            user_id,
            row["id"],
            start.isoformat(),
        )
        for w in doomed:
            await delete_server_row(tx, user_id, "scheduled_workouts", w["id"], stamp=stamp)


async def _store(
    tx: Transaction,
    user_id: str,
    spec: PlanSpec,
    plan: Plan,
    ctl: float | None,
    stamp: int,
    local_today: dt.date,
) -> str:
    options = {
        "weeklyHours": spec.weekly_hours,
        "startingCtl": ctl,
        "weeks": [
            {
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "phase": w.phase,
                "targetLoad": round(w.target_load, 1),
                "recovery": w.recovery,
            }
            for w in plan.weeks
        ],
    }
    plan_id = await upsert_server_row(
        tx,
        user_id,
        "training_plans",
        {
            "name": f"{spec.goal or 'Race'} on {spec.race_date:%d %b %Y}",
            "sport": spec.sport,
            "goal": spec.goal,
            "start_date": plan.start,
            "race_date": plan.race_date,
            "status": "active",
            "current_phase": current_phase(plan, local_today),
            "options": options,
        },
        stamp=stamp,
    )
    for w in plan.workouts:
        planned = {
            "kind": w.kind,
            "title": title_for(w.kind, plan.sport, spec.goal),
            "description": w.description,
            "target_load": round(w.target_load, 1),
            "target_duration_min": w.target_duration_min,
        }
        await upsert_server_row(
            tx,
            user_id,
            "scheduled_workouts",
            {
                "plan_id": plan_id,
                "day": w.date,
                "kind": planned["kind"],
                "title": planned["title"],
                "description": planned["description"],
                "target_load": planned["target_load"],
                "target_duration_min": planned["target_duration_min"],
                "status": "planned",
                "planned": json.dumps(planned, separators=(",", ":")),
            },
            stamp=stamp,
        )
    return plan_id

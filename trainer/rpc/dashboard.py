"""dashboard.*: what the app's home screen and charts show, in the user's time zone.

Both read the derived daily_state (extended to today first, see engine.recompute.bring_up_to_date),
the active plan's scheduled workouts and the activities; nothing is computed twice.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pydantic import Field

from trainer.db import Queries, Row
from trainer.engine.days import ONE_DAY, day_start_ms, today, user_zone, week_bounds
from trainer.engine.plans import active_plan
from trainer.engine.recompute import bring_up_to_date
from trainer.profile import UserSettings
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.store import users

router = Router("dashboard")

_STATE_COLUMNS = "day, load, ctl, atl, tsb, ramp, acwr, monotony, strain, readiness_score, readiness_band"


class ReadinessOut(Output):
    score: float = Field(description="0-100; 100 = nothing holds you back")
    band: str = Field(description="green (>= 75) | amber (>= 50) | red")
    confidence: str = Field(description="high (HRV baseline) | medium | low (little data)")
    reasons: list[str] = Field(description="Plain-language reasons, e.g. 'HRV 12% below your 60-day baseline'")


class FitnessOut(Output):
    ctl: float = Field(description="Fitness: 42-day load average")
    atl: float = Field(description="Fatigue: 7-day load average")
    tsb: float = Field(description="Form at the start of today (yesterday's CTL - ATL)")
    ramp: float = Field(description="CTL change over the last 7 days")
    acwr: float | None = Field(description="Acute:chronic load ratio (EWMA); soft flag only")
    monotony: float | None
    strain: float | None


class DayLoad(Output):
    date: dt.date
    load: float


class TodayWorkout(Output):
    id: str
    plan_id: str | None
    kind: str
    title: str
    description: str
    target_duration_min: float | None
    target_load: float | None
    status: str
    adapted: bool = Field(description="True when the rules changed today's session; see adaptationReason")
    original_kind: str | None
    adaptation_reason: str | None


class LastActivity(Output):
    id: str
    name: str
    sport: str
    start_time: int = Field(description="Milliseconds since the epoch")
    duration_s: float
    distance_m: float | None
    avg_hr: float | None
    training_load: float | None


class WeekTotals(Output):
    start: dt.date
    end: dt.date
    load: float = Field(description="Training load done this week so far")
    planned_load: float | None = Field(
        description="Target load of the week's plan sessions as they stand after adaptation (None: no plan)"
    )
    duration_s: float
    planned_duration_min: float | None
    sessions_completed: int
    sessions_planned: int


class PlanInfo(Output):
    id: str
    name: str
    current_phase: str | None
    race_date: dt.date
    days_to_race: int


class TodaySummary(Output):
    date: dt.date = Field(description="Today in the user's time zone")
    timezone: str
    readiness: ReadinessOut | None
    fitness: FitnessOut | None
    load_trend: list[DayLoad] = Field(description="The last 7 days' loads, oldest first, ending today")
    workout: TodayWorkout | None
    last_activity: LastActivity | None
    week: WeekTotals
    plan: PlanInfo | None


class TrendInput(Input):
    days: int = Field(90, ge=7, le=730)


class TrendDay(Output):
    date: dt.date
    load: float
    ctl: float
    atl: float
    tsb: float
    ramp: float
    acwr: float | None
    monotony: float | None
    strain: float | None
    readiness_score: float
    readiness_band: str


class Trend(Output):
    start: dt.date
    end: dt.date
    days: list[TrendDay] = Field(description="One entry per day with history, oldest first")


async def _settings(db: Queries, user_id: str) -> UserSettings:
    return UserSettings.model_validate((await users.get(db, user_id)).settings)


async def _states(db: Queries, user_id: str, first: dt.date, last: dt.date) -> list[Row]:
    return await db.fetch(
        f"SELECT {_STATE_COLUMNS}, readiness_confidence, readiness_reasons FROM daily_state"
        " WHERE user_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        user_id,
        first.isoformat(),
        last.isoformat(),
    )


@router.query("getTodaySummary")
async def get_today_summary(ctx: Context) -> TodaySummary:
    """Readiness, today's (possibly adapted) session, fitness/fatigue/form, the week so far."""
    user_id = ctx.user.id
    await bring_up_to_date(ctx.db, user_id)
    settings = await _settings(ctx.db, user_id)
    zone = user_zone(settings)
    day = today(zone)
    async with ctx.db.snapshot() as db:
        states = {str(r["day"]): r for r in await _states(db, user_id, day - 6 * ONE_DAY, day)}
        now = states.get(day.isoformat())
        plan = await active_plan(db, user_id)
        week_start, week_end = week_bounds(day, settings.week_start)
        week = await _week(db, user_id, zone, week_start, week_end, plan.workouts if plan else None)
        last = await db.fetchrow(
            """SELECT id, name, sport, start_time, duration_s, distance_m, avg_hr, training_load FROM activities
               WHERE user_id = $1 AND start_time < $2 ORDER BY start_time DESC LIMIT 1""",
            user_id,
            day_start_ms(day + ONE_DAY, zone),
        )
    workout = next((w for w in plan.workouts if str(w["day"]) == day.isoformat()), None) if plan else None
    return TodaySummary(
        date=day,
        timezone=settings.timezone,
        readiness=None
        if now is None
        else ReadinessOut(
            score=now["readiness_score"],
            band=now["readiness_band"],
            confidence=now["readiness_confidence"],
            reasons=list(now["readiness_reasons"]),
        ),
        fitness=None if now is None else FitnessOut.model_validate({k: now[k] for k in FitnessOut.model_fields}),
        load_trend=[
            DayLoad(date=d, load=float(states[d.isoformat()]["load"]) if d.isoformat() in states else 0.0)
            for d in (day - i * ONE_DAY for i in range(6, -1, -1))
        ],
        workout=None
        if workout is None
        else TodayWorkout.model_validate(
            {k: workout.get(k) for k in TodayWorkout.model_fields if k != "adapted"}
            | {"adapted": workout["status"] == "adapted" and workout["original_kind"] is not None}
        ),
        last_activity=None if last is None else LastActivity.model_validate(last),
        week=week,
        plan=None
        if plan is None
        else PlanInfo(
            id=plan.id,
            name=str(plan.row["name"]),
            current_phase=plan.row["current_phase"],
            race_date=plan.race_date,
            days_to_race=(plan.race_date - day).days,
        ),
    )


async def _week(
    db: Queries, user_id: str, zone: ZoneInfo, start: dt.date, end: dt.date, workouts: list[Row] | None
) -> WeekTotals:
    done = await db.fetchrow(
        """SELECT COALESCE(SUM(training_load), 0) AS load, COALESCE(SUM(duration_s), 0) AS duration
           FROM activities WHERE user_id = $1 AND start_time >= $2 AND start_time < $3""",
        user_id,
        day_start_ms(start, zone),
        day_start_ms(end + ONE_DAY, zone),
    )
    assert done is not None
    week = [w for w in workouts or [] if start.isoformat() <= str(w["day"]) <= end.isoformat()]
    sessions = [w for w in week if (w["original_kind"] or w["kind"]) != "rest"]  # adapted to rest: still planned
    return WeekTotals(
        start=start,
        end=end,
        load=float(done["load"]),
        planned_load=None if workouts is None else sum(float(w["target_load"] or 0.0) for w in week),
        duration_s=float(done["duration"]),
        planned_duration_min=None if workouts is None else sum(float(w["target_duration_min"] or 0) for w in week),
        sessions_completed=sum(1 for w in sessions if w["status"] == "completed"),
        sessions_planned=len(sessions),
    )


@router.query("getTrend")
async def get_trend(ctx: Context, input: TrendInput) -> Trend:
    """Daily load, CTL/ATL/TSB, ACWR, monotony and readiness for the last `days` days (7-730)."""
    await bring_up_to_date(ctx.db, ctx.user.id)
    day = today(user_zone(await _settings(ctx.db, ctx.user.id)))
    start = day - (input.days - 1) * ONE_DAY
    rows = await _states(ctx.db, ctx.user.id, start, day)
    return Trend(
        start=start,
        end=day,
        days=[TrendDay.model_validate({**r, "date": r["day"]}) for r in rows],
    )

"""plans.*: training plans toward a goal race.

How the app gets a plan: it calls the mutation `plans.generate({goal, raceDate, sport, startDate?,
weeklyHours?})`. The server generates the plan (trainer/analysis/plan.py) and writes it as synced
rows, one training_plans row and one scheduled_workouts row per day, so the calendar then arrives
through the app's normal sync, works offline, and picks up every later adaptation the same way.
The mutation also returns the plan, so the app can show it before its next pull. A new plan replaces
the active one. `plans.list` / `plans.get` read plans back (e.g. on the web, or to show the weeks).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from trainer.db import Row
from trainer.engine.plans import PlanSpec, StoredPlan, create_plan, get_plan, list_plans
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router

router = Router("plans")


class GenerateInput(Input):
    goal: str = Field(min_length=1, max_length=200, description="What the plan is for, e.g. 'Half marathon'")
    race_date: dt.date
    sport: Literal["run", "bike", "swim"] = "run"
    start_date: dt.date | None = Field(None, description="Default: today in the user's time zone")
    weekly_hours: float | None = Field(
        None, gt=0, le=40, description="Hours a week available now; default: estimated from recent training (CTL)"
    )


class PlanIdInput(Input):
    id: str = Field(min_length=1, max_length=64)


class PlanWeekOut(Output):
    start: dt.date
    end: dt.date
    phase: str
    target_load: float
    recovery: bool


class WorkoutOut(Output):
    id: str
    day: dt.date
    kind: str
    title: str
    description: str
    target_duration_min: float | None
    target_load: float | None
    status: str = Field(description="planned | adapted | completed | missed | skipped")
    completed_activity_id: str | None
    original_kind: str | None = Field(description="What was planned, when an adaptation changed the session")
    adaptation_reason: str | None


class PlanSummary(Output):
    id: str
    name: str
    sport: str
    goal: str
    start_date: dt.date | None
    race_date: dt.date | None
    status: str = Field(description="active | replaced | completed")
    current_phase: str | None = Field(description="base | build | peak | taper")


class PlanDetail(PlanSummary):
    weeks: list[PlanWeekOut]
    workouts: list[WorkoutOut]


def summary_of(row: Row) -> PlanSummary:
    return PlanSummary.model_validate({k: row[k] for k in PlanSummary.model_fields})


def workout_of(row: Row) -> WorkoutOut:
    return WorkoutOut.model_validate({k: row[k] for k in WorkoutOut.model_fields})


def detail_of(plan: StoredPlan) -> PlanDetail:
    return PlanDetail(
        **summary_of(plan.row).model_dump(),
        weeks=[
            PlanWeekOut(start=w.start, end=w.end, phase=w.phase, target_load=w.target_load, recovery=w.recovery)
            for w in plan.weeks
        ],
        workouts=[workout_of(w) for w in plan.workouts],
    )


@router.mutation("generate")
async def generate(ctx: Context, input: GenerateInput) -> PlanDetail:
    """Generate a plan toward a race and store it (it replaces the active plan); returns it."""
    spec = PlanSpec(input.goal, input.race_date, input.sport, input.start_date, input.weekly_hours)
    plan_id = await create_plan(ctx.db, ctx.user.id, spec)
    return detail_of(await get_plan(ctx.db, ctx.user.id, plan_id))


@router.query("list")
async def list_(ctx: Context) -> list[PlanSummary]:
    """The caller's plans, newest first."""
    return [summary_of(r) for r in await list_plans(ctx.db, ctx.user.id)]


@router.query("get")
async def get(ctx: Context, input: PlanIdInput) -> PlanDetail:
    """One plan with its weeks and every scheduled session."""
    return detail_of(await get_plan(ctx.db, ctx.user.id, input.id))

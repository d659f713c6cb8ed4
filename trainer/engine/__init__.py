"""The analysis engine: trainer.analysis's pure functions applied to a user's stored data.

    physiology_for(settings)                 user settings -> the formulas' HR anchors
    recompute_user(db, user_id, from_day)    daily_state + plan adaptation after new or late data
    create_plan(db, user_id, PlanSpec(...))  a generated plan written as synced rows

Nothing here is HTTP- or vendor-specific: the ingest pipeline, the sync engine, the tRPC routers
and the CLI all call the same functions.
"""

from __future__ import annotations

from trainer.engine.physiology import analysis_settings_for, physiology_for
from trainer.engine.plans import PlanSpec, create_plan
from trainer.engine.recompute import RecomputeResult, recompute_user

__all__ = ["PlanSpec", "RecomputeResult", "analysis_settings_for", "create_plan", "physiology_for", "recompute_user"]

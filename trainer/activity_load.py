"""The training load of an arriving activity, computed the same way for every source.

File imports, uploads, vendor webhooks and backfills all call `load_for`, so an activity's load
does not depend on how it reached the server. The user's physiology and zone model come from
trainer.engine.physiology, the one mapping from stored settings to analysis inputs.
"""

from __future__ import annotations

import numpy as np

from trainer.analysis.load import ActivityLoad, analyze_activity
from trainer.engine.physiology import analysis_settings_for, physiology_for
from trainer.normalized import ImportedActivity, Sport
from trainer.profile import UserSettings

__all__ = ["load_for"]

_BIKE = {Sport.RIDE, Sport.INDOOR_RIDE, Sport.VIRTUAL_RIDE, Sport.MOUNTAIN_BIKE, Sport.GRAVEL_RIDE, Sport.E_BIKE_RIDE}
_SUMMARY_STEP_S = 5.0


def load_for(
    user_settings: UserSettings, imported: ImportedActivity, *, rpe: float | None = None
) -> ActivityLoad | None:
    """Load from the heart-rate stream; without one, from the average HR over the moving time;
    without any heart rate, from the session RPE the athlete gave in the app (sRPE).

    None when there is neither heart rate nor an RPE: nothing to compute a load from yet.
    """
    activity = imported.activity
    physiology = physiology_for(user_settings)
    settings = analysis_settings_for(user_settings)
    sport = "bike" if activity.sport in _BIKE else "run"
    streams = imported.streams
    if streams is not None and streams.heart_rate is not None and np.isfinite(streams.heart_rate).any():
        return analyze_activity(
            streams.time_s,
            streams.heart_rate,
            physiology,
            speed=streams.speed_m_s,
            power=streams.power_w,
            rpe=rpe,
            duration_s=activity.moving_time_s,
            sport=sport,
            settings=settings,
        )
    duration = activity.moving_time_s or activity.duration_s
    if not duration:
        return None
    if activity.avg_hr_bpm is None:
        if rpe is None:
            return None
        return analyze_activity(None, None, physiology, rpe=rpe, duration_s=duration, sport=sport, settings=settings)
    # A summary-only activity (no samples): a constant HR at the average is what TRIMP's average-HR
    # form assumes, and feeding it through the same function keeps one code path for the load.
    time_s = np.arange(0.0, duration, _SUMMARY_STEP_S)
    hr = np.full(time_s.shape, activity.avg_hr_bpm)
    return analyze_activity(time_s, hr, physiology, rpe=rpe, duration_s=duration, sport=sport, settings=settings)

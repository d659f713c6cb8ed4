"""The one mapping from a user's stored settings to the inputs of the analysis formulas.

Vendor imports, file imports, recompute and re-analysis all call these, so an activity analysed on
upload and the same activity re-analysed after a settings change see the same anchors.
"""

from __future__ import annotations

from trainer import clock
from trainer.analysis.physiology import DEFAULT_SETTINGS, AnalysisSettings, Physiology, ZoneModel
from trainer.analysis.readiness import ReadinessSettings
from trainer.profile import UserSettings

__all__ = ["READINESS_SETTINGS", "analysis_settings_for", "physiology_for", "readiness_settings_for"]

# The app stores soreness on 1-10 and stress on 0-100 (trainer/sync/tables.py, daily_metrics).
READINESS_SETTINGS = ReadinessSettings(soreness_max=10.0, stress_max=100.0)


def _age(settings: UserSettings) -> float | None:
    if settings.birth_year is None:
        return None
    return float(max(clock.now().year - settings.birth_year, 0))


def physiology_for(settings: UserSettings) -> Physiology:
    """HR anchors from the user's settings; measured values win, missing ones are estimated.

    HRmax falls back to Tanaka(age) and then 200, HRrest to 60 (Physiology.from_measurements).
    Settings are validated one field at a time, so a combination can still be impossible (an LTHR
    above an age-estimated HRmax, a measured HRrest above it): the offending value is dropped rather
    than failing every analysis of the user, and the LTHR is then estimated from the HR reserve.
    """
    hr_max = float(settings.hr_max) if settings.hr_max is not None else None
    hr_rest = float(settings.hr_rest) if settings.hr_rest is not None else None
    lthr = float(settings.lthr) if settings.lthr is not None else None
    base = Physiology.from_measurements(settings.sex, age=_age(settings), hr_rest=hr_rest, hr_max=hr_max)
    if not base.hr_rest < base.hr_max:
        base = Physiology.from_measurements(settings.sex, age=_age(settings), hr_max=hr_max)
    if not base.hr_rest < base.hr_max:
        base = Physiology.from_measurements(settings.sex)
    if lthr is not None and not base.hr_rest < lthr <= base.hr_max:
        lthr = None
    return Physiology(sex=base.sex, hr_rest=base.hr_rest, hr_max=base.hr_max, lthr=lthr)


def analysis_settings_for(settings: UserSettings) -> AnalysisSettings:
    """Analysis conventions for this user: the zone model is theirs, the rest the documented defaults."""
    if settings.zone_model == DEFAULT_SETTINGS.zone_model.value:
        return DEFAULT_SETTINGS
    return AnalysisSettings(zone_model=ZoneModel(settings.zone_model))


def readiness_settings_for(settings: UserSettings) -> ReadinessSettings:
    """Readiness thresholds; the self-report scales are those of the app's daily_metrics columns."""
    return READINESS_SETTINGS

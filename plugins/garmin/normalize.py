"""Garmin summaries -> trainer.normalized models.

Timestamps are Unix seconds UTC, `*OffsetInSeconds` the device's display offset; ids may be numbers
or strings (stored as text). An activity and its details share `activityId`, so the details (with
samples) land on the same stored activity as the summary that came first.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from trainer.normalized import Activity, DailySummary, ImportedActivity, Sport, Streams
from trainer.plugins import PermanentFailure

SOURCE = "garmin"

_SPORTS: dict[str, Sport] = {
    "RUNNING": Sport.RUN,
    "STREET_RUNNING": Sport.RUN,
    "TRACK_RUNNING": Sport.RUN,
    "TRAIL_RUNNING": Sport.TRAIL_RUN,
    "TREADMILL_RUNNING": Sport.TREADMILL_RUN,
    "INDOOR_RUNNING": Sport.TREADMILL_RUN,
    "VIRTUAL_RUN": Sport.VIRTUAL_RUN,
    "CYCLING": Sport.RIDE,
    "ROAD_BIKING": Sport.RIDE,
    "MOUNTAIN_BIKING": Sport.MOUNTAIN_BIKE,
    "GRAVEL_CYCLING": Sport.GRAVEL_RIDE,
    "INDOOR_CYCLING": Sport.INDOOR_RIDE,
    "VIRTUAL_RIDE": Sport.VIRTUAL_RIDE,
    "E_BIKE_FITNESS": Sport.E_BIKE_RIDE,
    "E_BIKE_MOUNTAIN": Sport.E_BIKE_RIDE,
    "LAP_SWIMMING": Sport.SWIM,
    "SWIMMING": Sport.SWIM,
    "OPEN_WATER_SWIMMING": Sport.OPEN_WATER_SWIM,
    "WALKING": Sport.WALK,
    "HIKING": Sport.HIKE,
    "ROWING": Sport.ROWING,
    "INDOOR_ROWING": Sport.INDOOR_ROWING,
    "STAND_UP_PADDLEBOARDING": Sport.PADDLE,
    "KAYAKING": Sport.PADDLE,
    "CROSS_COUNTRY_SKIING_WS": Sport.NORDIC_SKI,
    "SKATE_SKIING_WS": Sport.NORDIC_SKI,
    "BACKCOUNTRY_SKIING_SNOWBOARDING_WS": Sport.BACKCOUNTRY_SKI,
    "RESORT_SKIING_SNOWBOARDING_WS": Sport.ALPINE_SKI,
    "SNOWSHOEING": Sport.SNOWSHOE,
    "STRENGTH_TRAINING": Sport.STRENGTH,
    "CARDIO_TRAINING": Sport.CARDIO,
    "HIIT": Sport.CARDIO,
    "ELLIPTICAL": Sport.ELLIPTICAL,
    "STAIR_CLIMBING": Sport.STAIR_STEPPER,
    "YOGA": Sport.YOGA,
    "PILATES": Sport.PILATES,
    "ROCK_CLIMBING": Sport.CLIMBING,
    "INDOOR_CLIMBING": Sport.CLIMBING,
    "BOULDERING": Sport.CLIMBING,
    "MULTI_SPORT": Sport.MULTISPORT,
    "TRANSITION": Sport.TRANSITION,
}
_RUNNING = {Sport.RUN, Sport.TRAIL_RUN, Sport.TREADMILL_RUN, Sport.VIRTUAL_RUN, Sport.WALK, Sport.HIKE}


def sport_of(activity_type: Any) -> Sport:
    return _SPORTS.get(str(activity_type or "").upper(), Sport.OTHER)


def _start(seconds: Any) -> datetime:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise PermanentFailure("Garmin summary without startTimeInSeconds")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _half(value: Any) -> Any:
    return value / 2 if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cadence(summary: dict[str, Any], sport: Sport) -> Any:
    if sport in _RUNNING:
        return _half(summary.get("averageRunCadenceInStepsPerMinute"))  # trainer: strides per leg
    return summary.get("averageBikeCadenceInRoundsPerMinute") or summary.get("averageSwimCadenceInStrokesPerMinute")


def activity_id_of(summary: dict[str, Any]) -> str:
    value = summary.get("activityId") or summary.get("summaryId")
    if value is None or isinstance(value, bool):
        raise PermanentFailure("Garmin activity without activityId")
    return str(value)


def activity(summary: dict[str, Any], streams: Streams | None = None) -> ImportedActivity | None:
    """An activity summary (or a details document's `summary`); None for a multisport parent,
    whose legs arrive as their own activities."""
    if summary.get("isParent"):
        return None
    sport = sport_of(summary.get("activityType"))
    parent = summary.get("parentSummaryId")
    try:
        model = Activity(
            source=SOURCE,
            external_id=activity_id_of(summary),
            parent_external_id=None if parent is None else str(parent),
            sport=sport,
            name=summary.get("activityName"),
            start_time=_start(summary.get("startTimeInSeconds")),
            utc_offset_s=summary.get("startTimeOffsetInSeconds"),
            duration_s=summary.get("durationInSeconds"),
            moving_time_s=summary.get("movingDurationInSeconds"),
            distance_m=summary.get("distanceInMeters"),
            elevation_gain_m=summary.get("totalElevationGainInMeters"),
            calories_kcal=summary.get("activeKilocalories"),
            avg_hr_bpm=summary.get("averageHeartRateInBeatsPerMinute"),
            max_hr_bpm=summary.get("maxHeartRateInBeatsPerMinute"),
            avg_power_w=summary.get("averagePowerInWatts"),
            avg_cadence_rpm=_cadence(summary, sport),
            avg_speed_m_s=summary.get("averageSpeedInMetersPerSecond"),
            max_speed_m_s=summary.get("maxSpeedInMetersPerSecond"),
            device_name=summary.get("deviceName"),
            manual=bool(summary.get("manual", False)),
        )
    except ValidationError as exc:
        raise PermanentFailure(f"Garmin activity is not usable: {exc.errors()[0]['msg']}") from None
    return ImportedActivity(activity=model, streams=streams)


def activity_details(document: dict[str, Any]) -> ImportedActivity | None:
    """An activityDetails document: the summary plus per-second samples as streams."""
    summary = dict(document.get("summary") or {})
    summary.setdefault("activityId", document.get("activityId"))
    summary.setdefault("summaryId", document.get("summaryId"))
    sport = sport_of(summary.get("activityType"))
    samples = [s for s in document.get("samples") or [] if isinstance(s, dict)]
    start = summary.get("startTimeInSeconds")
    if start is None and samples:
        start = samples[0].get("startTimeInSeconds")
        summary["startTimeInSeconds"] = start
    streams = samples_to_streams(samples, start, sport) if samples and start is not None else None
    return activity(summary, streams)


_SAMPLE_CHANNELS = (
    ("heartRate", "heart_rate"),
    ("latitudeInDegree", "latitude"),
    ("longitudeInDegree", "longitude"),
    ("elevationInMeters", "altitude_m"),
    ("speedMetersPerSecond", "speed_m_s"),
    ("powerInWatts", "power_w"),
    ("totalDistanceInMeters", "distance_m"),
    ("airTemperatureCelcius", "temperature_c"),  # sic: Garmin's spelling
)


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


def samples_to_streams(samples: list[dict[str, Any]], start: Any, sport: Sport) -> Streams | None:
    timed = [s for s in samples if isinstance(s.get("startTimeInSeconds"), int | float)]
    if not timed:
        return None
    timed.sort(key=lambda s: s["startTimeInSeconds"])
    time_s = np.array([s["startTimeInSeconds"] - start for s in timed], dtype=np.float64)
    channels: dict[str, np.ndarray] = {}
    for key, name in _SAMPLE_CHANNELS:
        values = np.array([_number(s.get(key)) for s in timed])
        if np.isfinite(values).any():
            channels[name] = values
    cadence_key = "stepsPerMinute" if sport in _RUNNING else "bikeCadenceInRPM"
    if sport in (Sport.SWIM, Sport.OPEN_WATER_SWIM):
        cadence_key = "swimCadenceInStrokesPerMinute"
    cadence = np.array([_number(s.get(cadence_key)) for s in timed])
    if np.isfinite(cadence).any():
        channels["cadence"] = cadence / 2 if sport in _RUNNING else cadence
    try:
        return Streams(time_s=time_s, **channels)
    except ValueError as exc:
        raise PermanentFailure(f"Garmin samples are not usable: {exc}") from None


def _day(summary: dict[str, Any]) -> date:
    try:
        return date.fromisoformat(str(summary.get("calendarDate")))
    except ValueError:
        raise PermanentFailure("Garmin summary without a valid calendarDate") from None


def _summary_id(summary: dict[str, Any]) -> str:
    value = summary.get("summaryId")
    if value is None or isinstance(value, bool):
        raise PermanentFailure("Garmin summary without summaryId")
    return str(value)


def daily(summary: dict[str, Any]) -> DailySummary:
    return DailySummary(
        source=SOURCE,
        external_id=_summary_id(summary),
        day=_day(summary),
        resting_hr_bpm=summary.get("restingHeartRateInBeatsPerMinute"),
        stress_avg=summary.get("averageStressLevel"),  # -1 (not enough data) is out of range -> None
        stress_max=summary.get("maxStressLevel"),
        steps=summary.get("steps"),
        active_calories_kcal=summary.get("activeKilocalories"),
        body_battery_charged=summary.get("bodyBatteryChargedValue"),
        body_battery_drained=summary.get("bodyBatteryDrainedValue"),
    )


def sleep(summary: dict[str, Any]) -> DailySummary:
    score = summary.get("overallSleepScore")
    return DailySummary(
        source=SOURCE,
        external_id=_summary_id(summary),
        day=_day(summary),
        sleep_s=summary.get("durationInSeconds"),
        deep_sleep_s=summary.get("deepSleepDurationInSeconds"),
        light_sleep_s=summary.get("lightSleepDurationInSeconds"),
        rem_sleep_s=summary.get("remSleepInSeconds"),
        awake_s=summary.get("awakeDurationInSeconds"),
        sleep_score=score.get("value") if isinstance(score, dict) else None,
    )


def hrv(summary: dict[str, Any]) -> DailySummary:
    return DailySummary(
        source=SOURCE,
        external_id=_summary_id(summary),
        day=_day(summary),
        hrv_rmssd_ms=summary.get("lastNightAvg"),
    )

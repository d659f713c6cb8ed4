"""Strava's activity and stream JSON -> trainer.normalized models.

Field meanings and units are Strava's documented ones (see docs/reference in the repo's vendors
notes): distances m, times s, speeds m/s, cadence rpm (running: per leg, like trainer's own).
"""

from __future__ import annotations

import math
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
from pydantic import ValidationError

from trainer.normalized import Activity, Sport, Streams
from trainer.plugins import PermanentFailure

SOURCE = "strava"
STREAM_KEYS = "time,distance,latlng,altitude,velocity_smooth,heartrate,cadence,watts,temp"

_SPORTS: dict[str, Sport] = {
    "Run": Sport.RUN,
    "TrailRun": Sport.TRAIL_RUN,
    "VirtualRun": Sport.VIRTUAL_RUN,
    "Ride": Sport.RIDE,
    "VirtualRide": Sport.VIRTUAL_RIDE,
    "MountainBikeRide": Sport.MOUNTAIN_BIKE,
    "GravelRide": Sport.GRAVEL_RIDE,
    "EBikeRide": Sport.E_BIKE_RIDE,
    "EMountainBikeRide": Sport.E_BIKE_RIDE,
    "Handcycle": Sport.RIDE,
    "Velomobile": Sport.RIDE,
    "Swim": Sport.SWIM,
    "Walk": Sport.WALK,
    "Hike": Sport.HIKE,
    "Rowing": Sport.ROWING,
    "VirtualRow": Sport.INDOOR_ROWING,
    "Canoeing": Sport.PADDLE,
    "Kayaking": Sport.PADDLE,
    "StandUpPaddling": Sport.PADDLE,
    "NordicSki": Sport.NORDIC_SKI,
    "BackcountrySki": Sport.BACKCOUNTRY_SKI,
    "AlpineSki": Sport.ALPINE_SKI,
    "Snowboard": Sport.SNOWBOARD,
    "Snowshoe": Sport.SNOWSHOE,
    "IceSkate": Sport.SKATE,
    "InlineSkate": Sport.SKATE,
    "RollerSki": Sport.NORDIC_SKI,
    "RockClimbing": Sport.CLIMBING,
    "WeightTraining": Sport.STRENGTH,
    "Crossfit": Sport.CARDIO,
    "HighIntensityIntervalTraining": Sport.CARDIO,
    "Elliptical": Sport.ELLIPTICAL,
    "StairStepper": Sport.STAIR_STEPPER,
    "Yoga": Sport.YOGA,
    "Pilates": Sport.PILATES,
}
_INDOOR = {Sport.RUN: Sport.TREADMILL_RUN, Sport.RIDE: Sport.INDOOR_RIDE}


def sport_of(sport_type: str | None, legacy_type: str | None, trainer: bool | None = None) -> Sport:
    """`sport_type` is the precise one; the older `type` covers activities from before it existed."""
    sport = _SPORTS.get(sport_type or "") or _SPORTS.get(legacy_type or "") or Sport.OTHER
    return _INDOOR.get(sport, sport) if trainer else sport


def _start(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PermanentFailure(f"Strava activity has an unreadable start_date {value!r}") from None


def activity_from_strava(data: dict[str, Any]) -> Activity:
    """One detailed (or summary) activity. Missing or implausible numbers become None."""
    if not isinstance(data, dict) or "id" not in data or "start_date" not in data:
        raise PermanentFailure("Strava sent an activity without id or start_date")
    trainer = data.get("trainer")
    try:
        return Activity(
            source=SOURCE,
            external_id=str(data["id"]),
            sport=sport_of(data.get("sport_type"), data.get("type"), bool(trainer)),
            name=data.get("name"),
            start_time=_start(data["start_date"]),
            utc_offset_s=data.get("utc_offset"),
            duration_s=data.get("elapsed_time"),
            moving_time_s=data.get("moving_time"),
            distance_m=data.get("distance"),
            elevation_gain_m=data.get("total_elevation_gain"),
            calories_kcal=data.get("calories"),
            avg_hr_bpm=data.get("average_heartrate") if data.get("has_heartrate", True) else None,
            max_hr_bpm=data.get("max_heartrate") if data.get("has_heartrate", True) else None,
            avg_power_w=data.get("average_watts"),
            max_power_w=data.get("max_watts"),
            normalized_power_w=data.get("weighted_average_watts"),
            avg_cadence_rpm=data.get("average_cadence"),
            avg_speed_m_s=data.get("average_speed"),
            max_speed_m_s=data.get("max_speed"),
            device_name=data.get("device_name"),
            manual=bool(data.get("manual", False)),
            trainer=None if trainer is None else bool(trainer),
        )
    except ValidationError as exc:
        raise PermanentFailure(f"Strava activity {data.get('id')} is not usable: {exc.errors()[0]['msg']}") from None


_NUMBER_TYPES = frozenset({int, float})


def _plain_numbers(values: list[Any]) -> bool:
    """True when every item is exactly an int or a float (bools and None excluded): the common case,
    checked with C-level loops so a 1 Hz stream of hours costs microseconds, not a Python loop."""
    return set(map(type, values)) <= _NUMBER_TYPES


def _floats(values: Any) -> np.ndarray | None:
    """A sample list -> float64, NaN for anything that is not a finite number."""
    if not isinstance(values, list):
        return None
    if _plain_numbers(values):
        try:
            out = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond float range: sample by sample below
            pass
        else:
            out[~np.isfinite(out)] = np.nan
            return out
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = v
    return out


def _latlng(points: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """[[lat, lng], ...] -> (lat, lng); a point that is not a pair of numbers is NaN in both."""
    n = len(points)
    if set(map(type, points)) == {list} and set(map(len, points)) == {2}:
        flat = list(chain.from_iterable(points))
        if _plain_numbers(flat):
            try:
                pairs = np.array(flat, dtype=np.float64).reshape(n, 2)
            except OverflowError:
                pass
            else:
                return pairs[:, 0].copy(), pairs[:, 1].copy()
    lat = np.full(n, np.nan)
    lng = np.full(n, np.nan)
    for i, point in enumerate(points):
        if isinstance(point, list) and len(point) == 2:
            lat[i], lng[i] = _coordinate(point[0]), _coordinate(point[1])
    return lat, lng


def streams_from_strava(data: Any) -> Streams | None:
    """The `key_by_type=true` object (or the plain list form) -> Streams; None without a time stream.

    A channel whose length differs from the time stream's is dropped rather than misaligned.
    """
    if isinstance(data, list):
        data = {s.get("type"): s for s in data if isinstance(s, dict)}
    if not isinstance(data, dict):
        return None
    series = {key: value.get("data") for key, value in data.items() if isinstance(value, dict)}
    time_s = _floats(series.get("time"))
    if time_s is None or time_s.size == 0 or not np.isfinite(time_s).all():
        return None
    n = time_s.size
    channels: dict[str, np.ndarray] = {}
    for strava_key, name in (
        ("heartrate", "heart_rate"),
        ("altitude", "altitude_m"),
        ("velocity_smooth", "speed_m_s"),
        ("watts", "power_w"),
        ("cadence", "cadence"),
        ("distance", "distance_m"),
        ("temp", "temperature_c"),
    ):
        values = _floats(series.get(strava_key))
        if values is not None and values.size == n:
            channels[name] = values
    latlng = series.get("latlng")
    if isinstance(latlng, list) and len(latlng) == n:
        channels["latitude"], channels["longitude"] = _latlng(latlng)
    if np.any(np.diff(time_s) < 0):
        order = np.argsort(time_s, kind="stable")
        time_s = time_s[order]
        channels = {k: v[order] for k, v in channels.items()}
    try:
        return Streams(time_s=time_s, **channels)
    except ValueError as exc:
        raise PermanentFailure(f"Strava streams are not usable: {exc}") from None


def _coordinate(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan

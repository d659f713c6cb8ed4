"""Normalized activity and wellness models that every data source converts to.

Vendor plugins (Strava, Garmin, file import, ...) each speak their own dialect; the rest of the
backend (storage, sync, training-load analysis) only ever sees these models. Units are SI-ish and
spelled out in field names (``_s``, ``_m``, ``_bpm``, ``_w``) or in the field docstring, so no
caller has to guess whether a number is km/h or m/s.

Design rules:

* Summary metrics are advisory: a value outside its plausible range (negative distance, a heart
  rate of 255 written by a disconnected strap, NaN) becomes ``None`` instead of failing the whole
  import. Identity fields (source, external id, start time) are strict, because a wrong identity
  silently corrupts deduplication.
* Multisport recordings are stored as one :class:`Activity` per leg (transitions included, with
  ``Sport.transition``). Every leg carries ``parent_external_id``, a grouping key for the whole
  recording; no separate parent row is produced, so summing activities never double counts.
  ``Sport.multisport`` is reserved for sources that deliver an unsplit multisport recording.
* :class:`Streams` is a frozen dataclass of read-only float64 numpy arrays rather than a pydantic
  model: arrays are the natural unit for analysis and the binary codec, and skipping pydantic
  keeps decoding a 4-hour stream in the sub-millisecond range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "STREAM_CHANNELS",
    "Activity",
    "ChannelSpec",
    "DailySummary",
    "ImportedActivity",
    "Sport",
    "Streams",
]


class Sport(StrEnum):
    """Fixed sport vocabulary. Vendor-specific names are mapped in each vendor plugin."""

    RUN = "run"
    TRAIL_RUN = "trail_run"
    TREADMILL_RUN = "treadmill_run"
    VIRTUAL_RUN = "virtual_run"
    RIDE = "ride"
    INDOOR_RIDE = "indoor_ride"
    """Stationary trainer or spin bike without a virtual world."""
    VIRTUAL_RIDE = "virtual_ride"
    """Indoor ride in a virtual world (Zwift and the like)."""
    MOUNTAIN_BIKE = "mountain_bike"
    GRAVEL_RIDE = "gravel_ride"
    E_BIKE_RIDE = "e_bike_ride"
    SWIM = "swim"
    """Pool (lap) swimming, or swimming of unknown kind."""
    OPEN_WATER_SWIM = "open_water_swim"
    WALK = "walk"
    HIKE = "hike"
    ROWING = "rowing"
    INDOOR_ROWING = "indoor_rowing"
    PADDLE = "paddle"
    """Stand-up paddleboarding, kayaking, canoeing."""
    NORDIC_SKI = "nordic_ski"
    BACKCOUNTRY_SKI = "backcountry_ski"
    ALPINE_SKI = "alpine_ski"
    SNOWBOARD = "snowboard"
    SNOWSHOE = "snowshoe"
    SKATE = "skate"
    """Ice or inline skating."""
    CLIMBING = "climbing"
    DIVE = "dive"
    STRENGTH = "strength"
    CARDIO = "cardio"
    """Gym cardio / HIIT without a more specific sport."""
    ELLIPTICAL = "elliptical"
    STAIR_STEPPER = "stair_stepper"
    YOGA = "yoga"
    PILATES = "pilates"
    MULTISPORT = "multisport"
    """An unsplit multisport recording (file imports split legs instead)."""
    TRANSITION = "transition"
    """Multisport transition (T1/T2) between two legs."""
    OTHER = "other"


# --------------------------------------------------------------------------------------------
# Lenient numeric fields: out-of-range or non-numeric values become None.
# --------------------------------------------------------------------------------------------


def _bounded(lo: float, hi: float, *, integer: bool = False) -> Callable[[Any], Any]:
    """Build a before-validator that maps implausible measurements to ``None``.

    Why lenient: summary numbers come from devices and vendor APIs that write sentinels (-1,
    0xFF, NaN) for "unknown"; one bad number must not make a whole activity unimportable.
    """

    def check(value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number) or not lo <= number <= hi:
            return None
        return round(number) if integer else number

    return check


def _opt_float(lo: float, hi: float) -> Any:
    return Annotated[float | None, BeforeValidator(_bounded(lo, hi))]


def _opt_int(lo: float, hi: float) -> Any:
    return Annotated[int | None, BeforeValidator(_bounded(lo, hi, integer=True))]


_MAX_ACTIVITY_S: Final = 31 * 86_400.0  # multi-day ultra events exist; a month does not
_MAX_OFFSET_S: Final = 14 * 3_600  # real-world UTC offsets span -12 h .. +14 h

DurationS = _opt_float(0.0, _MAX_ACTIVITY_S)
DistanceM = _opt_float(0.0, 10_000_000.0)
ElevationM = _opt_float(0.0, 100_000.0)
Kcal = _opt_float(0.0, 100_000.0)
HeartRateBpm = _opt_float(20.0, 250.0)
PowerW = _opt_float(0.0, 3_000.0)
CadenceRpm = _opt_float(0.0, 300.0)
SpeedMS = _opt_float(0.0, 150.0)
OffsetS = _opt_int(-_MAX_OFFSET_S, _MAX_OFFSET_S)
Percent = _opt_float(0.0, 100.0)
DaySeconds = _opt_int(0.0, 86_400.0)
Count = _opt_int(0.0, 1_000_000.0)
HrvMs = _opt_float(1.0, 500.0)


def _as_text(value: Any) -> Any:
    """Vendor ids arrive as numbers or strings (Garmin activityId); store them as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


ExternalId = Annotated[str, BeforeValidator(_as_text), Field(min_length=1, max_length=128)]
SourceName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (naive times are ambiguous)")
    return value.astimezone(UTC)


def _clean_name(value: Any) -> Any:
    if isinstance(value, str):
        value = " ".join(value.split())
        return value[:200] or None
    return value


class Activity(BaseModel):
    """One recorded (or manually entered) workout, as summary numbers.

    ``duration_s`` is elapsed wall-clock time including pauses; ``moving_time_s`` excludes pauses
    (for FIT files the device timer time, for GPS-only formats computed from speed).
    Cadence is in revolutions per minute for cycling, strokes per minute for rowing/paddling/
    swimming, and strides per minute *per leg* for running (half of steps per minute), which
    is how FIT, Garmin and Strava store it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source: SourceName
    """Where the record came from: 'file', 'garmin', 'strava', ..."""
    external_id: ExternalId
    """Id of the activity at the source (file imports: content hash, plus leg number)."""
    parent_external_id: ExternalId | None = None
    """Multisport grouping key: the id of the whole recording this leg belongs to."""
    sport: Sport = Sport.OTHER
    name: Annotated[str | None, BeforeValidator(_clean_name)] = None
    start_time: datetime
    """Start instant, timezone-aware, normalized to UTC."""
    utc_offset_s: OffsetS = None
    """Local time minus UTC at the start, in seconds (None when the source does not say)."""
    duration_s: DurationS = None
    moving_time_s: DurationS = None
    distance_m: DistanceM = None
    elevation_gain_m: ElevationM = None
    calories_kcal: Kcal = None
    avg_hr_bpm: HeartRateBpm = None
    max_hr_bpm: HeartRateBpm = None
    avg_power_w: PowerW = None
    max_power_w: PowerW = None
    normalized_power_w: PowerW = None
    """Normalized power (FIT) or weighted average power (Strava): the same 30 s-rolling idea."""
    avg_cadence_rpm: CadenceRpm = None
    avg_speed_m_s: SpeedMS = None
    max_speed_m_s: SpeedMS = None
    device_name: Annotated[str | None, BeforeValidator(_clean_name)] = None
    manual: bool = False
    """Entered by hand rather than recorded by a device."""
    trainer: bool | None = None
    """Recorded indoors on a trainer/treadmill, when the source says so."""

    @field_validator("start_time")
    @classmethod
    def _normalize_start(cls, value: datetime) -> datetime:
        return _aware_utc(value)

    @model_validator(mode="before")
    @classmethod
    def _drop_impossible_moving_time(cls, data: Any) -> Any:
        # A moving time longer than the elapsed time is a unit mix-up at the source: drop it.
        if isinstance(data, Mapping):
            seconds = _bounded(0.0, _MAX_ACTIVITY_S)
            moving, elapsed = seconds(data.get("moving_time_s")), seconds(data.get("duration_s"))
            if moving is not None and elapsed is not None and moving > elapsed + 1.0:
                data = {**data, "moving_time_s": None}
        return data


class DailySummary(BaseModel):
    """Per-day wellness numbers (sleep, HRV, resting HR, stress, steps) for one source.

    Vendors deliver these in pieces (Garmin sends dailies, sleeps and HRV as separate summaries
    for the same calendar day), so every metric is optional and :meth:`merged_with` folds a
    newer partial summary into an older one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source: SourceName
    external_id: ExternalId
    day: date
    """Calendar day in the athlete's local time."""
    resting_hr_bpm: HeartRateBpm = None
    hrv_rmssd_ms: HrvMs = None
    """Overnight average RMSSD (Garmin ``lastNightAvg``)."""
    sleep_s: DaySeconds = None
    deep_sleep_s: DaySeconds = None
    light_sleep_s: DaySeconds = None
    rem_sleep_s: DaySeconds = None
    awake_s: DaySeconds = None
    sleep_score: Percent = None
    stress_avg: Percent = None
    """0-100; vendors' negative sentinels (Garmin -1: not enough data) become None."""
    stress_max: Percent = None
    steps: Count = None
    active_calories_kcal: Kcal = None
    body_battery_charged: Percent = None
    body_battery_drained: Percent = None
    body_battery_max: Percent = None
    body_battery_min: Percent = None

    def merged_with(self, newer: DailySummary) -> DailySummary:
        """Return a copy where every metric known in ``newer`` replaces ours."""
        if (newer.source, newer.day) != (self.source, self.day):
            raise ValueError("can only merge summaries of the same source and day")
        updates = {
            name: value
            for name, value in newer.model_dump(exclude={"source", "external_id", "day"}).items()
            if value is not None
        }
        return self.model_copy(update=updates)


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelSpec:
    """Unit and plausible range of one stream channel; samples outside become NaN."""

    unit: str
    lo: float
    hi: float


STREAM_CHANNELS: Final[Mapping[str, ChannelSpec]] = MappingProxyType(
    {
        "heart_rate": ChannelSpec("bpm", 20.0, 250.0),
        "latitude": ChannelSpec("deg", -90.0, 90.0),
        "longitude": ChannelSpec("deg", -180.0, 180.0),
        "altitude_m": ChannelSpec("m", -500.0, 9_000.0),
        "speed_m_s": ChannelSpec("m/s", 0.0, 150.0),
        "power_w": ChannelSpec("W", 0.0, 3_000.0),
        "cadence": ChannelSpec("rpm (per leg for running)", 0.0, 300.0),
        "distance_m": ChannelSpec("m", 0.0, 10_000_000.0),
        "temperature_c": ChannelSpec("degC", -60.0, 70.0),
    }
)
"""Optional stream channels in canonical order (``time_s`` is always present)."""


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Streams:
    """Per-sample time series of one activity; all arrays float64, 1-D and of equal length.

    ``time_s`` is seconds since the activity start, finite and non-decreasing (pauses show up as
    gaps). Optional channels are ``None`` when not recorded at all and NaN for missing samples.
    Out-of-range samples (see :data:`STREAM_CHANNELS`) are replaced by NaN on construction.
    Arrays are exposed as read-only views so a shared Streams cannot be mutated by accident.
    """

    time_s: np.ndarray
    heart_rate: np.ndarray | None = None
    """Heart rate, bpm."""
    latitude: np.ndarray | None = None
    """WGS84 latitude, degrees."""
    longitude: np.ndarray | None = None
    """WGS84 longitude, degrees."""
    altitude_m: np.ndarray | None = None
    speed_m_s: np.ndarray | None = None
    power_w: np.ndarray | None = None
    cadence: np.ndarray | None = None
    """rpm / strokes per minute / strides per minute per leg (see :class:`Activity`)."""
    distance_m: np.ndarray | None = None
    """Cumulative distance from the start, metres."""
    temperature_c: np.ndarray | None = None

    def __post_init__(self) -> None:
        time_s = np.asarray(self.time_s, dtype=np.float64)
        if time_s.ndim != 1:
            raise ValueError("time_s must be one-dimensional")
        if time_s.size and not np.isfinite(time_s).all():
            raise ValueError("time_s must be finite (no NaN timestamps)")
        if time_s.size > 1 and (np.diff(time_s) < 0).any():
            raise ValueError("time_s must be non-decreasing")
        object.__setattr__(self, "time_s", _readonly(time_s))
        for name, spec in STREAM_CHANNELS.items():
            raw = getattr(self, name)
            if raw is None:
                continue
            values = np.array(raw, dtype=np.float64)  # own copy: we may write NaNs into it
            if values.shape != time_s.shape:
                raise ValueError(
                    f"{name} has {values.shape[0] if values.ndim else 0} samples, time_s has {time_s.size}"
                )
            with np.errstate(invalid="ignore"):
                values[~((values >= spec.lo) & (values <= spec.hi))] = np.nan
            object.__setattr__(self, name, _readonly(values))

    @classmethod
    def _trusted(cls, time_s: np.ndarray, channels: Mapping[str, np.ndarray]) -> Streams:
        """Build without re-validating; for the codec, whose output is valid by construction."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "time_s", _readonly(time_s))
        for name in STREAM_CHANNELS:
            array = channels.get(name)
            object.__setattr__(obj, name, None if array is None else _readonly(array))
        return obj

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def channels(self) -> dict[str, np.ndarray]:
        """The recorded optional channels by name, in canonical order."""
        return {name: arr for name in STREAM_CHANNELS if (arr := getattr(self, name)) is not None}

    def select(self, names: Iterable[str]) -> Streams:
        """A copy restricted to ``names`` (``time_s`` is always kept)."""
        wanted = set(names)
        unknown = wanted - set(STREAM_CHANNELS) - {"time_s"}
        if unknown:
            raise ValueError(f"unknown stream channel(s): {', '.join(sorted(unknown))}")
        return Streams._trusted(np.asarray(self.time_s), {k: v for k, v in self.channels().items() if k in wanted})

    def window(self, start: int, stop: int, *, time_origin_s: float = 0.0) -> Streams:
        """Samples ``[start, stop)``, with ``time_origin_s`` subtracted from the time axis.

        Used to cut a multisport recording into legs that each start at their own t=0.
        """
        return Streams._trusted(
            self.time_s[start:stop] - time_origin_s,
            {k: v[start:stop] for k, v in self.channels().items()},
        )


class ImportedActivity(BaseModel):
    """An activity plus its optional sample streams, as produced by an import."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    activity: Activity
    streams: Streams | None = None
    warnings: tuple[str, ...] = ()
    """Human-readable notes about data that was repaired or dropped during the import."""

    @field_validator("streams")
    @classmethod
    def _drop_empty(cls, value: Streams | None) -> Streams | None:
        return value if value is not None and len(value) > 0 else None

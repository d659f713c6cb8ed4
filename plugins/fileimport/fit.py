"""FIT activity files (Garmin, Wahoo, COROS, Strava app, ...) decoded with fitdecode.

What the device wrote in its `session` messages (or, failing that, `lap` messages) is the
source of truth for totals: it knows about auto-pause, its own sensors and its firmware's
definitions. Totals a file does not carry are computed from the `record` samples.

Repairs, each prompted by real files:

* A session whose `start_time` would make it end after its own timestamp is internally
  inconsistent (a fenix 2 multisport leg starts 45 min late); its start is recomputed as
  ``timestamp - total_elapsed_time`` and then pulled back to its first sample.
* Records sharing a timestamp are merged (the Strava app writes position and distance as two
  records per second), records are sorted by time, and records outside the sessions' time span
  (a 2085 timestamp written by a crashing app) or in FIT "system time" are dropped.
* Developer fields that declare a native field (a Concept2 ErgIQ rowing app writes distance,
  speed and power that way, with the native fields zero) fill in for missing or zero natives.

Damage policy: a file that ends early, or whose chained header is invalid, is refused; the
usual cause is an interrupted copy, the athlete still has the intact file, and importing the
truncated copy would store a partial activity under a content hash that the intact file would
never match. Garbage *inside* an otherwise complete recording (a byte lost in the middle of the
Strava app's file) cannot be fixed by uploading again, so if the file already yielded its
session summary the readable samples are kept and the damage is reported as a warning.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import fitdecode
import numpy as np
from fitdecode import profile
from fitdecode.types import DevField

from trainer.normalized import Activity, ImportedActivity, Sport, Streams

from . import derive
from .errors import ImportFileError
from .sports import fit_is_indoor, fit_sport

__all__ = ["parse_fit"]

# fitdecode reports recoverable oddities (odd field sizes in COROS files, CRC mismatches) through
# `warnings`; CRC results are read from its FitCRC frames instead. Filtering by module once at
# import is thread-safe, unlike warnings.catch_warnings() around every parse.
warnings.filterwarnings("ignore", category=UserWarning, module=r"fitdecode(\.|$)")

SEMICIRCLE_DEG: Final = 180.0 / 2**31
FIT_EPOCH_S: Final = 631_065_600  # 1989-12-31T00:00:00Z
SYSTEM_TIME_LIMIT_S: Final = FIT_EPOCH_S + 0x10000000  # smaller FIT date_time = device uptime
SESSION_SLACK_S: Final = 300.0  # records this close outside a session still belong to it
CONSISTENCY_SLACK_S: Final = 60.0

_MESG_RECORD: Final = 20
_MESG_SESSION: Final = 18
_MESG_LAP: Final = 19

# record field name -> column. Plain and enhanced altitude/speed are kept apart; enhanced wins.
_RECORD_COLUMNS: Final = (
    "heart_rate",
    "position_lat",
    "position_long",
    "altitude",
    "enhanced_altitude",
    "speed",
    "enhanced_speed",
    "power",
    "cadence",
    "fractional_cadence",
    "distance",
    "temperature",
)
_COLUMN_INDEX: Final = {name: i for i, name in enumerate(_RECORD_COLUMNS)}
# Native record fields a developer field may stand in for (via field_description.native_field_num).
_DEV_OVERRIDABLE: Final = ("heart_rate", "cadence", "distance", "speed", "power")
_DEV_INDEX: Final = {name: len(_RECORD_COLUMNS) + i for i, name in enumerate(_DEV_OVERRIDABLE)}
_N_COLUMNS: Final = len(_RECORD_COLUMNS) + len(_DEV_OVERRIDABLE)


def _field_names(mesg_num: int) -> dict[int, str]:
    return {num: f.name for num, f in profile.MESSAGE_TYPES[mesg_num].fields.items()}


_NATIVE_NAMES: Final = {
    _MESG_RECORD: _field_names(_MESG_RECORD),
    _MESG_SESSION: _field_names(_MESG_SESSION),
    _MESG_LAP: _field_names(_MESG_LAP),
}

_NON_ACTIVITY_REASONS: Final = {
    "workout": "not an activity: workout definition, no recorded samples",
    "course": "not an activity: course (planned route), no recorded samples",
    "schedules": "not an activity: training schedule, no recorded samples",
}


@dataclass
class _FitContent:
    """What one pass over the file collected."""

    file_type: Any = None
    rows: list[list[float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    laps: list[dict[str, Any]] = field(default_factory=list)
    sport: dict[str, Any] = field(default_factory=dict)
    activity: dict[str, Any] = field(default_factory=dict)
    file_id: dict[str, Any] = field(default_factory=dict)
    creator: dict[str, Any] = field(default_factory=dict)
    untimed: int = 0  # records without an absolute timestamp (missing, or FIT "system time")
    crc_mismatch: bool = False
    damage: str | None = None  # set when decoding stopped early but the content is kept


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _message_dict(message: fitdecode.FitDataMessage) -> dict[str, Any]:
    """All named fields of a summary message; developer fields fill missing or zero natives."""
    values: dict[str, Any] = {}
    dev: dict[str, Any] = {}
    natives = _NATIVE_NAMES.get(message.global_mesg_num, {})
    for fd in message.fields:
        if fd.value is None:
            continue
        if isinstance(fd.field, DevField):
            if fd.field.native_field_num in natives:
                dev[natives[fd.field.native_field_num]] = fd.value
            continue
        values[fd.name] = fd.value
    for name, value in dev.items():
        if not values.get(name):
            values[name] = value
    return values


def _read(data: bytes) -> _FitContent:
    content = _FitContent()
    frame_count = 0
    try:
        with fitdecode.FitReader(
            io.BytesIO(data),
            check_crc=fitdecode.CrcCheck.WARN,
            error_handling=fitdecode.ErrorHandling.WARN,
        ) as reader:
            for frame in reader:
                frame_count += 1
                if isinstance(frame, fitdecode.FitCRC):
                    content.crc_mismatch |= frame.matched is False
                elif isinstance(frame, fitdecode.FitDataMessage):
                    _collect(frame, content)
    except fitdecode.FitEOFError as exc:
        raise ImportFileError(f"corrupt FIT file: unexpected end of file at byte {exc.offset + exc.got}") from None
    except fitdecode.FitHeaderError as exc:
        offset = _offset(str(exc))
        where = f" at byte {offset}" if offset is not None else ""
        raise ImportFileError(f"corrupt FIT file: invalid FIT header{where}") from None
    except fitdecode.FitError as exc:
        reason = _describe(exc)
        if content.sessions and content.times:
            content.damage = reason
        else:
            raise ImportFileError(f"corrupt FIT file: {reason}") from None
    if frame_count == 0:
        raise ImportFileError("corrupt FIT file: no FIT data")
    return content


def _offset(message: str) -> int | None:
    match = re.search(r"@ (\d+)", message)
    return int(match.group(1)) if match else None


def _describe(exc: Exception) -> str:
    """'local message 11 not defined at byte 7471' from fitdecode's 'FIT parsing error @ 7471: ...'."""
    text = str(exc)
    offset = getattr(exc, "offset", None)
    detail = text.split(": ", 1)[1] if ": " in text else text
    return f"{detail} at byte {offset}" if offset is not None and "@" in text else detail


def _collect(message: fitdecode.FitDataMessage, content: _FitContent) -> None:
    name = message.name
    if name == "record":
        _collect_record(message, content)
    elif name == "session":
        content.sessions.append(_message_dict(message))
    elif name == "lap":
        content.laps.append(_message_dict(message))
    elif name == "file_id":
        values = _message_dict(message)
        if not content.file_id:
            content.file_id = values
            content.file_type = values.get("type")
            if content.file_type not in (None, "activity"):
                raise ImportFileError(
                    _NON_ACTIVITY_REASONS.get(
                        str(content.file_type),
                        f"not an activity: FIT file type is '{content.file_type}'",
                    )
                )
    elif name == "sport" and not content.sport:
        content.sport = _message_dict(message)
    elif name == "activity" and not content.activity:
        content.activity = _message_dict(message)
    elif name == "device_info" and not content.creator:
        values = _message_dict(message)
        if values.get("device_index") in ("creator", 0):
            content.creator = values


def _collect_record(message: fitdecode.FitDataMessage, content: _FitContent) -> None:
    """One record -> one row of floats. This runs per sample, so it avoids per-field getattr."""
    row = [math.nan] * _N_COLUMNS
    timestamp: float | None = None
    for fd in message.fields:
        value = fd.value
        if value is None:
            continue
        name = fd.name
        slot = _COLUMN_INDEX.get(name)
        if slot is None:
            if name == "timestamp":
                timestamp = _epoch(value)
                continue
            # Developer fields that declare which native field they stand in for.
            if not isinstance(fd.field, DevField) or fd.field.native_field_num is None:
                continue
            slot = _DEV_INDEX.get(_NATIVE_NAMES[_MESG_RECORD].get(fd.field.native_field_num, ""))
            if slot is None:
                continue
        if isinstance(value, (int, float)):
            row[slot] = value
    if timestamp is None:
        content.untimed += 1
    else:
        content.times.append(timestamp)
        content.rows.append(row)


# --------------------------------------------------------------------------------------------
# Samples -> columns
# --------------------------------------------------------------------------------------------


def _columns(content: _FitContent) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Record rows -> (epoch seconds, Streams channel arrays), unsorted and unmerged."""
    t = np.asarray(content.times, dtype=np.float64)
    if not content.rows:
        return t, {}
    table = np.asarray(content.rows, dtype=np.float64)

    def col(name: str) -> np.ndarray:
        return table[:, _COLUMN_INDEX[name]]

    def prefer(primary: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(primary), fallback, primary)

    def with_dev(name: str, native: np.ndarray) -> np.ndarray:
        dev = table[:, _DEV_INDEX[name]]
        use_dev = (np.isnan(native) | (native == 0)) & ~np.isnan(dev)
        return np.where(use_dev, dev, native)

    lat = col("position_lat") * SEMICIRCLE_DEG
    lon = col("position_long") * SEMICIRCLE_DEG
    null_island = (lat == 0) & (lon == 0)  # placeholder fixes some writers emit
    lat[null_island] = np.nan
    lon[null_island] = np.nan
    cadence = col("cadence") + np.nan_to_num(col("fractional_cadence"))
    channels = {
        "heart_rate": with_dev("heart_rate", col("heart_rate")),
        "latitude": lat,
        "longitude": lon,
        "altitude_m": prefer(col("enhanced_altitude"), col("altitude")),
        "speed_m_s": with_dev("speed", prefer(col("enhanced_speed"), col("speed"))),
        "power_w": with_dev("power", col("power")),
        "cadence": with_dev("cadence", cadence),
        "distance_m": with_dev("distance", col("distance")),
        "temperature_c": col("temperature"),
    }
    return t, {name: values for name, values in channels.items() if not np.isnan(values).all()}


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


@dataclass
class _Span:
    """One session's place in time and its summary fields."""

    summary: dict[str, Any]
    start: float | None
    elapsed: float | None


def _span(summary: dict[str, Any]) -> _Span:
    start = _epoch(summary.get("start_time"))
    stamp = _epoch(summary.get("timestamp"))
    elapsed = _number(summary.get("total_elapsed_time"))
    if elapsed is None:
        elapsed = _number(summary.get("total_timer_time"))
    if stamp is not None and elapsed is not None and (start is None or start + elapsed > stamp + CONSISTENCY_SLACK_S):
        start = stamp - elapsed
    return _Span(summary, start, elapsed)


def _sum(values: Iterable[Any]) -> float | None:
    numbers = [n for v in values if (n := _number(v)) is not None]
    return sum(numbers) if numbers else None


def _max(values: Iterable[Any]) -> float | None:
    numbers = [n for v in values if (n := _number(v)) is not None]
    return max(numbers) if numbers else None


def _weighted(laps: list[dict[str, Any]], key: str) -> float | None:
    pairs = [
        (value, weight)
        for lap in laps
        if (value := _number(lap.get(key))) is not None
        and (weight := _number(lap.get("total_timer_time"))) is not None
        and weight > 0
    ]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _session_from_laps(laps: list[dict[str, Any]], sport: Mapping[str, Any]) -> dict[str, Any]:
    """A session-shaped summary built from lap messages, for files without a session."""
    spans = [_span(lap) for lap in laps]
    starts = [s.start for s in spans if s.start is not None]
    ends = [s.start + s.elapsed for s in spans if s.start is not None and s.elapsed is not None]
    summary: dict[str, Any] = {
        "sport": laps[0].get("sport", sport.get("sport")),
        "sub_sport": laps[0].get("sub_sport", sport.get("sub_sport")),
        "total_timer_time": _sum(lap.get("total_timer_time") for lap in laps),
        "total_distance": _sum(lap.get("total_distance") for lap in laps),
        "total_calories": _sum(lap.get("total_calories") for lap in laps),
        "total_ascent": _sum(lap.get("total_ascent") for lap in laps),
        "max_heart_rate": _max(lap.get("max_heart_rate") for lap in laps),
        "max_power": _max(lap.get("max_power") for lap in laps),
        "enhanced_max_speed": _max(lap.get("enhanced_max_speed", lap.get("max_speed")) for lap in laps),
        "avg_heart_rate": _weighted(laps, "avg_heart_rate"),
        "avg_power": _weighted(laps, "avg_power"),
        "avg_cadence": _weighted(laps, "avg_cadence"),
    }
    if starts:
        summary["start_time"] = datetime.fromtimestamp(min(starts), UTC)
        if ends:
            summary["total_elapsed_time"] = max(ends) - min(starts)
    return summary


# --------------------------------------------------------------------------------------------
# Activity assembly
# --------------------------------------------------------------------------------------------


def _first(summary: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        number = _number(summary.get(key))
        if number is not None:
            return number
    return None


def _avg_cadence(summary: Mapping[str, Any]) -> float | None:
    whole = _first(summary, "avg_cadence", "avg_running_cadence")
    if whole is None:
        return None
    return whole + (_number(summary.get("avg_fractional_cadence")) or 0.0)


def _positive(summary: Mapping[str, Any], *keys: str) -> float | None:
    """First positive value among ``keys`` (an enhanced field may be 0 next to a real plain one)."""
    numbers = [n for key in keys if (n := _number(summary.get(key))) is not None]
    return next((n for n in numbers if n > 0), numbers[0] if numbers else None)


def _summary_fields(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Activity fields straight from a session message (None where the file is silent).

    A zero average power or cadence means the sensor was absent (COROS writes zeros), so the
    whole group is dropped instead of claiming a 0 W ride.
    """
    duration = _first(summary, "total_elapsed_time", "total_timer_time")
    moving = _first(summary, "total_moving_time", "total_timer_time")
    distance = _first(summary, "total_distance")
    avg_speed = _positive(summary, "enhanced_avg_speed", "avg_speed")
    if not avg_speed and distance and moving:
        avg_speed = distance / moving
    avg_power = _first(summary, "avg_power")
    has_power = bool(avg_power)
    avg_cadence = _avg_cadence(summary)
    return {
        "duration_s": duration,
        "moving_time_s": moving,
        "distance_m": distance,
        "elevation_gain_m": _first(summary, "total_ascent"),
        "calories_kcal": _first(summary, "total_calories"),
        "avg_hr_bpm": _first(summary, "avg_heart_rate"),
        "max_hr_bpm": _first(summary, "max_heart_rate"),
        "avg_power_w": avg_power if has_power else None,
        "max_power_w": _first(summary, "max_power") if has_power else None,
        "normalized_power_w": _first(summary, "normalized_power") if has_power else None,
        "avg_cadence_rpm": avg_cadence or None,
        "avg_speed_m_s": avg_speed,
        "max_speed_m_s": _positive(summary, "enhanced_max_speed", "max_speed"),
    }


def _device_name(content: _FitContent) -> str | None:
    source = {**content.creator, **content.file_id}
    manufacturer = source.get("manufacturer")
    maker = manufacturer.replace("_", " ").title() if isinstance(manufacturer, str) else None
    product = source.get("product_name") or content.creator.get("product_name")
    if not isinstance(product, str):
        garmin = source.get("garmin_product")
        product = garmin.replace("_", " ") if isinstance(garmin, str) else None
    if product and maker and maker.lower().split()[0] not in product.lower():
        return f"{maker} {product}"
    return product or maker


def _utc_offset(activity: Mapping[str, Any]) -> int | None:
    local, stamp = _epoch(activity.get("local_timestamp")), _epoch(activity.get("timestamp"))
    if local is None or stamp is None:
        return None
    return round((local - stamp) / 900.0) * 900  # offsets are whole quarter hours


def _notes(content: _FitContent, kept: int, dropped: int) -> tuple[str, ...]:
    notes: list[str] = []
    if content.damage:
        notes.append(
            f"file is damaged ({content.damage}); kept the {kept} samples before the damage "
            "and the file's own session totals"
        )
    if dropped:
        notes.append(f"dropped {dropped} samples with timestamps outside the activity")
    if content.crc_mismatch:
        notes.append("FIT checksum mismatch: the file may be damaged")
    return tuple(notes)


def _time_window(spans: list[_Span]) -> tuple[float, float]:
    """The time range samples may fall in, from the sessions that know where they are."""
    starts = [s.start for s in spans if s.start is not None]
    ends = [s.start + s.elapsed for s in spans if s.start is not None and s.elapsed is not None]
    lo = min(starts) - SESSION_SLACK_S if starts else -math.inf
    hi = max(ends) + SESSION_SLACK_S if ends else math.inf
    return lo, hi


def _activity(
    content: _FitContent,
    summary: Mapping[str, Any],
    start: float,
    streams: Streams | None,
    ids: tuple[str, str | None],
) -> Activity:
    fields = _summary_fields(summary)
    if streams is not None and content.damage is None:
        for key, value in derive.summarize(streams).items():
            if fields.get(key) is None:
                fields[key] = value
    sport = summary.get("sport", content.sport.get("sport"))
    sub_sport = summary.get("sub_sport", content.sport.get("sub_sport"))
    name = summary.get("sport_profile_name") or content.sport.get("name")
    return Activity(
        source="file",
        external_id=ids[0],
        parent_external_id=ids[1],
        sport=fit_sport(sport, sub_sport) if sport is not None else Sport.OTHER,
        name=name if isinstance(name, str) else None,
        start_time=datetime.fromtimestamp(start, UTC),
        utc_offset_s=_utc_offset(content.activity),
        device_name=_device_name(content),
        trainer=fit_is_indoor(sub_sport),
        **fields,
    )


def _build(content: _FitContent, external_id: str) -> list[ImportedActivity]:
    t, channels = _columns(content)
    summaries = content.sessions
    if not summaries and content.laps:
        summaries = [_session_from_laps(content.laps, content.sport)]
    spans = [_span(summary) for summary in summaries]

    lo, hi = _time_window(spans)
    keep = (t >= max(lo, SYSTEM_TIME_LIMIT_S)) & (t <= hi)
    dropped = int((~keep).sum()) + content.untimed
    t, channels = derive.merge_equal_times(t[keep], {k: v[keep] for k, v in channels.items()})
    if not spans:
        if t.size == 0:
            raise ImportFileError("not an activity: FIT file has no sessions, laps or samples")
        spans = [_Span({}, float(t[0]), float(t[-1] - t[0]))]
    first_sample = float(t[0]) if t.size else None
    starts = [span.start if span.start is not None else first_sample for span in spans]
    if any(start is None for start in starts):
        raise ImportFileError("corrupt FIT file: activity has no usable timestamps")
    legs = sorted(zip(starts, (span.summary for span in spans), strict=True), key=lambda leg: leg[0])

    # Every sample belongs to the last leg starting at or before it (earlier ones to the first).
    leg_starts = np.array([leg[0] for leg in legs], dtype=np.float64)
    owner = np.clip(np.searchsorted(leg_starts, t, side="right") - 1, 0, None)
    bounds = np.searchsorted(owner, np.arange(len(legs) + 1))
    notes = _notes(content, int(t.size), dropped)
    multisport = len(legs) > 1

    results: list[ImportedActivity] = []
    for index, (leg_start, summary) in enumerate(legs):
        lo_i, hi_i = int(bounds[index]), int(bounds[index + 1])
        start = float(leg_start)
        streams = None
        if hi_i > lo_i:
            start = min(start, float(t[lo_i]))  # a leg starts no later than its first sample
            leg_channels = {name: values[lo_i:hi_i] for name, values in channels.items()}
            streams = Streams(
                time_s=t[lo_i:hi_i] - start,
                **{name: values for name, values in leg_channels.items() if not np.isnan(values).all()},
            )
        ids = (f"{external_id}-{index + 1}", external_id) if multisport else (external_id, None)
        activity = _activity(content, summary, start, streams, ids)
        results.append(ImportedActivity(activity=activity, streams=streams, warnings=notes))
    return results


def parse_fit(data: bytes, external_id: str) -> list[ImportedActivity]:
    """Parse a FIT file into one ImportedActivity per session (multisport legs are split).

    Raises ImportFileError for corrupt files and for FIT files that are not activities
    (workouts, courses, monitoring/wellness data, settings).
    """
    content = _read(data)
    return _build(content, external_id)

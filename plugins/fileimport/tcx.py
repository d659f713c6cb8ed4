"""Garmin Training Center (TCX) files, read with the standard library's ElementTree.

Why not tcxreader: it only reads from a filesystem path (uploads arrive as in-memory, often
gunzipped bytes), returns naive datetimes, drops track points without GPS by default (every
indoor TCX), recomputes lap durations from track points instead of reading TotalTimeSeconds,
and merges all <Activity> elements into one. The format is small enough to read directly, and
the bytes have already passed the DTD/size checks in :mod:`.xmlsafe`.

Totals come from the laps (TotalTimeSeconds is timer time, so it gives the moving time;
distance, calories and heart rate are per lap); elevation gain, which TCX does not carry, is
computed from the altitude samples. A <MultiSportSession> becomes one activity per leg,
grouped by ``parent_external_id`` like FIT multisport files.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np

from trainer.normalized import Activity, ImportedActivity, Sport, Streams

from . import derive
from .errors import ImportFileError
from .sports import tcx_sport
from .xmlsafe import check_xml

__all__ = ["parse_tcx"]

# Trackpoint child (or TPX extension) local name -> stream channel.
_POINT_VALUES: Final = {
    "AltitudeMeters": "altitude_m",
    "DistanceMeters": "distance_m",
    "Cadence": "cadence",
    "Speed": "speed_m_s",
    "RunCadence": "cadence",
    "Watts": "power_w",
}
_CHANNELS: Final = ("latitude", "longitude", "heart_rate", *dict.fromkeys(_POINT_VALUES.values()))


def _local(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def _children(element: ET.Element | None, name: str) -> Iterator[ET.Element]:
    if element is not None:
        yield from (child for child in element if _local(child) == name)


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    return next(_children(element, name), None)


def _float(element: ET.Element | None) -> float | None:
    if element is None or element.text is None:
        return None
    try:
        number = float(element.text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _value(element: ET.Element | None) -> float | None:
    """Numbers wrapped as <X><Value>n</Value></X> (heart rates)."""
    return _float(_child(element, "Value"))


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _descendant_value(element: ET.Element, name: str) -> float | None:
    for node in element.iter():
        if _local(node) == name:
            return _float(node)
    return None


@dataclass
class _Lap:
    start: float | None
    timer_s: float | None
    distance_m: float | None
    calories: float | None
    avg_hr: float | None
    max_hr: float | None
    max_speed: float | None
    cadence: float | None
    avg_watts: float | None
    max_watts: float | None


@dataclass
class _Leg:
    sport: Sport
    activity_id: float | None
    laps: list[_Lap] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)
    device: str | None = None


def _read_point(point: ET.Element, leg: _Leg) -> None:
    when: float | None = None
    row: dict[str, float] = {}
    for child in point:
        name = _local(child)
        if name == "Time":
            when = _time(child.text)
        elif name == "Position":
            lat, lon = _float(_child(child, "LatitudeDegrees")), _float(_child(child, "LongitudeDegrees"))
            if lat is not None and lon is not None:
                row["latitude"], row["longitude"] = lat, lon
        elif name == "HeartRateBpm":
            if (hr := _value(child)) is not None:
                row["heart_rate"] = hr
        elif name == "Extensions":
            for node in child.iter():
                channel = _POINT_VALUES.get(_local(node))
                if channel is not None and (number := _float(node)) is not None:
                    row[channel] = number
        elif (channel := _POINT_VALUES.get(name)) is not None and (number := _float(child)) is not None:
            row[channel] = number
    if when is not None:
        leg.times.append(when)
        leg.rows.append(row)


def _read_lap(lap: ET.Element, leg: _Leg) -> None:
    extensions = _child(lap, "Extensions")
    leg.laps.append(
        _Lap(
            start=_time(lap.get("StartTime")),
            timer_s=_float(_child(lap, "TotalTimeSeconds")),
            distance_m=_float(_child(lap, "DistanceMeters")),
            calories=_float(_child(lap, "Calories")),
            avg_hr=_value(_child(lap, "AverageHeartRateBpm")),
            max_hr=_value(_child(lap, "MaximumHeartRateBpm")),
            max_speed=_float(_child(lap, "MaximumSpeed")),
            cadence=_float(_child(lap, "Cadence"))
            or (_descendant_value(extensions, "AvgRunCadence") if extensions is not None else None),
            avg_watts=_descendant_value(extensions, "AvgWatts") if extensions is not None else None,
            max_watts=_descendant_value(extensions, "MaxWatts") if extensions is not None else None,
        )
    )
    for track in _children(lap, "Track"):
        for point in _children(track, "Trackpoint"):
            _read_point(point, leg)


def _read_activity(element: ET.Element) -> _Leg:
    id_element = _child(element, "Id")
    leg = _Leg(
        sport=tcx_sport(element.get("Sport")),
        activity_id=_time(id_element.text if id_element is not None else None),
    )
    for lap in _children(element, "Lap"):
        _read_lap(lap, leg)
    creator = _child(element, "Creator")
    name = _child(creator, "Name")
    leg.device = name.text.strip() if name is not None and name.text else None
    return leg


def _legs(root: ET.Element) -> tuple[list[_Leg], bool]:
    """All activities of the file, and whether they are legs of one multisport session."""
    activities = _child(root, "Activities")
    legs: list[_Leg] = []
    multisport = False
    for element in activities if activities is not None else ():
        kind = _local(element)
        if kind == "Activity":
            legs.append(_read_activity(element))
        elif kind == "MultiSportSession":
            multisport = True
            for part in element:
                if _local(part) not in ("FirstSport", "NextSport"):
                    continue
                for transition in _children(part, "Transition"):
                    leg = _Leg(sport=Sport.TRANSITION, activity_id=_time(transition.get("StartTime")))
                    _read_lap(transition, leg)
                    legs.append(leg)
                for activity in _children(part, "Activity"):
                    legs.append(_read_activity(activity))
    return [leg for leg in legs if leg.laps or leg.times], multisport


def _weighted(laps: list[_Lap], attribute: str) -> float | None:
    pairs = [(v, lap.timer_s) for lap in laps if (v := getattr(lap, attribute)) is not None and lap.timer_s]
    total = sum(w for _, w in pairs if w)
    return sum(v * w for v, w in pairs if w) / total if total else None


def _sum(values: list[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) if numbers else None


def _max(values: list[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return max(numbers) if numbers else None


def _build(leg: _Leg, external_id: str, parent: str | None) -> ImportedActivity:
    lap_starts = [lap.start for lap in leg.laps if lap.start is not None]
    start = min(lap_starts) if lap_starts else leg.activity_id
    if start is None and leg.times:
        start = leg.times[0]
    if start is None:
        raise ImportFileError("corrupt TCX: activity has no start time")
    streams = None
    if leg.times:
        columns = {
            name: np.array([row.get(name, math.nan) for row in leg.rows], dtype=np.float64) for name in _CHANNELS
        }
        t, columns = derive.merge_equal_times(np.asarray(leg.times, dtype=np.float64), columns)
        start = min(start, float(t[0]))
        columns = {k: v for k, v in columns.items() if not np.isnan(v).all()}
        streams = Streams(time_s=t - start, **columns)

    laps = leg.laps
    lap_ends = [lap.start + lap.timer_s for lap in laps if lap.start is not None and lap.timer_s is not None]
    end = max([*lap_ends, *(leg.times[-1:])], default=None)
    moving = _sum([lap.timer_s for lap in laps])
    distance = _sum([lap.distance_m for lap in laps])
    fields: dict[str, float | None] = {
        "duration_s": end - start if end is not None else moving,
        "moving_time_s": moving,
        "distance_m": distance,
        "calories_kcal": _sum([lap.calories for lap in laps]),
        "avg_hr_bpm": _weighted(laps, "avg_hr"),
        "max_hr_bpm": _max([lap.max_hr for lap in laps]),
        "max_speed_m_s": _max([lap.max_speed for lap in laps]),
        "avg_cadence_rpm": _weighted(laps, "cadence"),
        "avg_power_w": _weighted(laps, "avg_watts"),
        "max_power_w": _max([lap.max_watts for lap in laps]),
        "avg_speed_m_s": distance / moving if distance and moving else None,
    }
    if streams is not None:
        for key, value in derive.summarize(streams).items():
            if fields.get(key) is None:
                fields[key] = value
    activity = Activity(
        source="file",
        external_id=external_id,
        parent_external_id=parent,
        sport=leg.sport,
        start_time=datetime.fromtimestamp(start, UTC),
        device_name=leg.device,
        **fields,
    )
    return ImportedActivity(activity=activity, streams=streams)


def parse_tcx(data: bytes, external_id: str) -> list[ImportedActivity]:
    """Parse a TCX file into one ImportedActivity per <Activity> (multisport legs grouped)."""
    check_xml(data, "TCX")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ImportFileError(f"corrupt TCX: {exc}") from None
    legs, multisport = _legs(root)
    if not legs:
        if _child(root, "Courses") is not None:
            raise ImportFileError("not an activity: TCX course (planned route), no recorded samples")
        if _child(root, "Workouts") is not None:
            raise ImportFileError("not an activity: workout definition, no recorded samples")
        raise ImportFileError("empty TCX: no laps or track points")
    if len(legs) == 1:
        return [_build(legs[0], external_id, None)]
    parent = external_id if multisport else None
    return [_build(leg, f"{external_id}-{i + 1}", parent) for i, leg in enumerate(legs)]

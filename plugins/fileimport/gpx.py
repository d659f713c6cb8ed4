"""GPX tracks decoded with gpxpy.

GPX has no totals, laps or sport vocabulary: a file becomes one activity built from every
*timed* track point of every track and segment, ordered by time (segment gaps show up as pauses,
which is how Garmin "ACTIVE LOG #n" tracks split one outing). Distance, elevation gain, moving
time and heart-rate figures are computed from the points.

Track points without a usable timestamp cannot be placed in time: a file made only of those is
a planned route, not a recording, and is refused. GPSBabel writes 1901-12-13T20:45:52Z (the
32-bit Unix epoch minimum) for "unknown", so times before 1980 (the GPS epoch) count as missing.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime
from typing import Final

import gpxpy
import gpxpy.gpx
import numpy as np

from trainer.normalized import Activity, ImportedActivity, Streams

from . import derive
from .errors import ImportFileError
from .sports import gpx_sport
from .xmlsafe import check_xml, decode_xml

__all__ = ["parse_gpx"]

_EARLIEST: Final = datetime(1980, 1, 6, tzinfo=UTC)  # GPS epoch
_LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)

# Extension element local names (Garmin TrackPointExtension v1/v2, Cluetrust gpxdata, ...).
_EXTENSION_CHANNELS: Final = {
    "hr": "heart_rate",
    "heartrate": "heart_rate",
    "cad": "cadence",
    "cadence": "cadence",
    "atemp": "temperature_c",
    "temp": "temperature_c",
    "power": "power_w",
    "watts": "power_w",
    "speed": "speed_m_s",
}
_CHANNELS: Final = ("latitude", "longitude", "altitude_m", *sorted(set(_EXTENSION_CHANNELS.values())))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].lower()


def _extension_values(point: gpxpy.gpx.GPXTrackPoint, row: dict[str, float]) -> None:
    stack = list(point.extensions)
    while stack:
        element = stack.pop()
        channel = _EXTENSION_CHANNELS.get(_local(element.tag))
        if channel is not None and element.text:
            with contextlib.suppress(ValueError):
                row[channel] = float(element.text)
        stack.extend(list(element))


def _time(point: gpxpy.gpx.GPXTrackPoint) -> float | None:
    when = point.time
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # GPX times are UTC by specification
    if not _EARLIEST <= when < _LATEST:
        return None
    return when.timestamp()


def _creator(gpx: gpxpy.gpx.GPX) -> str | None:
    creator = (gpx.creator or "").split(" - http", 1)[0].strip()
    return creator or None


def parse_gpx(data: bytes, external_id: str) -> list[ImportedActivity]:
    """Parse a GPX file into a single ImportedActivity (see module docstring)."""
    check_xml(data, "GPX")
    try:
        gpx = gpxpy.parse(decode_xml(data, "GPX"))
    except gpxpy.gpx.GPXException as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ImportFileError(f"corrupt GPX: {first_line}") from None

    times: list[float] = []
    rows: list[dict[str, float]] = []
    untimed = 0
    named: str | None = None
    segments: list[float] = []
    segment_number = 0.0
    for track in gpx.tracks:
        timed_before = len(times)
        for segment in track.segments:
            segment_number += 1
            for point in segment.points:
                when = _time(point)
                if when is None:
                    untimed += 1
                    continue
                row = {"latitude": point.latitude, "longitude": point.longitude}
                if point.elevation is not None:
                    row["altitude_m"] = point.elevation
                if point.extensions:
                    _extension_values(point, row)
                times.append(when)
                rows.append(row)
                segments.append(segment_number)
        if named is None and len(times) > timed_before:
            named = track.name
    if not times:
        if untimed:
            raise ImportFileError(
                "not an activity: GPX track points have no valid timestamps (a route, not a recording)"
            )
        if any(route.points for route in gpx.routes):
            raise ImportFileError("not an activity: GPX holds a planned route, no recorded track")
        raise ImportFileError("empty GPX: no track points")

    columns = {name: np.array([row.get(name, math.nan) for row in rows], dtype=np.float64) for name in _CHANNELS}
    columns["segment"] = np.asarray(segments, dtype=np.float64)
    t, columns = derive.merge_equal_times(np.asarray(times, dtype=np.float64), columns)
    segment_ids = columns.pop("segment")
    breaks = np.concatenate(([False], np.diff(segment_ids) != 0))
    start = float(t[0])
    columns = {name: values for name, values in columns.items() if not np.isnan(values).all()}
    if "latitude" in columns and "longitude" in columns:
        distance = derive.cumulative_distance_m(columns["latitude"], columns["longitude"], breaks)
        if distance is not None:
            columns["distance_m"] = distance
    streams = Streams(time_s=t - start, **columns)

    sport_text = next((trk.type for trk in gpx.tracks if trk.type), None)
    name = named or gpx.name
    warnings: tuple[str, ...] = ()
    if untimed:
        warnings = (f"ignored {untimed} track points without timestamps",)
    activity = Activity(
        source="file",
        external_id=external_id,
        sport=gpx_sport(sport_text),
        name=name,
        start_time=datetime.fromtimestamp(start, UTC),
        device_name=_creator(gpx),
        **derive.summarize(streams),
    )
    return [ImportedActivity(activity=activity, streams=streams, warnings=warnings)]

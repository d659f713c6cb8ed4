"""Summary numbers computed from sample streams, for files that carry no (usable) totals.

FIT session messages already hold the device's own totals and win whenever present; GPX has no
totals at all and TCX has only per-lap time/distance/HR. Everything here is vectorized numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from trainer.normalized import Streams

__all__ = [
    "MOVING_SPEED_M_S",
    "cumulative_distance_m",
    "elevation_gain_m",
    "merge_equal_times",
    "moving_time_s",
    "summarize",
    "time_weighted_mean",
]

EARTH_RADIUS_M: Final = 6_371_008.8
MOVING_SPEED_M_S: Final = 0.5
"""Below this the athlete counts as stopped (slow uphill hiking is still above it)."""
MAX_CLIMB_RATE_M_S: Final = 5.0
"""Altitude changes faster than this are sensor artefacts (barometer settling, GPS jumps)."""
ALTITUDE_DEAD_BAND_M: Final = 1.0
"""Dead band for densely sampled (<= 2 s, typically barometric) altitude."""
SPARSE_ALTITUDE_DEAD_BAND_M: Final = 5.0
"""Dead band for sparse ("smart recording", GPS-only) altitude, whose samples are noisier."""


def merge_equal_times(
    time_s: np.ndarray, columns: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sort samples by time and merge samples sharing a timestamp.

    Some writers split one instant over several records (the Strava app writes position and
    distance as two FIT records per second); a merged sample takes, per channel, the last
    non-missing value of its group.
    """
    order = np.argsort(time_s, kind="stable")
    time_s = time_s[order]
    columns = {name: values[order] for name, values in columns.items()}
    if time_s.size < 2 or (np.diff(time_s) > 0).all():
        return time_s, columns
    starts = np.flatnonzero(np.concatenate(([True], np.diff(time_s) > 0)))
    merged: dict[str, np.ndarray] = {}
    positions = np.arange(time_s.size)
    for name, values in columns.items():
        last_valid = np.where(np.isnan(values), -1, positions)
        pick = np.maximum.reduceat(last_valid, starts)
        merged[name] = np.where(pick >= 0, values[np.maximum(pick, 0)], np.nan)
    return time_s[starts], merged


def _haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def cumulative_distance_m(
    latitude: np.ndarray, longitude: np.ndarray, breaks: np.ndarray | None = None
) -> np.ndarray | None:
    """Cumulative great-circle distance along the fixes; samples without a fix repeat it.

    ``breaks[i]`` marks a sample that starts a new track segment: the jump from the previous
    fix is not travelled distance (the logger was off), so it is not counted.
    """
    fix = ~(np.isnan(latitude) | np.isnan(longitude))
    index = np.flatnonzero(fix)
    if index.size == 0:
        return None
    steps = _haversine_m(latitude[index[:-1]], longitude[index[:-1]], latitude[index[1:]], longitude[index[1:]])
    if breaks is not None and index.size > 1:
        segment = np.cumsum(breaks)
        steps[segment[index[1:]] != segment[index[:-1]]] = 0.0
    at_fix = np.concatenate(([0.0], np.cumsum(steps)))
    out = np.zeros(latitude.shape[0])
    # Each sample takes the distance of the latest fix at or before it (0 before the first).
    latest = np.searchsorted(index, np.arange(latitude.shape[0]), side="right") - 1
    has_fix = latest >= 0
    out[has_fix] = at_fix[latest[has_fix]]
    return out


def time_weighted_mean(values: np.ndarray, time_s: np.ndarray, *, skip_zero: bool = False) -> float | None:
    """Mean weighted by how long each sample stood, ignoring pauses and missing samples.

    Weights are the time to the next sample, capped at a few typical intervals so a pause
    does not let one sample dominate.
    """
    if values.size == 0:
        return None
    dt = np.diff(time_s)
    typical = float(np.median(dt)) if dt.size else 1.0
    typical = typical if typical > 0 else 1.0
    weights = np.append(np.minimum(dt, 5.0 * typical), typical)
    use = ~np.isnan(values) & (weights > 0)
    if skip_zero:
        use &= values > 0
    if not use.any():
        return None
    return float(np.average(values[use], weights=weights[use]))


def _nanmax(values: np.ndarray | None) -> float | None:
    if values is None or np.isnan(values).all():
        return None
    return float(np.nanmax(values))


def elevation_gain_m(altitude_m: np.ndarray, time_s: np.ndarray) -> float | None:
    """Total ascent through a dead band, after removing implausibly fast altitude jumps.

    A dead band (count a climb only once the altitude leaves a band around the last turning
    point) ignores sensor jitter: at 1 m on 1 Hz data it lands within ~15% of the devices' own
    total_ascent on the FIT fixtures, where summing raw or lightly smoothed steps overshoots
    by up to 3x. Sparse tracks get a wider band, as each of their samples carries independent
    GPS altitude error. The recursion is sequential, so it is a plain loop over floats.
    """
    valid = ~np.isnan(altitude_m)
    if valid.sum() < 2:
        return None
    alt, t = altitude_m[valid], time_s[valid]
    steps = np.diff(alt)
    rate_ok = np.abs(steps) <= MAX_CLIMB_RATE_M_S * np.maximum(np.diff(t), 1.0)
    profile = alt[0] + np.concatenate(([0.0], np.cumsum(np.where(rate_ok, steps, 0.0))))
    half = ALTITUDE_DEAD_BAND_M if np.median(np.diff(t)) <= 2.0 else SPARSE_ALTITUDE_DEAD_BAND_M
    # Only samples that move the band matter; drop flat runs before the Python loop.
    moving = np.concatenate(([True], np.diff(profile) != 0))
    band = float(profile[0])
    gain = 0.0
    for value in profile[moving].tolist():
        if value > band + half:
            gain += value - half - band
            band = value - half
        elif value < band - half:
            band = value + half
    return gain


def moving_time_s(time_s: np.ndarray, distance_m: np.ndarray | None, speed_m_s: np.ndarray | None) -> float | None:
    """Time spent above MOVING_SPEED_M_S, from the speed channel or else from distance."""
    if time_s.size < 2:
        return None
    dt = np.diff(time_s)
    if speed_m_s is not None and not np.isnan(speed_m_s).all():
        moving = np.nan_to_num(speed_m_s[1:]) >= MOVING_SPEED_M_S
    elif distance_m is not None and not np.isnan(distance_m).all():
        step = np.diff(np.nan_to_num(distance_m))
        with np.errstate(divide="ignore", invalid="ignore"):
            moving = (dt > 0) & (step >= MOVING_SPEED_M_S * dt)
    else:
        return None
    return float(dt[moving].sum())


def summarize(streams: Streams) -> dict[str, float | None]:
    """Activity summary fields (Activity field names) derivable from ``streams``."""
    t = np.asarray(streams.time_s)
    if t.size == 0:
        return {}
    distance = streams.distance_m
    if distance is None and streams.latitude is not None and streams.longitude is not None:
        distance = cumulative_distance_m(np.asarray(streams.latitude), np.asarray(streams.longitude))
    total_distance = _nanmax(distance)
    moving = moving_time_s(t, distance, streams.speed_m_s)
    summary: dict[str, float | None] = {
        "duration_s": float(t[-1] - t[0]),
        "moving_time_s": moving,
        "distance_m": total_distance,
        "elevation_gain_m": None if streams.altitude_m is None else elevation_gain_m(streams.altitude_m, t),
        "max_speed_m_s": _nanmax(streams.speed_m_s),
        "avg_speed_m_s": total_distance / moving if total_distance and moving else None,
    }
    for prefix, values, skip_zero in (
        ("hr_bpm", streams.heart_rate, False),
        ("power_w", streams.power_w, False),
    ):
        if values is not None:
            summary[f"avg_{prefix}"] = time_weighted_mean(values, t, skip_zero=skip_zero)
            summary[f"max_{prefix}"] = _nanmax(values)
    if streams.cadence is not None:
        # Devices (and Strava) report average cadence without the zeros of coasting.
        summary["avg_cadence_rpm"] = time_weighted_mean(streams.cadence, t, skip_zero=True)
    return summary

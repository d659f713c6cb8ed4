"""Normalized models: lenient metrics, strict identities, and vendor payloads that must fit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from trainer.normalized import (
    STREAM_CHANNELS,
    Activity,
    DailySummary,
    ImportedActivity,
    Sport,
    Streams,
)

START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)


def make(**overrides: object) -> Activity:
    values: dict[str, object] = {"source": "file", "external_id": "abc", "start_time": START}
    values.update(overrides)
    return Activity(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Activity
# --------------------------------------------------------------------------------------------


def test_sport_is_a_fixed_string_vocabulary() -> None:
    assert Sport("paddle") is Sport.PADDLE
    assert Sport.TRAIL_RUN == "trail_run"
    assert len({s.value for s in Sport}) == len(Sport)
    with pytest.raises(ValueError):
        Sport("Run")  # vendor spellings are mapped by plugins, not accepted here


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("distance_m", -5.0),
        ("duration_s", float("nan")),
        ("avg_hr_bpm", 255),  # 0xFF "invalid" sentinel of a disconnected strap
        ("max_hr_bpm", 0),
        ("avg_power_w", 65_535),
        ("avg_speed_m_s", float("inf")),
        ("calories_kcal", "lots"),
        ("elevation_gain_m", -1),
        ("utc_offset_s", 20 * 3600),
        ("avg_cadence_rpm", True),
    ],
)
def test_implausible_metrics_become_none(field: str, bad: object) -> None:
    assert getattr(make(**{field: bad}), field) is None


def test_plausible_metrics_are_kept_and_coerced() -> None:
    activity = make(distance_m="1000.5", avg_hr_bpm=150, utc_offset_s=-25200.4, moving_time_s=60, duration_s=60)
    assert activity.distance_m == 1000.5
    assert activity.avg_hr_bpm == 150.0
    assert activity.utc_offset_s == -25200
    assert activity.moving_time_s == 60


def test_moving_time_longer_than_elapsed_is_dropped() -> None:
    activity = make(duration_s=100, moving_time_s=3600)
    assert activity.duration_s == 100 and activity.moving_time_s is None


def test_start_time_must_be_aware_and_is_normalized_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    activity = make(start_time=datetime(2024, 5, 1, 8, 30, tzinfo=cest))
    assert activity.start_time == START and activity.start_time.tzinfo is UTC
    with pytest.raises(ValidationError, match="timezone-aware"):
        make(start_time=datetime(2024, 5, 1, 8, 30))


def test_identity_fields_are_strict() -> None:
    with pytest.raises(ValidationError):
        make(source="Garmin Connect")
    with pytest.raises(ValidationError):
        make(external_id="")
    with pytest.raises(ValidationError):
        make(unknown_field=1)
    activity = make()
    with pytest.raises(ValidationError):
        activity.distance_m = 5  # type: ignore[misc]


def test_garmin_activity_payload_fits() -> None:
    # Shape from the Garmin Activity API (vendors.md); activityId may arrive as a number.
    payload = {
        "activityId": 5001968355,
        "activityName": "Olathe RUNNING",
        "startTimeInSeconds": 1452470400,
        "startTimeOffsetInSeconds": 0,
        "durationInSeconds": 11580,
        "distanceInMeters": 519818.125,
        "averageSpeedInMetersPerSecond": 2.889,
        "averageHeartRateInBeatsPerMinute": 144,
        "maxHeartRateInBeatsPerMinute": 159,
        "activeKilocalories": 448,
        "deviceName": "Garmin fenix 8",
        "manual": False,
    }
    activity = Activity(
        source="garmin",
        external_id=payload["activityId"],
        sport=Sport.RUN,
        name=payload["activityName"],
        start_time=datetime.fromtimestamp(payload["startTimeInSeconds"], UTC),
        utc_offset_s=payload["startTimeOffsetInSeconds"],
        duration_s=payload["durationInSeconds"],
        distance_m=payload["distanceInMeters"],
        avg_speed_m_s=payload["averageSpeedInMetersPerSecond"],
        avg_hr_bpm=payload["averageHeartRateInBeatsPerMinute"],
        max_hr_bpm=payload["maxHeartRateInBeatsPerMinute"],
        calories_kcal=payload["activeKilocalories"],
        device_name=payload["deviceName"],
        manual=payload["manual"],
    )
    assert activity.external_id == "5001968355"
    assert activity.start_time == datetime(2016, 1, 11, tzinfo=UTC)


def test_strava_activity_payload_fits() -> None:
    payload = {
        "id": 11600000001,
        "name": "Lunch Ride",
        "sport_type": "Ride",
        "start_date": "2024-05-19T12:00:00Z",
        "utc_offset": 7200.0,
        "distance": 42195.3,
        "moving_time": 5400,
        "elapsed_time": 6000,
        "total_elevation_gain": 512.0,
        "average_speed": 7.81,
        "max_speed": 16.2,
        "average_heartrate": 141.2,
        "max_heartrate": 178.0,
        "average_cadence": 86.4,
        "average_watts": 201.4,
        "weighted_average_watts": 228,
        "calories": 1102.0,
        "trainer": False,
        "manual": False,
        "device_name": "Garmin Edge 540",
    }
    activity = Activity(
        source="strava",
        external_id=payload["id"],
        sport=Sport.RIDE,
        name=payload["name"],
        start_time=datetime.fromisoformat(payload["start_date"]),
        utc_offset_s=payload["utc_offset"],
        duration_s=payload["elapsed_time"],
        moving_time_s=payload["moving_time"],
        distance_m=payload["distance"],
        elevation_gain_m=payload["total_elevation_gain"],
        avg_speed_m_s=payload["average_speed"],
        max_speed_m_s=payload["max_speed"],
        avg_hr_bpm=payload["average_heartrate"],
        max_hr_bpm=payload["max_heartrate"],
        avg_cadence_rpm=payload["average_cadence"],
        avg_power_w=payload["average_watts"],
        normalized_power_w=payload["weighted_average_watts"],
        calories_kcal=payload["calories"],
        trainer=payload["trainer"],
        manual=payload["manual"],
        device_name=payload["device_name"],
    )
    assert activity.utc_offset_s == 7200
    assert activity.normalized_power_w == 228


def test_multisport_leg_carries_its_group() -> None:
    leg = make(external_id="abc-2", parent_external_id="abc", sport=Sport.TRANSITION)
    assert leg.parent_external_id == "abc"


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


def test_streams_convert_to_float_and_sanitize_samples() -> None:
    streams = Streams(
        time_s=[0, 1, 2, 2, 5],
        heart_rate=[0, 120, 255, np.nan, 130],  # 0 and 255 are dropout/invalid markers
        latitude=[46.0, 91.0, -46.0, 0.0, np.inf],
        power_w=[0, 250, -3, 3500, 400],
    )
    assert streams.time_s.dtype == np.float64
    np.testing.assert_array_equal(streams.heart_rate, [np.nan, 120, np.nan, np.nan, 130])
    np.testing.assert_array_equal(streams.latitude, [46.0, np.nan, -46.0, 0.0, np.nan])
    np.testing.assert_array_equal(streams.power_w, [0, 250, np.nan, np.nan, 400])
    assert streams.altitude_m is None
    assert len(streams) == 5
    assert list(streams.channels()) == ["heart_rate", "latitude", "power_w"]


def test_streams_do_not_alias_or_allow_mutation() -> None:
    hr = np.array([100.0, 300.0])
    streams = Streams(time_s=[0.0, 1.0], heart_rate=hr)
    assert hr[1] == 300.0  # the caller's array is untouched by sanitizing
    with pytest.raises(ValueError):
        streams.heart_rate[0] = 1.0
    with pytest.raises(ValueError):
        streams.time_s[0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_s": [0.0, 2.0, 1.0]}, "non-decreasing"),
        ({"time_s": [0.0, np.nan]}, "finite"),
        ({"time_s": [[0.0, 1.0]]}, "one-dimensional"),
        ({"time_s": [0.0, 1.0], "heart_rate": [100.0]}, "samples"),
    ],
)
def test_streams_reject_structural_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Streams(**kwargs)  # type: ignore[arg-type]


def test_select_and_window() -> None:
    streams = Streams(time_s=[10.0, 11.0, 12.0, 13.0], heart_rate=[1e2, 101, 102, 103], power_w=[1, 2, 3, 4])
    only_hr = streams.select({"heart_rate"})
    assert list(only_hr.channels()) == ["heart_rate"]
    leg = streams.window(1, 3, time_origin_s=11.0)
    np.testing.assert_array_equal(leg.time_s, [0.0, 1.0])
    np.testing.assert_array_equal(leg.power_w, [2, 3])
    with pytest.raises(ValueError, match="unknown stream channel"):
        streams.select({"watts"})


def test_channel_specs_have_units() -> None:
    assert all(spec.unit and spec.lo < spec.hi for spec in STREAM_CHANNELS.values())


# --------------------------------------------------------------------------------------------
# ImportedActivity and DailySummary
# --------------------------------------------------------------------------------------------


def test_imported_activity_drops_empty_streams() -> None:
    empty = ImportedActivity(activity=make(), streams=Streams(time_s=np.zeros(0)))
    assert empty.streams is None
    full = ImportedActivity(activity=make(), streams=Streams(time_s=[0.0]), warnings=("note",))
    assert full.streams is not None and full.warnings == ("note",)


def test_garmin_daily_pieces_merge_into_one_day() -> None:
    dailies = DailySummary(
        source="garmin",
        external_id="x-67892",
        day=date(2016, 1, 12),
        steps=3305,
        resting_hr_bpm=64,
        stress_avg=-1,  # Garmin: not enough data
        stress_max=95,
        body_battery_charged=40,
        body_battery_drained=55,
    )
    assert dailies.stress_avg is None and dailies.stress_max == 95
    sleep = DailySummary(
        source="garmin",
        external_id="x-567891",
        day="2016-01-12",  # type: ignore[arg-type]
        sleep_s=11900,
        deep_sleep_s=9446,
        light_sleep_s=0,
        rem_sleep_s=2142,
        awake_s=312,
        sleep_score=87,
    )
    hrv = DailySummary(source="garmin", external_id="x473db21", day=date(2016, 1, 12), hrv_rmssd_ms=44)
    day = dailies.merged_with(sleep).merged_with(hrv)
    assert (day.steps, day.sleep_s, day.light_sleep_s, day.hrv_rmssd_ms) == (3305, 11900, 0, 44.0)
    assert day.external_id == "x-67892"
    with pytest.raises(ValueError, match="same source and day"):
        dailies.merged_with(hrv.model_copy(update={"day": date(2016, 1, 13)}))


def test_daily_summary_rejects_impossible_durations() -> None:
    summary = DailySummary(source="oura", external_id="d1", day=date(2024, 1, 1), sleep_s=90_000, steps=-4)
    assert summary.sleep_s is None and summary.steps is None

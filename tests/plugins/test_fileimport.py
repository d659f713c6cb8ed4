"""File import over every fixture, checked against values read independently from each file.

Expected numbers come from a second reader wherever possible: fitdecode's own session and record
messages for FIT, gpxpy's track points for GPX, tcxreader for TCX. Files that must be refused
have their exact one-line reason pinned, plus an independent check of *why* (file type, size).
"""

from __future__ import annotations

import functools
import gzip
import io
import itertools
import random
import struct
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fitdecode
import gpxpy
import numpy as np
import pytest
from tcxreader.tcxreader import TCXReader
from trainer_plugins.fileimport import ImportFileError, parse_activity_bytes, parse_activity_file
from trainer_plugins.fileimport import parse as parse_module

from trainer.analysis import streams_codec
from trainer.normalized import ImportedActivity, Sport

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIT = FIXTURES / "fit"
GPX = FIXTURES / "gpx"
TCX = FIXTURES / "tcx"

# fitdecode warns about the odd field sizes of the COROS file; the importer filters those at
# import time, but pytest resets warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:fitdecode")


@functools.cache
def imported(path: Path) -> list[ImportedActivity] | ImportFileError:
    try:
        return parse_activity_file(path)
    except ImportFileError as exc:
        return exc


def ok(path: Path) -> list[ImportedActivity]:
    result = imported(path)
    assert not isinstance(result, ImportFileError), f"{path.name} refused: {result}"
    return result


# --------------------------------------------------------------------------------------------
# Independent FIT reading (fitdecode directly, no code from the importer)
# --------------------------------------------------------------------------------------------


@dataclass
class FitFacts:
    file_type: Any
    sessions: list[dict[str, Any]]
    record_times: list[datetime]
    has_position: bool
    has_heart_rate: bool
    error: Exception | None


@functools.cache
def fit_facts(path: Path) -> FitFacts:
    facts = FitFacts(None, [], [], False, False, None)
    try:
        with fitdecode.FitReader(str(path)) as reader:
            for frame in reader:
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                if frame.name == "file_id" and facts.file_type is None:
                    facts.file_type = frame.get_value("type", fallback=None)
                elif frame.name == "session":
                    facts.sessions.append({f.name: f.value for f in frame.fields if f.value is not None})
                elif frame.name == "record":
                    when = frame.get_value("timestamp", fallback=None)
                    if when is not None:
                        facts.record_times.append(when)
                    facts.has_position |= frame.get_value("position_lat", fallback=None) is not None
                    facts.has_heart_rate |= frame.get_value("heart_rate", fallback=None) is not None
    except fitdecode.FitError as exc:
        facts.error = exc
    return facts


def distinct_seconds(times: list[datetime], lo: datetime, hi: datetime) -> int:
    return len({t for t in times if lo <= t <= hi})


# Sport of each session, and the channels that must be present, per FIT activity fixture.
FIT_ACTIVITIES: dict[str, tuple[list[Sport], set[str]]] = {
    "20170518-191602-1740899583.fit": (
        [Sport.INDOOR_ROWING],
        {"heart_rate", "power_w", "distance_m", "cadence", "speed_m_s"},
    ),
    "2019-02-17-062644-ELEMNT-297E-195-0.fit": (
        [Sport.RIDE],
        {"heart_rate", "latitude", "longitude", "power_w", "cadence", "speed_m_s", "temperature_c"},
    ),
    "Edge810-Vector-2013-08-16-15-35-10.fit": (
        [Sport.RIDE],
        {"heart_rate", "latitude", "longitude", "power_w", "cadence"},
    ),
    "activity-large-fenxi2-multisport.fit": (
        [
            Sport.OTHER,
            Sport.TRANSITION,
            Sport.RUN,
            Sport.TRANSITION,
            Sport.RUN,
            Sport.TRANSITION,
            Sport.RIDE,
        ],
        {"heart_rate", "latitude", "longitude"},
    ),
    "activity-small-fenix2-run.fit": ([Sport.RUN], {"heart_rate", "latitude", "longitude", "cadence"}),
    "coros-pace-2-cycling-misaligned-fields.fit": ([Sport.RIDE], {"heart_rate", "latitude", "longitude"}),
    "garmin-edge-500-activity.fit": ([Sport.RIDE], {"heart_rate", "latitude", "longitude", "cadence"}),
    "garmin-edge-820-bike.fit": ([Sport.RIDE], {"heart_rate", "latitude", "longitude"}),
    "garmin-fenix-5-bike.fit": ([Sport.RIDE], {"heart_rate", "latitude", "longitude"}),
    "garmin-fenix-5-run.fit": ([Sport.RUN], {"heart_rate", "latitude", "longitude", "cadence"}),
    "garmin-fenix-5-walk.fit": ([Sport.WALK], {"heart_rate", "latitude", "longitude"}),
    "garmin-fr935-cr.fit": ([Sport.SWIM], {"heart_rate", "temperature_c"}),
    "sample-activity-indoor-trainer.fit": ([Sport.RIDE], {"heart_rate", "power_w", "cadence"}),
    "strava-android-app-201.10-b1218918.fit": ([Sport.RUN], {"latitude", "longitude", "distance_m"}),
}

REFUSED: dict[str, str] = {
    "activity-settings-corruptheader.fit": "corrupt FIT file: invalid FIT header at byte 771",
    "activity-settings-nodata.fit": "corrupt FIT file: unexpected end of file at byte 786",
    "activity-unexpected-eof.fit": "corrupt FIT file: unexpected end of file at byte 768",
    "MonitoringFile.fit": "not an activity: FIT file type is 'monitoring_b'",
    "WorkoutIndividualSteps.fit": "not an activity: workout definition, no recorded samples",
    "Mojstrovka.gpx": "not an activity: GPX track points have no valid timestamps (a route, not a recording)",
    "gpx_with_garmin_extension.gpx": "empty GPX: no track points",
}
GPX_ACTIVITIES = ("cerknicko-jezero.gpx", "korita-zbevnica.gpx")
TCX_ACTIVITIES = ("cross-country-skiing_activity_1.tcx", "sup_activity_1.tcx")


def test_every_fixture_is_covered() -> None:
    files = {p.name for p in FIXTURES.glob("*/*") if not p.name.startswith("LICENSE")}
    covered = set(FIT_ACTIVITIES) | set(REFUSED) | set(GPX_ACTIVITIES) | set(TCX_ACTIVITIES)
    assert files == covered
    for folder in (FIT, GPX, TCX):
        assert list(folder.glob("LICENSE-*")), f"{folder} lacks its license files"


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_one_line_reason(name: str) -> None:
    path = next(FIXTURES.glob(f"*/{name}"))
    result = imported(path)
    assert isinstance(result, ImportFileError)
    assert str(result) == REFUSED[name]
    assert "\n" not in str(result)


def test_refusals_match_what_the_files_are() -> None:
    assert fit_facts(FIT / "MonitoringFile.fit").file_type == "monitoring_b"
    workout = fit_facts(FIT / "WorkoutIndividualSteps.fit")
    assert workout.file_type == "workout" and not workout.record_times
    eof = fit_facts(FIT / "activity-unexpected-eof.fit")
    assert isinstance(eof.error, fitdecode.FitEOFError)
    assert (FIT / "activity-unexpected-eof.fit").stat().st_size == 768
    nodata = fit_facts(FIT / "activity-settings-nodata.fit")
    assert isinstance(nodata.error, fitdecode.FitEOFError)
    assert (FIT / "activity-settings-nodata.fit").stat().st_size == 786
    assert isinstance(fit_facts(FIT / "activity-settings-corruptheader.fit").error, fitdecode.FitHeaderError)
    mojstrovka = gpxpy.parse((GPX / "Mojstrovka.gpx").read_text())
    years = {p.time.year for t in mojstrovka.tracks for s in t.segments for p in s.points}
    assert years == {1901}  # GPSBabel's "unknown time" placeholder
    extension_only = gpxpy.parse((GPX / "gpx_with_garmin_extension.gpx").read_text())
    assert not extension_only.tracks and len(extension_only.waypoints) == 1


# --------------------------------------------------------------------------------------------
# FIT activities
# --------------------------------------------------------------------------------------------


def session_start(session: dict[str, Any]) -> datetime:
    return session["start_time"]


@pytest.mark.parametrize("name", sorted(FIT_ACTIVITIES))
def test_fit_activity_matches_its_session_messages(name: str) -> None:
    path = FIT / name
    result = ok(path)
    facts = fit_facts(path)
    sports, channels = FIT_ACTIVITIES[name]
    assert [r.activity.sport for r in result] == sports
    sessions = sorted(facts.sessions, key=lambda s: s["timestamp"] if "timestamp" in s else s["start_time"])
    assert len(result) == len(sessions)
    for leg, session in zip(result, sessions, strict=True):
        activity = leg.activity
        assert activity.source == "file"
        assert activity.duration_s == pytest.approx(session["total_elapsed_time"])
        assert activity.moving_time_s == pytest.approx(session.get("total_moving_time", session["total_timer_time"]))
        if session.get("total_distance"):
            assert activity.distance_m == pytest.approx(session["total_distance"], rel=1e-6)
        if "avg_heart_rate" in session:
            assert activity.avg_hr_bpm == session["avg_heart_rate"]
        if "total_ascent" in session:
            assert activity.elevation_gain_m == session["total_ascent"]
        stamp = session.get("timestamp")
        consistent = stamp is None or session_start(session) + timedelta(
            seconds=session["total_elapsed_time"]
        ) <= stamp + timedelta(seconds=60)
        if consistent:
            assert activity.start_time == session_start(session)
    streams = [leg.streams for leg in result if leg.streams is not None]
    present = set().union(*(s.channels() for s in streams))
    assert channels <= present
    assert ("latitude" in present) == facts.has_position
    assert ("heart_rate" in present) == facts.has_heart_rate
    for s in streams:
        assert np.all(np.diff(s.time_s) >= 0)
        assert s.time_s[0] >= 0


@pytest.mark.parametrize(
    "name",
    sorted(set(FIT_ACTIVITIES) - {"strava-android-app-201.10-b1218918.fit"}),
)
def test_fit_samples_are_the_distinct_record_timestamps(name: str) -> None:
    result = ok(FIT / name)
    times = fit_facts(FIT / name).record_times
    total = sum(len(leg.streams) for leg in result if leg.streams is not None)
    assert total == len(set(times))


def test_multisport_is_split_into_legs_grouped_by_the_recording() -> None:
    path = FIT / "activity-large-fenxi2-multisport.fit"
    legs = ok(path)
    parent = legs[0].activity.parent_external_id
    assert parent is not None and len(parent) == 32
    assert [leg.activity.external_id for leg in legs] == [f"{parent}-{i}" for i in range(1, 8)]
    assert all(leg.activity.parent_external_id == parent for leg in legs)
    # Leg starts are in order and do not overlap.
    starts = [leg.activity.start_time for leg in legs]
    assert starts == sorted(starts)
    for before, after in itertools.pairwise(legs):
        end = before.activity.start_time + timedelta(seconds=before.activity.duration_s or 0)
        assert end <= after.activity.start_time + timedelta(seconds=1)
    # Leg 1's session claims 08:00:01 but ends at 10:30:24 after 11738 s: the device wrote a
    # wrong start. The leg must start with its first record instead.
    first_session = min(fit_facts(path).sessions, key=lambda s: s["timestamp"])
    assert first_session["start_time"] == datetime(2015, 8, 29, 8, 0, 1, tzinfo=UTC)
    first_record = min(fit_facts(path).record_times)
    assert legs[0].activity.start_time == first_record == datetime(2015, 8, 29, 7, 14, 44, tzinfo=UTC)
    assert legs[0].activity.duration_s == pytest.approx(11738.24)
    # Local time is UTC+2 (activity.local_timestamp - timestamp).
    assert {leg.activity.utc_offset_s for leg in legs} == {7200}
    # The run and bike legs carry their own streams; the ride has no cadence sensor.
    assert len(legs[6].streams) > 3000
    assert "cadence" not in legs[6].streams.channels()


def test_elemnt_six_and_a_half_hour_ride() -> None:
    path = FIT / "2019-02-17-062644-ELEMNT-297E-195-0.fit"
    (ride,) = ok(path)
    (session,) = fit_facts(path).sessions
    activity = ride.activity
    assert activity.sport is Sport.RIDE
    assert activity.start_time == datetime(2019, 2, 17, 6, 26, 44, tzinfo=UTC)
    assert activity.duration_s == session["total_elapsed_time"] == 23595.0  # 6 h 33 min
    assert activity.moving_time_s == session["total_timer_time"] == 13471.0
    assert activity.distance_m == pytest.approx(78940.55)
    assert activity.avg_power_w == 102 and activity.normalized_power_w == 157
    assert activity.max_hr_bpm == 170
    assert activity.utc_offset_s == 8 * 3600
    assert activity.device_name == "Wahoo Fitness ELEMNT"
    streams = ride.streams
    assert len(streams) == 13471
    assert streams.time_s[-1] == pytest.approx(23591.0)  # pauses are gaps in the time axis
    assert set(streams.channels()) == {
        "heart_rate",
        "latitude",
        "longitude",
        "altitude_m",
        "speed_m_s",
        "power_w",
        "cadence",
        "distance_m",
        "temperature_c",
    }
    assert np.nanmax(streams.distance_m) == pytest.approx(78940.55, abs=5)


def test_strava_app_file_damaged_midway_keeps_summary_and_readable_samples() -> None:
    path = FIT / "strava-android-app-201.10-b1218918.fit"
    facts = fit_facts(path)
    assert isinstance(facts.error, fitdecode.FitParseError)  # fitdecode stops at byte 7471
    assert max(facts.record_times).year == 2085  # the last record read is garbage
    (run,) = ok(path)
    (session,) = facts.sessions
    assert run.activity.duration_s == session["total_elapsed_time"] == 3558.0
    assert run.activity.distance_m == pytest.approx(session["total_distance"])
    assert run.activity.start_time == session["start_time"]
    assert run.warnings and "damaged" in run.warnings[0] and "byte 7471" in run.warnings[0]
    plausible = [t for t in facts.record_times if t.year == 2021]
    assert len(run.streams) == len(set(plausible))  # position + distance records merged per second
    assert run.streams.time_s[-1] < 3558


def test_rowing_distance_power_and_speed_come_from_developer_fields() -> None:
    path = FIT / "20170518-191602-1740899583.fit"
    (row,) = ok(path)
    (session,) = fit_facts(path).sessions
    assert session["total_distance"] == 0.0 and session["Distance"] == 6163  # ErgIQ dev field
    assert row.activity.distance_m == 6163
    assert row.activity.avg_power_w == session["Avg Power"] == 368
    assert row.activity.trainer is True
    assert np.nanmax(row.streams.distance_m) == 6163
    assert np.nanmax(row.streams.power_w) == session["Max Power"]


def test_coros_zero_power_fields_mean_no_power_meter() -> None:
    (ride,) = ok(FIT / "coros-pace-2-cycling-misaligned-fields.fit")
    assert ride.activity.avg_power_w is None and ride.activity.normalized_power_w is None
    assert ride.activity.elevation_gain_m == 938


# --------------------------------------------------------------------------------------------
# GPX and TCX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GPX_ACTIVITIES)
def test_gpx_matches_gpxpy(name: str) -> None:
    gpx = gpxpy.parse((GPX / name).read_text())
    points = [p for t in gpx.tracks for s in t.segments for p in s.points]
    timed = sorted({p.time for p in points if p.time is not None})
    (result,) = ok(GPX / name)
    activity = result.activity
    assert activity.start_time == timed[0]
    assert activity.duration_s == (timed[-1] - timed[0]).total_seconds()
    assert len(result.streams) == len(timed)
    timed_segments = [s for t in gpx.tracks for s in t.segments if s.points and s.points[0].time]
    segment_length = sum(s.length_2d() for s in timed_segments)
    assert activity.distance_m == pytest.approx(segment_length, rel=0.01)
    assert activity.sport is Sport.OTHER  # GPSBabel writes no usable track type
    assert {"latitude", "longitude", "altitude_m", "distance_m"} <= set(result.streams.channels())
    assert result.streams.heart_rate is None
    untimed = len(points) - sum(1 for p in points if p.time is not None)
    assert bool(result.warnings) == bool(untimed)


@pytest.mark.parametrize("name", TCX_ACTIVITIES)
def test_tcx_matches_tcxreader(name: str) -> None:
    reference = TCXReader().read(str(TCX / name), only_gps=False)
    (result,) = ok(TCX / name)
    activity = result.activity
    assert activity.sport is Sport.OTHER  # both files say Sport="Other"
    assert activity.start_time == reference.start_time.replace(tzinfo=UTC)
    assert activity.duration_s == pytest.approx(reference.duration, abs=2)
    assert activity.distance_m == pytest.approx(reference.distance, rel=1e-6)
    assert activity.calories_kcal == reference.calories
    assert len(result.streams) == len(reference.trackpoints)
    assert np.nanmax(result.streams.heart_rate) == reference.hr_max
    assert activity.device_name == "vívoactive HR"


def test_tcx_altitude_spike_does_not_inflate_elevation_gain() -> None:
    (ski,) = ok(TCX / "cross-country-skiing_activity_1.tcx")
    altitude = ski.streams.altitude_m
    assert altitude[1] - altitude[0] > 600  # the barometer settles from 1257 m to 1913 m in 1 s
    assert ski.activity.elevation_gain_m < 200


# --------------------------------------------------------------------------------------------
# Sniffing, compression, ids, limits and robustness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", [FIT / "garmin-fenix-5-run.fit", GPX / "cerknicko-jezero.gpx", TCX / "sup_activity_1.tcx"]
)
def test_gzip_and_misleading_names_give_the_same_result(source: Path, tmp_path: Path) -> None:
    plain = ok(source)
    gz = tmp_path / (source.name + ".gz")
    gz.write_bytes(gzip.compress(source.read_bytes()))
    liar = tmp_path / "activity.txt"  # the extension says nothing; the content decides
    liar.write_bytes(source.read_bytes())
    for other in (parse_activity_file(gz), parse_activity_file(liar)):
        assert [r.activity for r in other] == [r.activity for r in plain]


def test_external_id_is_a_stable_content_hash() -> None:
    import hashlib

    data = (FIT / "garmin-fenix-5-walk.fit").read_bytes()
    first = parse_activity_bytes(data)
    again = parse_activity_bytes(bytes(data))
    assert first[0].activity.external_id == again[0].activity.external_id
    assert first[0].activity.external_id == hashlib.sha256(data).hexdigest()[:32]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello world" * 10, "unsupported file: not a FIT, GPX or TCX activity (or a gzip of one)"),
        (b"<kml><Document/></kml>", "unsupported file: XML root element <kml> is neither GPX nor TCX"),
        (
            b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>',
            "unsafe GPX: DTD and entity declarations are not accepted",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><TrainingCenterDatabase>&e;'
            b"</TrainingCenterDatabase>",
            "unsafe TCX: DTD and entity declarations are not accepted",
        ),
        (b"\x1f\x8bnot really gzip", None),
        (b'<gpx version="1.1"><rte><rtept lat="1" lon="2"/></rte></gpx>', None),
        (b"<TrainingCenterDatabase><Courses><Course/></Courses></TrainingCenterDatabase>", None),
    ],
)
def test_bad_input_is_refused_with_a_reason(data: bytes, reason: str | None) -> None:
    with pytest.raises(ImportFileError) as info:
        parse_activity_bytes(data)
    assert "\n" not in str(info.value)
    if reason is not None:
        assert str(info.value) == reason


def test_zip_archives_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.fit", (FIT / "garmin-fenix-5-run.fit").read_bytes())
    with pytest.raises(ImportFileError, match="ZIP archive"):
        parse_activity_bytes(buffer.getvalue())


def test_size_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(parse_module, "MAX_FILE_BYTES", 4096)
    big = tmp_path / "big.fit"
    big.write_bytes((FIT / "Edge810-Vector-2013-08-16-15-35-10.fit").read_bytes())
    with pytest.raises(ImportFileError, match=r"^file too large \(limit 0 MB\)$"):
        parse_activity_file(big)
    bomb = gzip.compress(b"\0" * 100_000)  # small compressed, too large once inflated
    assert len(bomb) < 4096
    with pytest.raises(ImportFileError, match="file too large"):
        parse_activity_bytes(bomb)


def test_missing_file_is_an_import_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read file"):
        parse_activity_file(tmp_path / "nope.fit")


@pytest.mark.parametrize(
    "source", [FIT / "garmin-fenix-5-run.fit", GPX / "cerknicko-jezero.gpx", TCX / "sup_activity_1.tcx"]
)
def test_damaged_files_never_escape_as_other_exceptions(source: Path) -> None:
    data = source.read_bytes()
    rng = random.Random(source.name)
    variants = [data[:cut] for cut in (1, 13, 14, 100, len(data) // 3, len(data) - 3)]
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
    for variant in variants:
        try:
            result = parse_activity_bytes(variant)
        except ImportFileError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert all(isinstance(r, ImportedActivity) for r in result)


# --------------------------------------------------------------------------------------------
# Storage through the stream codec
# --------------------------------------------------------------------------------------------


def test_imported_streams_round_trip_and_store_compactly() -> None:
    stored = 0
    source = 0
    for name in FIT_ACTIVITIES:
        source += (FIT / name).stat().st_size
        for leg in ok(FIT / name):
            if leg.streams is None:
                continue
            blob = streams_codec.encode(leg.streams)
            stored += len(blob)
            back = streams_codec.decode(blob)
            assert np.array_equal(back.time_s, leg.streams.time_s)
            for channel, values in leg.streams.channels().items():
                restored = getattr(back, channel)
                assert np.array_equal(np.isnan(restored), np.isnan(values))
                step = streams_codec.quantization_step(channel)
                assert np.nanmax(np.abs(restored - values), initial=0.0) <= step / 2 + 1e-9
    assert stored <= 0.25 * source, f"stored {stored} bytes for {source} bytes of FIT"


# --------------------------------------------------------------------------------------------
# Synthetic FIT files for the paths no fixture exercises (no session, no laps, system time)
# --------------------------------------------------------------------------------------------

FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
_BASE_TYPES = {"E": 0x00, "B": 0x02, "H": 0x84, "i": 0x85, "I": 0x86}


def fit_time(when: datetime) -> int:
    return int((when - FIT_EPOCH).total_seconds())


def build_fit(messages: list[tuple[int, list[tuple[int, str, int]]]], *, break_crc: bool = False) -> bytes:
    """A minimal FIT file: each message is (global number, [(field number, struct code, raw)])."""
    body = bytearray()
    for global_num, fields in messages:
        body += struct.pack("<BBBHB", 0x40, 0, 0, global_num, len(fields))
        layout = "<" + "".join(code for _, code, _ in fields).replace("E", "B")
        for number, code, _ in fields:
            size = struct.calcsize("<" + code.replace("E", "B"))
            body += struct.pack("<BBB", number, size, _BASE_TYPES[code])
        body += b"\x00" + struct.pack(layout, *(value for *_, value in fields))
    header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    header += struct.pack("<H", fitdecode.utils.compute_crc(header))
    crc = fitdecode.utils.compute_crc(header + body) ^ (0xFFFF if break_crc else 0)
    return header + bytes(body) + struct.pack("<H", crc)


def file_id(file_type: int = 4) -> tuple[int, list[tuple[int, str, int]]]:
    return (0, [(0, "E", file_type), (1, "H", 1), (4, "I", fit_time(datetime(2024, 5, 1, tzinfo=UTC)))])


def records(start: datetime, count: int, *, step_m: float = 3.0) -> list[tuple[int, list[tuple[int, str, int]]]]:
    semicircles = 2**31 / 180
    return [
        (
            20,
            [
                (253, "I", fit_time(start) + i),
                (0, "i", int(46.0 * semicircles)),
                (1, "i", int((14.0 + i * step_m / 77_000) * semicircles)),
                (3, "B", 120 + i % 10),
                (5, "I", int(i * step_m * 100)),
                (6, "H", int(step_m * 1000)),
            ],
        )
        for i in range(count)
    ]


START_2024 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def test_fit_without_sessions_or_laps_is_summarized_from_records() -> None:
    data = build_fit([file_id(), *records(START_2024, 61)])
    (activity,) = parse_activity_bytes(data)
    assert activity.activity.sport is Sport.OTHER
    assert activity.activity.start_time == START_2024
    assert activity.activity.duration_s == 60
    assert activity.activity.distance_m == pytest.approx(180.0)
    assert activity.activity.avg_hr_bpm == pytest.approx(124.5, abs=0.5)
    assert activity.activity.max_hr_bpm == 129
    assert len(activity.streams) == 61 and not activity.warnings


def test_fit_with_laps_but_no_session_uses_the_laps() -> None:
    def lap(start: datetime, seconds: int, metres: int, hr: int) -> tuple[int, list[tuple[int, str, int]]]:
        end = start + timedelta(seconds=seconds)
        return (
            19,
            [
                (253, "I", fit_time(end)),
                (2, "I", fit_time(start)),
                (7, "I", seconds * 1000),
                (8, "I", seconds * 1000),
                (9, "I", metres * 100),
                (15, "B", hr),
                (16, "B", hr + 20),
                (25, "E", 1),  # running
            ],
        )

    second = START_2024 + timedelta(seconds=30)
    data = build_fit([file_id(), *records(START_2024, 61), lap(START_2024, 30, 90, 120), lap(second, 30, 90, 140)])
    (activity,) = parse_activity_bytes(data)
    assert activity.activity.sport is Sport.RUN
    assert activity.activity.duration_s == 60 and activity.activity.moving_time_s == 60
    assert activity.activity.distance_m == 180
    assert activity.activity.avg_hr_bpm == 130 and activity.activity.max_hr_bpm == 160


def test_fit_course_is_refused_and_system_time_records_are_dropped() -> None:
    with pytest.raises(ImportFileError, match=r"^not an activity: course \(planned route\)"):
        parse_activity_bytes(build_fit([file_id(file_type=6)]))
    uptime = [(20, [(253, "I", 5_000), (3, "B", 99)])]  # FIT "system time": seconds since power-on
    (activity,) = parse_activity_bytes(build_fit([file_id(), *uptime, *records(START_2024, 10)]))
    assert len(activity.streams) == 10
    assert activity.warnings == ("dropped 1 samples with timestamps outside the activity",)


def test_fit_crc_mismatch_is_imported_with_a_warning() -> None:
    (activity,) = parse_activity_bytes(build_fit([file_id(), *records(START_2024, 5)], break_crc=True))
    assert activity.warnings == ("FIT checksum mismatch: the file may be damaged",)


def test_fit_without_any_data_is_refused() -> None:
    with pytest.raises(ImportFileError, match="no sessions, laps or samples"):
        parse_activity_bytes(build_fit([file_id()]))

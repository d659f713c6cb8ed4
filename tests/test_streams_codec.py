"""Stream codec: lossless up to the quantization step, NaN-exact, partial decodes, clear errors."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from trainer.analysis.streams_codec import (
    CHANNEL_IDS,
    SCALE_EXPONENTS,
    CorruptStreamError,
    decode,
    encode,
    quantization_step,
)
from trainer.normalized import STREAM_CHANNELS, Streams

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@st.composite
def streams_strategy(draw: st.DrawFn) -> Streams:
    n = draw(st.integers(min_value=0, max_value=400))
    steps = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 3600.0, allow_nan=False, allow_infinity=False)))
    time_s = np.cumsum(steps) if n else np.zeros(0)
    chosen = draw(st.sets(st.sampled_from(sorted(STREAM_CHANNELS))))
    channels = {}
    for name in chosen:
        spec = STREAM_CHANNELS[name]
        values = draw(
            hnp.arrays(
                np.float64,
                n,
                elements=st.one_of(
                    st.floats(spec.lo, spec.hi, allow_nan=False, allow_infinity=False),
                    st.just(float("nan")),
                ),
            )
        )
        channels[name] = values
    return Streams(time_s=time_s, **channels)


def assert_round_trip(original: Streams, restored: Streams) -> None:
    assert len(restored) == len(original)
    np.testing.assert_allclose(restored.time_s, original.time_s, rtol=0, atol=quantization_step("time_s") / 2 + 1e-9)
    assert set(restored.channels()) == set(original.channels())
    for name, values in original.channels().items():
        back = getattr(restored, name)
        assert np.array_equal(np.isnan(back), np.isnan(values)), name
        present = ~np.isnan(values)
        tolerance = quantization_step(name) / 2 + 1e-9 * np.abs(values[present])
        assert np.all(np.abs(back[present] - values[present]) <= tolerance), name


def realistic(n: int = 14_400, seed: int = 7) -> Streams:
    """A 1 Hz ride-like recording with sensor dropouts and a pause."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    t[n // 2 :] += 1_200  # a 20-minute stop
    speed = np.clip(8 + np.cumsum(rng.normal(0, 0.05, n)), 0, 20)
    distance = np.cumsum(speed)
    heading = np.cumsum(rng.normal(0, 0.02, n))
    lat = 46.0 + np.cumsum(speed * np.cos(heading)) / 111_320
    lon = 14.0 + np.cumsum(speed * np.sin(heading)) / 77_000
    hr = np.clip(140 + np.cumsum(rng.integers(-1, 2, n)) * 0.3, 60, 200).round()
    hr[1000:1030] = np.nan  # strap dropout
    power = np.clip(rng.normal(220, 60, n), 0, None).round()
    cadence = np.clip(rng.normal(88, 4, n), 0, None).round()
    cadence[::50] = 0
    alt = 300 + np.cumsum(rng.normal(0, 0.15, n))
    temp = np.full(n, 21.0)
    lat[5000:5040] = np.nan  # tunnel
    lon[5000:5040] = np.nan
    return Streams(
        time_s=t,
        heart_rate=hr,
        latitude=lat,
        longitude=lon,
        altitude_m=alt,
        speed_m_s=speed,
        power_w=power,
        cadence=cadence,
        distance_m=distance,
        temperature_c=temp,
    )


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(streams_strategy())
def test_round_trip_within_quantization_and_nan_exact(streams: Streams) -> None:
    assert_round_trip(streams, decode(encode(streams)))


@settings(max_examples=100, deadline=None)
@given(streams_strategy(), st.sets(st.sampled_from(sorted(STREAM_CHANNELS))))
def test_partial_decode_returns_only_requested_channels(streams: Streams, wanted: set[str]) -> None:
    blob = encode(streams)
    partial = decode(blob, wanted)
    full = decode(blob)
    np.testing.assert_array_equal(partial.time_s, full.time_s)
    assert set(partial.channels()) == wanted & set(streams.channels())
    for name in partial.channels():
        np.testing.assert_array_equal(getattr(partial, name), getattr(full, name))


def test_realistic_recording_round_trips() -> None:
    streams = realistic()
    assert_round_trip(streams, decode(encode(streams)))


def test_exact_values_survive_unchanged() -> None:
    # Values already on the quantization grid come back bit for bit.
    streams = Streams(
        time_s=[0.0, 1.0, 2.5, 2.5, 10.0],
        heart_rate=[100.0, 101.0, np.nan, 180.0, 99.0],
        latitude=[46.1234567, 46.1234568, -89.9999999, 0.0, np.nan],
        distance_m=[0.0, 1.25, 3.5, 3.5, 10_000.01],
    )
    back = decode(encode(streams))
    np.testing.assert_array_equal(back.time_s, streams.time_s)
    np.testing.assert_array_equal(back.heart_rate, streams.heart_rate)
    np.testing.assert_array_equal(back.latitude, streams.latitude)
    np.testing.assert_array_equal(back.distance_m, streams.distance_m)


def test_edge_shapes() -> None:
    for streams in (
        Streams(time_s=np.zeros(0)),
        Streams(time_s=[5.0]),
        Streams(time_s=[0.0, 1.0], heart_rate=[np.nan, np.nan]),
        Streams(time_s=[0.0], power_w=[np.nan]),
        Streams(time_s=np.arange(3.0), altitude_m=[8_999.9, -499.9, 0.05]),
    ):
        assert_round_trip(streams, decode(encode(streams)))


def test_decoded_arrays_are_read_only() -> None:
    back = decode(encode(realistic(100)))
    with pytest.raises(ValueError):
        back.heart_rate[0] = 1.0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unknown_channel_names_are_a_plain_value_error() -> None:
    blob = encode(realistic(10))
    with pytest.raises(ValueError, match="unknown stream channel") as info:
        decode(blob, {"heart_rate", "hr"})
    assert not isinstance(info.value, CorruptStreamError)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:3], "truncated"),
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: b[:4] + bytes([9]) + b[5:], "unsupported stream codec version 9"),
        (lambda b: b[:20] + bytes([b[20] ^ 0x01]) + b[21:], "checksum"),
        (lambda b: b[:-1], "runs past the end"),
        (lambda b: b + b"\0", "trailing bytes"),
        (lambda b: b"", "truncated"),
    ],
)
def test_corrupt_blobs_raise_corrupt_stream_error(mutate, message: str) -> None:
    blob = encode(realistic(500))
    with pytest.raises(CorruptStreamError, match=message):
        decode(mutate(blob))


def test_any_payload_damage_is_detected() -> None:
    blob = encode(realistic(2_000))
    table_end = 10 + blob[5] * 35 + 4
    rng = np.random.default_rng(3)
    for position in rng.integers(table_end, len(blob), 200):
        damaged = bytearray(blob)
        damaged[position] ^= 1 << int(rng.integers(8))
        with pytest.raises(CorruptStreamError):
            decode(bytes(damaged))


def test_corrupt_stream_error_is_a_value_error() -> None:
    assert issubclass(CorruptStreamError, ValueError)


def test_hostile_header_cannot_demand_huge_allocations() -> None:
    blob = bytearray(encode(Streams(time_s=[0.0, 1.0])))
    struct.pack_into("<I", blob, 6, 4_000_000_000)  # sample count
    table_end = 10 + blob[5] * 35
    struct.pack_into("<I", blob, table_end, zlib.crc32(bytes(blob[:table_end])))
    with pytest.raises(CorruptStreamError, match="implausible sample count"):
        decode(bytes(blob))


# --------------------------------------------------------------------------------------------
# Format facts and performance goals
# --------------------------------------------------------------------------------------------


def test_format_tables_cover_every_channel() -> None:
    names = {"time_s", *STREAM_CHANNELS}
    assert set(CHANNEL_IDS) == names == set(SCALE_EXPONENTS)
    assert len(set(CHANNEL_IDS.values())) == len(CHANNEL_IDS)
    assert quantization_step("latitude") == pytest.approx(1e-7)
    assert quantization_step("heart_rate") == 1.0


def test_four_hour_stream_is_compact() -> None:
    """Size is behaviour (what is stored); decode speed is measured in bench/import.py, not here."""
    streams = realistic()
    blob = encode(streams)
    raw_float_bytes = 8 * len(streams) * (1 + len(streams.channels()))
    assert len(blob) < raw_float_bytes / 10
    assert_round_trip(streams, decode(blob))

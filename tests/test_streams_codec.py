"""Stream codec: lossless up to the quantization step, NaN-exact, partial decodes, clear errors."""

from __future__ import annotations

import dataclasses
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


# --------------------------------------------------------------------------------------------
# Byte-exactness against the original channel-by-channel encoder
# --------------------------------------------------------------------------------------------
# encode() computes all channels at once for speed; stored blobs (and their sizes) must not
# change because of that. This is the encoder as it was before, kept verbatim apart from names,
# with the format constants spelled out so that it cannot drift along with the module.

_REF_HEADER = struct.Struct("<4sBBI")
_REF_ENTRY = struct.Struct("<BBbqqqII")
_REF_CRC = struct.Struct("<I")
_REF_WIDTHS = (1, 2, 4, 8)


def _ref_quantize(values: np.ndarray, missing: np.ndarray, exponent: int) -> np.ndarray:
    n = values.shape[0]
    if missing.all():
        return np.zeros(n, dtype=np.int64)
    factor = float(10 ** abs(exponent))
    q = np.rint(values * factor if exponent < 0 else values / factor)
    if np.nanmax(np.abs(q)) >= 2**53:
        raise ValueError("stream value too large to encode at its resolution")
    if missing.any():
        index = np.where(missing, 0, np.arange(n))
        np.maximum.accumulate(index, out=index)
        first = int(np.argmin(missing))
        index[:first] = first
        q = q[index]
    return q.astype(np.int64)


def _ref_median_int(values: np.ndarray) -> int:
    m = values.size
    if not m:
        return 0
    k = m // 2
    if m % 2:
        return int(float(np.partition(values, k)[k]))
    part = np.partition(values, (k - 1, k))
    return int((float(part[k - 1]) + float(part[k])) / 2)


@dataclasses.dataclass(frozen=True, slots=True)
class _RefResiduals:
    width_log2: int
    reference: int
    residuals: np.ndarray
    misfit: np.ndarray
    raw_size: int

    @classmethod
    def best_for(cls, differences: np.ndarray) -> _RefResiduals:
        reference = _ref_median_int(differences)
        residuals = differences - reference
        lo, hi = (int(residuals.min()), int(residuals.max())) if residuals.size else (0, 0)
        best_width, best_size = 3, residuals.size * 8
        for width_log2, width in enumerate(_REF_WIDTHS[:-1]):
            bound = (1 << (8 * width - 1)) - 1
            misfits = 0 if -bound <= lo and hi <= bound else int(np.count_nonzero(np.abs(residuals) > bound))
            size = residuals.size * width + misfits * 8
            if size < best_size:
                best_width, best_size = width_log2, size
        if best_width == 3:
            misfit = np.zeros(residuals.shape, dtype=bool)
        else:
            misfit = np.abs(residuals) > (1 << (8 * _REF_WIDTHS[best_width] - 1)) - 1
        return cls(best_width, reference, residuals, misfit, best_size)

    def to_bytes(self, differences: np.ndarray) -> bytes:
        width = _REF_WIDTHS[self.width_log2]
        residuals = self.residuals
        if width < 8 and self.misfit.any():
            residuals = residuals.copy()
            residuals[self.misfit] = -(1 << (8 * width - 1))
        shuffled = residuals.astype(f"<i{width}").view(np.uint8).reshape(-1, width).T.tobytes()
        return shuffled + differences[self.misfit].astype("<i8").tobytes()


def _ref_encode_channel(channel_id: int, values: np.ndarray, exponent: int) -> tuple[bytes, bytes]:
    missing = np.isnan(values)
    has_mask = bool(missing.any())
    q = _ref_quantize(values, missing, exponent)
    first_order = np.diff(q)
    second_order = np.diff(first_order)
    order1 = _RefResiduals.best_for(first_order)
    order2 = _RefResiduals.best_for(second_order)
    use_order2 = q.size >= 2 and order2.raw_size < order1.raw_size
    chosen, differences = (order2, second_order) if use_order2 else (order1, first_order)
    mask = np.packbits(missing).tobytes() if has_mask else b""
    payload = zlib.compress(mask + chosen.to_bytes(differences), 6)
    flags = chosen.width_log2 | (0x10 if has_mask else 0) | (0x20 if use_order2 else 0)
    entry = _REF_ENTRY.pack(
        channel_id,
        flags,
        exponent,
        int(q[0]) if q.size else 0,
        int(first_order[0]) if use_order2 else 0,
        chosen.reference,
        int(chosen.misfit.sum()),
        len(payload),
    )
    return entry, payload


def reference_encode(streams: Streams) -> bytes:
    """The original channel-by-channel encoder (format version 1)."""
    n = len(streams)
    columns: dict[str, np.ndarray] = {"time_s": np.asarray(streams.time_s)}
    columns.update(streams.channels())
    entries: list[bytes] = []
    payloads: list[bytes] = []
    for name, values in columns.items():
        entry, payload = _ref_encode_channel(
            CHANNEL_IDS[name], np.asarray(values, dtype=np.float64), SCALE_EXPONENTS[name]
        )
        entries.append(entry)
        payloads.append(payload)
    table = b"".join([_REF_HEADER.pack(b"TRSC", 1, len(entries), n), *entries])
    return b"".join([table, _REF_CRC.pack(zlib.crc32(table)), *payloads])


def assert_same_encoding(streams: Streams) -> None:
    """encode() and the reference agree byte for byte, or both refuse with the same message."""
    try:
        expected = reference_encode(streams)
    except ValueError as exc:
        with pytest.raises(ValueError) as info:
            encode(streams)
        assert str(info.value) == str(exc)
        return
    assert encode(streams) == expected


_LENGTHS = (0, 1, 2, 3, 4, 5, 8, 17, 64, 255, 900, 5000)
_SHAPES = ("walk", "smooth", "constant", "noise", "jumps", "huge_jumps", "extreme", "ties", "wild")
_GAPS = ("none", "none", "start", "middle", "end", "scattered", "all")


def _channel(rng: np.random.Generator, name: str, n: int, shape: str) -> np.ndarray:
    """One channel of ``n`` samples, in units of its quantization step times the step."""
    step = 10.0 ** SCALE_EXPONENTS[name]
    if shape == "walk":
        steps = rng.integers(-int(rng.integers(1, 300)), int(rng.integers(1, 300)) + 1, n)
        q = np.cumsum(steps) + rng.integers(-(10**6), 10**6)
    elif shape == "smooth":  # position-like: second differences small
        q = np.cumsum(np.cumsum(rng.integers(-3, 4, n)) + rng.integers(0, 500)) + rng.integers(0, 10**8)
    elif shape == "constant":
        q = np.full(n, rng.integers(-(10**5), 10**5))
    elif shape == "noise":
        q = rng.integers(-(1 << int(rng.integers(1, 40))), 1 << int(rng.integers(1, 40)), n)
    elif shape in ("jumps", "huge_jumps"):
        steps = rng.integers(-5, 6, n)
        top = 20 if shape == "jumps" else 50
        where = rng.random(n) < rng.choice([0.001, 0.02, 0.3, 0.9])
        steps[where] = rng.integers(-(1 << top), 1 << top, int(where.sum()))
        q = np.cumsum(steps)
    elif shape == "extreme":  # differences beyond 2**53, where the median goes through float64
        limit = 2**53 - 1 - int(rng.integers(0, 1000))
        q = rng.choice(np.array([-limit, limit, 0, limit // 3]), n)
    elif shape == "ties":  # exactly half a step: rint rounds half to even
        return (rng.integers(-1000, 1000, n) + 0.5) * step
    else:  # arbitrary floats, including ones too large for the resolution and infinities
        pool = np.array([0.0, -0.0, 1e300, -1e300, np.inf, -np.inf, 2.0**53 * step, 2.0**53 * step * 0.999999])
        values = rng.normal(0, 10.0 ** float(rng.integers(0, 18)), n)
        pick = rng.random(n) < 0.05
        values[pick] = rng.choice(pool, int(pick.sum()))
        return values
    return q.astype(np.float64) * step


def _with_gaps(rng: np.random.Generator, values: np.ndarray, gaps: str) -> np.ndarray:
    n = values.size
    values = values.copy()
    if not n or gaps == "none":
        return values
    a, b = sorted(int(x) for x in rng.integers(0, n + 1, 2))
    if gaps == "start":
        values[: max(b, 1)] = np.nan
    elif gaps == "middle":
        values[a:b] = np.nan
    elif gaps == "end":
        values[a:] = np.nan
    elif gaps == "scattered":
        values[rng.random(n) < rng.random()] = np.nan
    else:
        values[:] = np.nan
    return values


def random_streams(seed: int, n: int, *, validated: bool) -> Streams:
    """Varied streams; unvalidated ones reach encode() the way decode() and window() build them."""
    rng = np.random.default_rng(seed)
    names = [name for name in STREAM_CHANNELS if rng.random() < 0.6]
    if validated:
        time_s = np.cumsum(rng.choice([0.0, 0.001, 0.25, 1.0, 1.0, 1.0, 3600.0], n))
        channels = {
            name: _with_gaps(rng, _channel(rng, name, n, str(rng.choice(_SHAPES))), str(rng.choice(_GAPS)))
            for name in names
        }
        return Streams(time_s=time_s, **channels)
    time_s = _channel(rng, "time_s", n, str(rng.choice(_SHAPES)))
    if rng.random() < 0.2:
        time_s = _with_gaps(rng, time_s, str(rng.choice(_GAPS)))
    channels = {
        name: _with_gaps(rng, _channel(rng, name, n, str(rng.choice(_SHAPES))), str(rng.choice(_GAPS)))
        for name in names
    }
    return Streams._trusted(time_s, channels)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(_LENGTHS), st.booleans())
def test_encode_matches_reference_byte_for_byte(seed: int, n: int, validated: bool) -> None:
    assert_same_encoding(random_streams(seed, n, validated=validated))


@settings(max_examples=300, deadline=None)
@given(streams_strategy())
def test_encode_matches_reference_on_drawn_streams(streams: Streams) -> None:
    assert_same_encoding(streams)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 900, 5000, 20_000])
def test_encode_matches_reference_on_recordings(n: int) -> None:
    streams = realistic(max(n, 1)).window(0, n)
    assert_same_encoding(streams)
    assert_same_encoding(streams.select(["heart_rate", "latitude"]))


def test_encode_matches_reference_on_edge_cases() -> None:
    nan = np.nan
    step = quantization_step("latitude")
    for streams in (
        Streams(time_s=np.zeros(0), heart_rate=np.zeros(0)),
        Streams(time_s=[5.0], heart_rate=[nan], latitude=[46.0]),
        Streams(time_s=[0.0, 1.0], heart_rate=[nan, nan], cadence=[nan, 80.0], power_w=[100.0, nan]),
        Streams(time_s=[0.0, 1.0, 2.0], altitude_m=[nan, nan, 3.0], distance_m=[0.0, nan, nan]),
        Streams(time_s=np.arange(4.0), heart_rate=[100.0, 100.0, 101.0, 101.0]),  # even-count medians
        Streams(time_s=[0.0, 0.0, 0.0, 1e6, 1e6 + 1]),  # a single huge jump: one exception
        Streams(time_s=[1e9] * 3),  # time_s needs 2**53 > 1e12 ms: still fits
        Streams._trusted(np.array([0.0, 1.0]), {"latitude": np.array([2.0**53 * step, 0.0])}),  # too large
        Streams._trusted(np.array([0.0, 1.0]), {"latitude": np.array([(2.0**53 - 1) * step, nan])}),
        Streams._trusted(np.array([0.0, 1.0]), {"power_w": np.array([np.inf, 1.0])}),
        Streams._trusted(np.array([nan, 1.0, nan]), {"power_w": np.array([nan, nan, nan])}),
        # channels shorter than time_s (not a valid Streams, but encode never checked)
        Streams._trusted(np.arange(6.0), {"heart_rate": np.arange(3.0) + 60, "cadence": np.arange(3.0)}),
    ):
        assert_same_encoding(streams)

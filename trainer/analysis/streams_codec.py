"""Compact, versioned binary encoding of :class:`~trainer.normalized.Streams`.

Why a custom format: activity streams are the bulk of what we store (a 4 h ride at 1 Hz is
~14,400 samples x 10 channels), they are read far more often than written, and analysis usually
needs only one or two channels. So the format quantizes each channel to a fixed resolution,
delta-encodes it (consecutive samples differ little), and compresses every channel separately
so a reader can decode just the channels it needs. Everything is vectorized numpy; there is no
per-sample Python loop on either side.

Layout (little-endian), version 1::

    magic  b"TRSC"                 4 bytes
    version                        u8   (1)
    channel count (incl. time)     u8
    sample count n                 u32
    channel table, one entry per channel, time first:
        channel id                 u8   (see CHANNEL_IDS; ids are part of the format)
        flags                      u8   bits 0-1: log2 of residual width (1/2/4/8 bytes)
                                        bit 4: a missing-sample mask precedes the residuals
                                        bit 5: second-order differences (else first-order)
        decimal exponent           i8   value = quantized * 10**exponent
        base                       i64  first quantized value
        first delta                i64  second minus first value (second order only, else 0)
        reference                  i64  typical difference, subtracted from every difference
        exception count            u32
        payload length             u32  compressed bytes
    crc32 of header + table        u32
    payloads, in table order; each is zlib(mask + residuals + exceptions) where
        mask       = numpy.packbits(sample is missing), only when some sample is NaN
        residuals  = the differences of the quantized values (first order: n-1 of them;
                     second order, which suits smooth channels such as position, distance
                     and time: n-2) minus the reference, at the narrowest signed width that
                     keeps the output smallest, byte-shuffled (all low bytes first) so zlib
                     sees runs of equal high bytes; the width's minimum value marks an exception
        exceptions = the differences that did not fit, i64 each, in order (e.g. the jump in
                     position and time after a pause)

Missing samples (NaN) repeat the previous quantized value, so they cost a zero difference, and
are restored from the mask. The crc32 guards the table; each payload is guarded by zlib's own
adler32. Decoded values are within half a quantization step of the input.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

import numpy as np

from trainer.normalized import Streams

__all__ = [
    "CHANNEL_IDS",
    "FORMAT_VERSION",
    "SCALE_EXPONENTS",
    "CorruptStreamError",
    "decode",
    "encode",
    "quantization_step",
]

MAGIC: Final = b"TRSC"
FORMAT_VERSION: Final = 1

CHANNEL_IDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "time_s": 0,
        "heart_rate": 1,
        "latitude": 2,
        "longitude": 3,
        "altitude_m": 4,
        "speed_m_s": 5,
        "power_w": 6,
        "cadence": 7,
        "distance_m": 8,
        "temperature_c": 9,
    }
)
_NAMES_BY_ID: Final = {v: k for k, v in CHANNEL_IDS.items()}

SCALE_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "time_s": -3,  # 1 ms: keeps sub-second sampling, 1 Hz deltas fit in 2 bytes
        "heart_rate": 0,  # 1 bpm, what every sensor reports
        "latitude": -7,  # 1e-7 deg ~ 1.1 cm, finer than FIT semicircles need
        "longitude": -7,
        "altitude_m": -1,  # 0.1 m; barometric altimeters resolve 0.2 m
        "speed_m_s": -3,  # 1 mm/s, FIT's own resolution
        "power_w": 0,  # 1 W
        "cadence": -1,  # 0.1 rpm keeps FIT fractional cadence
        "distance_m": -2,  # 1 cm, FIT's own resolution
        "temperature_c": -1,  # 0.1 degC
    }
)

_HEADER: Final = struct.Struct("<4sBBI")
_ENTRY: Final = struct.Struct("<BBbqqqII")
_CRC: Final = struct.Struct("<I")
_WIDTH_BITS: Final = 0x03
_MASK_FLAG: Final = 0x10
_ORDER2_FLAG: Final = 0x20
_WIDTHS: Final = (1, 2, 4, 8)
_EXCEPTION_SIZE: Final = 8
_MAX_SAMPLES: Final = 50_000_000  # ~19 months at 1 Hz: bounds memory for hostile headers
_EXACT_INT: Final = 2**53  # beyond this float64 no longer represents every integer
# encode() works on blocks of channels of at most this many float64 bytes. Bigger blocks save
# little call overhead but push the many temporaries past glibc's mmap/trim thresholds, and the
# page faults on fresh memory then cost more than the arithmetic (measured: 9 x 20,000 samples
# in one block was ~1.6x slower than channel by channel, at 128 KiB ~25% faster).
_BLOCK_BYTES: Final = 128 * 1024
_ZLIB_LEVEL: Final = 6  # level 9 is ~4x slower to write for ~1% smaller output; reads are equal


class CorruptStreamError(ValueError):
    """The bytes are not a stream blob this build can read (damaged or unknown version)."""


def quantization_step(channel: str) -> float:
    """Resolution of ``channel`` in its own unit; decoded values are within half of it."""
    return float(10.0 ** SCALE_EXPONENTS[channel])


def _factor(exponent: int) -> float:
    return float(10 ** abs(exponent))


def _quantize(values: np.ndarray, exponents: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Quantize equal-length channels (one per row of ``values``) to int64 in one pass.

    Returns ``(q, missing)``. Missing samples repeat the previous present value (leading ones
    the first present value) and a channel with no sample at all is zeros. Rows are scaled as
    ``x * 10**-e`` for e < 0 and ``x / 10**e`` otherwise: the two round differently in the last
    bit, and the format's output must not change with the implementation.
    """
    n = values.shape[1]
    multipliers = np.array([_factor(e) if e < 0 else 1.0 for e in exponents])
    q = np.multiply(values, multipliers[:, None])
    for row, exponent in enumerate(exponents):
        if exponent > 0:  # no channel uses one today; kept so the table alone decides the scale
            np.divide(values[row], _factor(exponent), out=q[row])
    np.rint(q, out=q)
    missing = np.isnan(values)
    if n and missing.any():  # the fill takes several passes; most recordings need none
        index = np.where(missing, 0, np.arange(n))
        np.maximum.accumulate(index, axis=1, out=index)
        np.maximum(index, np.argmin(missing, axis=1)[:, None], out=index)  # leading gap: first present
        q = np.take_along_axis(q, index, axis=1)
        q[missing.all(axis=1)] = 0.0
    # After the fill q holds exactly the present values, so its range is theirs.
    if n and max(float(q.max()), -float(q.min())) >= _EXACT_INT:
        raise ValueError("stream value too large to encode at its resolution")
    return q.astype(np.int64), missing


def _medians(differences: np.ndarray) -> list[int]:
    """Per-row ``int(np.median(row))`` of int64 rows, as the format has always rounded it.

    The median goes through float64 (so beyond 2**53 it is the nearest float, and an even-count
    midpoint truncates toward zero); numpy's float ops are the same IEEE ops as Python's.
    """
    rows, m = differences.shape
    if not m:
        return [0] * rows
    k = m // 2
    if m % 2:
        middle = np.partition(differences, k, axis=1)[:, k].astype(np.float64)
        return [int(x) for x in middle.tolist()]
    # Partitioning at k alone leaves the k smallest before it, so the (k-1)-th is their maximum:
    # numpy's two-pivot partition is ~4x slower than one pivot plus a max.
    part = np.partition(differences, k, axis=1)
    below = part[:, :k].max(axis=1).astype(np.float64)
    midpoints = (below + part[:, k].astype(np.float64)) / 2
    return [int(x) for x in midpoints.tolist()]


@dataclasses.dataclass(slots=True)
class _Residuals:
    """One candidate encoding of a channel's differences: reference, width and its raw size."""

    differences: np.ndarray  # int64, one channel's row
    reference: int
    width_log2: int = 3
    raw_size: int = 0
    misfits: int = 0
    _magnitudes: np.ndarray | None = None

    def magnitudes(self) -> np.ndarray:
        """``|differences - reference|``, computed at most once and only for a channel that misfits."""
        if self._magnitudes is None:
            self._magnitudes = np.abs(self.differences - self.reference)
        return self._magnitudes

    @classmethod
    def best_for(cls, differences: np.ndarray, reference: int, lo: int, hi: int) -> _Residuals:
        """Pick the width that minimizes the raw (pre-zlib) size; ``lo``/``hi`` bound the differences.

        Misfits are counted from the residuals' range where it can (usually every residual fits
        the narrowest width, so no array is touched at all). Ties keep the narrower width, except
        that nothing beats 8 bytes unless strictly smaller (so no residuals at all means width 8).
        """
        count = differences.shape[0]
        lo, hi = (lo - reference, hi - reference) if count else (0, 0)
        best = cls(differences, reference, 3, count * 8, 0)
        for width_log2, width in enumerate(_WIDTHS[:-1]):
            bound = (1 << (8 * width - 1)) - 1  # -(bound + 1) is the exception marker
            fits = -bound <= lo and hi <= bound
            misfits = 0 if fits else int(np.count_nonzero(best.magnitudes() > bound))
            size = count * width + misfits * _EXCEPTION_SIZE
            if size < best.raw_size:
                best.width_log2, best.raw_size, best.misfits = width_log2, size, misfits
            if fits:
                break  # every wider width is at least as large, so none can win
        return best

    def to_bytes(self) -> bytes:
        """Byte-shuffled residuals with exceptions marked, then the exceptions themselves."""
        width = _WIDTHS[self.width_log2]
        residuals = self.differences - self.reference
        exceptions = b""
        if width < 8 and self.misfits:
            misfit = self.magnitudes() > (1 << (8 * width - 1)) - 1
            residuals[misfit] = -(1 << (8 * width - 1))
            exceptions = self.differences[misfit].astype("<i8").tobytes()
        shuffled = residuals.astype(f"<i{width}").view(np.uint8).reshape(-1, width).T.tobytes()
        return shuffled + exceptions


def _encode_channels(ids: Sequence[int], values: np.ndarray, exponents: Sequence[int]) -> list[tuple[bytes, bytes]]:
    """(table entry, compressed payload) for each channel, given as rows of equal length.

    Encoding runs once per stored activity, and per-channel numpy calls on ~1,000 samples cost
    far more in call overhead than in arithmetic. So quantization, both difference orders,
    medians and ranges are computed for all channels at once; only what depends on one channel's
    choices (misfits, byte shuffle, mask, zlib) runs per channel.
    """
    n = values.shape[1]
    q, missing = _quantize(values, exponents)
    first_order = np.diff(q, axis=1)
    second_order = np.diff(first_order, axis=1)
    has_mask = missing.any(axis=1).tolist() if n else [False] * len(ids)
    candidates = []
    for differences in (first_order, second_order):
        if differences.shape[1]:
            lows, highs = differences.min(axis=1).tolist(), differences.max(axis=1).tolist()
        else:
            lows = highs = [0] * len(ids)
        references = _medians(differences)
        candidates.append(
            [_Residuals.best_for(differences[row], references[row], lows[row], highs[row]) for row in range(len(ids))]
        )
    bases = q[:, 0].tolist() if n else [0] * len(ids)
    first_deltas = first_order[:, 0].tolist() if n >= 2 else [0] * len(ids)
    out = []
    for row, (channel_id, exponent) in enumerate(zip(ids, exponents, strict=True)):
        order1, order2 = candidates[0][row], candidates[1][row]
        use_order2 = n >= 2 and order2.raw_size < order1.raw_size
        chosen = order2 if use_order2 else order1
        mask = np.packbits(missing[row]).tobytes() if has_mask[row] else b""
        payload = zlib.compress(mask + chosen.to_bytes(), _ZLIB_LEVEL)
        flags = chosen.width_log2 | (_MASK_FLAG if has_mask[row] else 0) | (_ORDER2_FLAG if use_order2 else 0)
        entry = _ENTRY.pack(
            channel_id,
            flags,
            exponent,
            bases[row],
            first_deltas[row] if use_order2 else 0,
            chosen.reference,
            chosen.misfits,
            len(payload),
        )
        out.append((entry, payload))
    return out


def encode(streams: Streams) -> bytes:
    """Serialize ``streams`` (all recorded channels) into a compact versioned blob."""
    n = len(streams)
    if n > _MAX_SAMPLES:
        raise ValueError(f"too many samples to encode ({n} > {_MAX_SAMPLES})")
    columns: dict[str, np.ndarray] = {"time_s": np.asarray(streams.time_s)}
    columns.update(streams.channels())
    # Streams keeps every channel as long as time_s; grouping by length keeps any other input
    # encoding exactly as channel-by-channel code would.
    groups: dict[int, list[str]] = {}
    for name, values in columns.items():
        groups.setdefault(np.shape(values)[0], []).append(name)
    encoded: dict[str, tuple[bytes, bytes]] = {}
    for length, group in groups.items():
        rows = max(1, _BLOCK_BYTES // (8 * max(length, 1)))
        for start in range(0, len(group), rows):
            names = group[start : start + rows]
            block = np.stack([np.asarray(columns[name], dtype=np.float64) for name in names])
            ids = [CHANNEL_IDS[name] for name in names]
            exponents = [SCALE_EXPONENTS[name] for name in names]
            encoded.update(zip(names, _encode_channels(ids, block, exponents), strict=True))
    entries = [encoded[name][0] for name in columns]
    table = b"".join([_HEADER.pack(MAGIC, FORMAT_VERSION, len(entries), n), *entries])
    return b"".join([table, _CRC.pack(zlib.crc32(table)), *(encoded[name][1] for name in columns)])


def _inflate(payload: memoryview, expected: int, name: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        # max_length 0 would mean "unlimited", so ask for one byte to detect surplus data.
        raw = inflater.decompress(payload, expected or 1)
    except zlib.error as exc:
        raise CorruptStreamError(f"channel {name}: bad compressed data ({exc})") from None
    if len(raw) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise CorruptStreamError(f"channel {name}: payload has the wrong size")
    return raw


def _unshuffle(raw: bytes, offset: int, count: int, width: int) -> np.ndarray:
    """Reassemble byte planes into signed integers of ``width`` bytes (wrapping arithmetic)."""
    dtype = np.dtype(f"<i{width}")
    planes = np.frombuffer(raw, dtype=np.uint8, count=count * width, offset=offset)
    if width == 1:
        return planes.view(dtype)
    planes = planes.reshape(width, count)
    out = planes[0].astype(dtype)
    for k in range(1, width):
        out |= planes[k].astype(dtype) << (8 * k)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    flags: int
    exponent: int
    base: int
    first_delta: int
    reference: int
    n_exceptions: int


def _decode_channel(payload: memoryview, entry: _Entry, scratch: np.ndarray, out: np.ndarray) -> None:
    """Decode one channel into ``out`` (float64), integrating in the int64 ``scratch``.

    Integer prefix sums are several times faster than float ones (no add-latency chain), and
    sharing one scratch array and one output block across channels keeps allocations to two
    per decode.
    """
    n = out.shape[0]
    name = entry.name
    width = _WIDTHS[entry.flags & _WIDTH_BITS]
    order = 2 if entry.flags & _ORDER2_FLAG else 1
    mask_len = (n + 7) // 8 if entry.flags & _MASK_FLAG else 0
    count = max(n - order, 0)
    if entry.n_exceptions > count or (width == 8 and entry.n_exceptions):
        raise CorruptStreamError(f"channel {name}: implausible exception count")
    residual_end = mask_len + count * width
    raw = _inflate(payload, residual_end + entry.n_exceptions * _EXCEPTION_SIZE, name)

    # Fill q with [base, (first delta,) differences...] and integrate in place.
    q = scratch
    if n:
        q[0] = entry.base
    if order == 2 and n >= 2:
        q[1] = entry.first_delta
    if count:
        residuals = _unshuffle(raw, mask_len, count, width)
        q[order:] = residuals
        if entry.reference:
            q[order:] += entry.reference
        if entry.n_exceptions:
            marked = np.flatnonzero(residuals == np.iinfo(residuals.dtype).min)
            if marked.size != entry.n_exceptions:
                raise CorruptStreamError(f"channel {name}: exception markers do not match")
            q[order + marked] = np.frombuffer(raw, dtype="<i8", offset=residual_end)
    if order == 2 and n >= 2:
        np.cumsum(q[1:], out=q[1:])
    if name == "time_s" and n >= 2 and (q[1:] < 0).any():
        raise CorruptStreamError("time_s decreases")
    np.cumsum(q, out=q)
    factor = _factor(entry.exponent)
    if entry.exponent < 0:
        np.divide(q, factor, out=out)
    else:
        np.multiply(q, factor, out=out)
    if mask_len:
        missing = np.unpackbits(np.frombuffer(raw, dtype=np.uint8, count=mask_len), count=n)
        np.copyto(out, np.nan, where=missing.view(bool))


def decode(blob: bytes, types: Iterable[str] | None = None) -> Streams:
    """Rebuild Streams from ``blob``; with ``types``, decode only those channels.

    ``time_s`` is always decoded. Requested channels that were never recorded come back as
    ``None``. Raises :class:`CorruptStreamError` for damaged input or an unknown version, and a
    plain ``ValueError`` for channel names that do not exist.
    """
    wanted: set[str] | None = None
    if types is not None:
        wanted = set(types)
        unknown = wanted - set(CHANNEL_IDS)
        if unknown:
            raise ValueError(f"unknown stream channel(s): {', '.join(sorted(unknown))}")
    view = memoryview(blob)
    if len(view) < _HEADER.size:
        raise CorruptStreamError("stream blob is truncated")
    magic, version, n_channels, n = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise CorruptStreamError("not an encoded stream (bad magic bytes)")
    if version != FORMAT_VERSION:
        raise CorruptStreamError(f"unsupported stream codec version {version} (this build reads {FORMAT_VERSION})")
    table_end = _HEADER.size + n_channels * _ENTRY.size
    if n_channels < 1 or table_end + _CRC.size > len(view):
        raise CorruptStreamError("stream blob channel table is truncated")
    (stored_crc,) = _CRC.unpack_from(view, table_end)
    if zlib.crc32(view[:table_end]) != stored_crc:
        raise CorruptStreamError("stream blob header checksum mismatch")
    if n > _MAX_SAMPLES:
        raise CorruptStreamError(f"implausible sample count {n}")

    offset = table_end + _CRC.size
    seen: set[str] = set()
    selected: list[tuple[_Entry, memoryview]] = []
    for index in range(n_channels):
        channel_id, flags, exponent, base, first_delta, reference, n_exc, length = _ENTRY.unpack_from(
            view, _HEADER.size + index * _ENTRY.size
        )
        name = _NAMES_BY_ID.get(channel_id)
        if name is None or name in seen or (index == 0) != (name == "time_s"):
            raise CorruptStreamError(f"unexpected channel id {channel_id} at position {index}")
        if flags & ~(_WIDTH_BITS | _MASK_FLAG | _ORDER2_FLAG) or (name == "time_s" and flags & _MASK_FLAG):
            raise CorruptStreamError(f"channel {name}: invalid flags {flags:#x}")
        if exponent != SCALE_EXPONENTS[name]:
            raise CorruptStreamError(f"channel {name}: unexpected scale 1e{exponent}")
        seen.add(name)
        end = offset + length
        if end > len(view):
            raise CorruptStreamError(f"channel {name}: payload runs past the end")
        if wanted is None or name == "time_s" or name in wanted:
            entry = _Entry(name, flags, exponent, base, first_delta, reference, n_exc)
            selected.append((entry, view[offset:end]))
        offset = end
    if offset != len(view):
        raise CorruptStreamError("stream blob has trailing bytes")

    # One block for all decoded channels: a single allocation the allocator can keep reusing.
    block = np.empty((len(selected), n), dtype=np.float64)
    scratch = np.empty(n, dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    for row, (entry, payload) in enumerate(selected):
        _decode_channel(payload, entry, scratch, block[row])
        columns[entry.name] = block[row]
    time_s = columns.pop("time_s")
    return Streams._trusted(time_s, columns)

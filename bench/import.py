"""Benchmark the file import and the stream codec on the test fixtures.

Prints, for one run over tests/fixtures/{fit,gpx,tcx}:
  * files/s and samples/s through parse_activity_file + streams_codec.encode,
  * fitdecode's bare decode time of the same FIT files, and our FIT time as a ratio of it
    (fitdecode is pure Python and dominates; the ratio shows what our own work adds),
  * stored stream bytes against the source file bytes (goal: <= 0.25x the FIT bytes), from the
    codec alone and through the real store (what `trainer import` writes to activity_streams),
  * decode time of a 4 h, 1 Hz, all-channel stream (goal: < 2 ms).

Run: ``python bench/import.py``. Always exits 0; goal misses are printed, not raised.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/import.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's `http` that aiohttp imports.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import asyncio
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import fitdecode
import numpy as np
from trainer_plugins.fileimport import ImportFileError, parse_activity_file

from trainer.analysis import streams_codec
from trainer.db import create_database
from trainer.db.migrate import migrate
from trainer.imports import import_file
from trainer.normalized import ImportedActivity, Streams
from trainer.plugins import FileImporter
from trainer.plugins import ImportFileError as PluginImportFileError
from trainer.store import users

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FOUR_HOURS_1HZ = 4 * 3600
RATIO_GOAL = 0.25
DECODE_GOAL_S = 0.002


@dataclass
class Totals:
    files: int = 0
    refused: int = 0
    samples: int = 0
    seconds: float = 0.0
    source_bytes: int = 0
    stored_bytes: int = 0
    streams: list[Streams] = field(default_factory=list)

    def add(self, path: Path, seconds: float, legs: list[ImportedActivity] | None, blobs: list[bytes]) -> None:
        self.files += 1
        self.seconds += seconds
        if legs is None:
            self.refused += 1
            return
        if blobs:
            self.source_bytes += path.stat().st_size
            self.stored_bytes += sum(len(blob) for blob in blobs)
        for leg in legs:
            if leg.streams is not None:
                self.samples += len(leg.streams)
                self.streams.append(leg.streams)


def fixture_files() -> list[Path]:
    files = (p for folder in ("fit", "gpx", "tcx") for p in (FIXTURES / folder).iterdir())
    return sorted(p for p in files if p.is_file() and not p.name.startswith("LICENSE"))


def import_and_encode(path: Path) -> tuple[float, list[ImportedActivity] | None, list[bytes]]:
    started = time.perf_counter()
    try:
        legs: list[ImportedActivity] | None = parse_activity_file(path)
    except ImportFileError:
        legs = None
    blobs = [streams_codec.encode(leg.streams) for leg in legs or () if leg.streams is not None]
    return time.perf_counter() - started, legs, blobs


class _Parsed(FileImporter):
    """Hands the store pass the legs parsed (and timed) above, so parsing is not counted twice."""

    file_types = ("fit",)

    def __init__(self, parsed: dict[Path, list[ImportedActivity] | None]) -> None:
        self.parsed = parsed

    def sniff(self, head: bytes, filename: str) -> bool:
        return True

    def parse(self, path: Path) -> list[ImportedActivity]:
        legs = self.parsed[path]
        if legs is None:
            raise PluginImportFileError("refused in the parse pass")
        return legs


async def through_the_store(
    paths: list[Path], parsed: dict[Path, list[ImportedActivity] | None]
) -> tuple[int, int, int, float]:
    """Import the FIT files for one user into a fresh SQLite database exactly as `trainer import`
    does (store.activities, load analysis), then measure the activity_streams rows as stored."""
    with tempfile.TemporaryDirectory() as folder:
        db = create_database(f"sqlite:///{folder}/bench.db")
        await db.open()
        try:
            await migrate(db)
            user = await users.create(db, email="bench@example.com", password_hash="-")
            importer = _Parsed(parsed)
            started = time.perf_counter()
            source = 0
            for path in paths:
                outcome = await import_file(db, [importer], user.id, path, recompute=False)
                if outcome.status == "imported":
                    source += path.stat().st_size
            seconds = time.perf_counter() - started
            stored = await db.fetchval("SELECT coalesce(sum(length(data)), 0) FROM activity_streams")
            rows = await db.fetchval("SELECT count(*) FROM activities")
        finally:
            await db.close()
    return int(stored), source, int(rows), seconds


def bare_fitdecode(path: Path) -> float:
    """Time to walk every frame of one FIT file with fitdecode alone."""
    started = time.perf_counter()
    try:
        with fitdecode.FitReader(str(path)) as reader:
            for _ in reader:
                pass
    except fitdecode.FitError:
        pass
    return time.perf_counter() - started


def four_hour_stream(recorded: list[Streams]) -> Streams:
    """14,400 samples at 1 Hz with every channel, built from the longest real recording."""
    source = max((s for s in recorded if len(s.channels()) == 9), key=len)
    index = np.arange(FOUR_HOURS_1HZ) % len(source)
    channels = {name: np.asarray(values)[index] for name, values in source.channels().items()}
    return Streams(time_s=np.arange(FOUR_HOURS_1HZ, dtype=np.float64), **channels)


def time_decode(blob: bytes, runs: int = 200) -> tuple[float, float]:
    streams_codec.decode(blob)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        streams_codec.decode(blob)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), min(samples)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    warnings.filterwarnings("ignore", category=UserWarning, module=r"fitdecode(\.|$)")
    paths = fixture_files()
    fit_paths = [p for p in paths if p.suffix.lower() == ".fit"]
    if not paths:
        print(f"no fixtures under {FIXTURES}")
        return 0

    # One pass; for FIT files the bare fitdecode walk runs right before our import of the same
    # file, so machine load drifts affect both sides alike.
    everything, fit_only = Totals(), Totals()
    bare = 0.0
    parsed: dict[Path, list[ImportedActivity] | None] = {}
    for path in paths:
        if path in fit_paths:
            bare += bare_fitdecode(path)
        seconds, legs, blobs = import_and_encode(path)
        parsed[path] = legs
        everything.add(path, seconds, legs, blobs)
        if path in fit_paths:
            fit_only.add(path, seconds, legs, blobs)

    print(f"fixtures: {len(paths)} files ({everything.refused} refused), {FIXTURES}")
    print(
        f"import + encode, all files: {everything.files / everything.seconds:8.1f} files/s"
        f"  {everything.samples / everything.seconds:10.0f} samples/s  ({everything.seconds:.2f} s)"
    )
    print(
        f"import + encode, FIT only:  {fit_only.files / fit_only.seconds:8.1f} files/s"
        f"  {fit_only.samples / fit_only.seconds:10.0f} samples/s  ({fit_only.seconds:.2f} s)"
    )
    print(
        f"fitdecode bare decode, FIT: {len(fit_paths) / bare:8.1f} files/s  ({bare:.2f} s); "
        f"ours / fitdecode = {fit_only.seconds / bare:.2f}x"
    )
    fit_ratio = fit_only.stored_bytes / fit_only.source_bytes
    all_ratio = everything.stored_bytes / everything.source_bytes
    print(
        f"stored stream bytes: FIT {fit_only.stored_bytes:,} / {fit_only.source_bytes:,} = {fit_ratio:.3f}x"
        f"  [goal <= {RATIO_GOAL}x: {verdict(fit_ratio <= RATIO_GOAL)}];"
        f" all formats {all_ratio:.3f}x"
    )
    stored, source, rows, store_s = asyncio.run(through_the_store(fit_paths, parsed))
    store_ratio = stored / source
    print(
        f"through the real store (trainer import path, SQLite): FIT stream rows {stored:,} / {source:,} bytes"
        f" = {store_ratio:.3f}x  [goal <= {RATIO_GOAL}x: {verdict(store_ratio <= RATIO_GOAL)}];"
        f" {rows} activities stored in {store_s:.2f} s (load analysis + dedupe + write, parsing excluded)"
    )
    stream = four_hour_stream(everything.streams)
    blob = streams_codec.encode(stream)
    median, best = time_decode(blob)
    print(
        f"decode 4 h 1 Hz stream ({len(stream):,} samples, {len(stream.channels())} channels + time,"
        f" {len(blob):,} bytes): median {median * 1e3:.3f} ms, best {best * 1e3:.3f} ms"
        f"  [goal < {DECODE_GOAL_S * 1e3:.0f} ms: {verdict(median < DECODE_GOAL_S)}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

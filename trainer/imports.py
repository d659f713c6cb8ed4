"""Importing activity files for a user: the one path behind `trainer import` and the app's upload.

A file goes to the first FileImporter plugin that recognizes it, is parsed in a worker thread
(parsers are blocking, CPU-bound code), gets its training load from the user's settings, and is
stored through store.activities, so a file of a workout that Garmin or Strava already delivered
joins that activity instead of doubling it. Every outcome is one line for the user: a corrupt or
unsupported file is "refused" with a reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trainer.activity_load import load_for
from trainer.after_write import recompute_from
from trainer.analysis.load import ActivityLoad
from trainer.db import Database
from trainer.normalized import ImportedActivity
from trainer.plugins import FileImporter, ImportFileError
from trainer.profile import UserSettings
from trainer.store import activities, users

log = logging.getLogger("trainer.imports")

HEAD_BYTES = 4096
Status = Literal["imported", "duplicate", "refused"]


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file."""

    name: str
    status: Status
    activity_ids: list[str] = field(default_factory=list)
    reason: str = ""  # refused: why (one line); duplicate: what it duplicated
    days: list[dt.date] = field(default_factory=list)  # local days whose state must be recomputed


def importer_for(importers: Sequence[FileImporter], path: Path, display_name: str | None = None) -> FileImporter | None:
    """The first importer that recognizes the file's first bytes (or, failing that, its name)."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    name = display_name or path.name
    for importer in importers:
        if importer.sniff(head, name):
            return importer
    return None


async def import_file(
    db: Database,
    importers: Sequence[FileImporter],
    user_id: str,
    path: Path,
    *,
    display_name: str | None = None,
    recompute: bool = True,
) -> FileOutcome:
    """Import one file for `user_id`; see the module docstring."""
    name = display_name or path.name
    try:
        importer = importer_for(importers, path, name)
    except OSError as exc:
        return FileOutcome(name, "refused", reason=f"cannot read file: {exc.strerror or type(exc).__name__}")
    if importer is None:
        return FileOutcome(name, "refused", reason="unsupported file: not an activity file this server can import")
    user = await users.get(db, user_id)
    settings = UserSettings.model_validate(user.settings)
    try:
        prepared = await asyncio.to_thread(_parse_and_analyze, importer, path, settings)
    except ImportFileError as exc:
        return FileOutcome(name, "refused", reason=_one_line(str(exc)))
    except Exception:  # a plugin's bug: the user sees one line, the log has the traceback
        log.exception("importer %s failed on a file", type(importer).__name__)
        return FileOutcome(name, "refused", reason="the file could not be read (internal error, see the server log)")
    if not prepared:
        return FileOutcome(name, "refused", reason="no activity found in the file")
    async with db.transaction() as tx:
        results = [await activities.save_imported(tx, user_id, leg, load=load) for leg, load in prepared]
    days = sorted({r.day for r in results if r.created or r.changed})
    ids = list(dict.fromkeys(r.activity_id for r in results))
    if recompute:
        await recompute_from(db, user_id, days)
    if any(r.created for r in results):
        return FileOutcome(name, "imported", ids, days=days)
    merged = any(r.merged for r in results)
    return FileOutcome(name, "duplicate", ids, "same workout as an activity from another source" if merged else "")


def _parse_and_analyze(
    importer: FileImporter, path: Path, settings: UserSettings
) -> list[tuple[ImportedActivity, ActivityLoad | None]]:
    legs = importer.parse(path)
    zone = _zone(settings)
    prepared: list[tuple[ImportedActivity, ActivityLoad | None]] = []
    for leg in legs:
        leg = _with_offset(leg, zone)
        try:
            load = load_for(settings, leg)
        except Exception:  # analysis must never block storing the workout itself
            log.exception("load analysis failed for an imported activity")
            load = None
        prepared.append((leg, load))
    return prepared


def _zone(settings: UserSettings) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)


def _with_offset(leg: ImportedActivity, zone: dt.tzinfo) -> ImportedActivity:
    """GPX and some FIT files do not say the local offset; the user's time zone is the best guess."""
    activity = leg.activity
    if activity.utc_offset_s is not None:
        return leg
    offset = activity.start_time.astimezone(zone).utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    return leg.model_copy(update={"activity": activity.model_copy(update={"utc_offset_s": seconds})})


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "the file could not be imported"

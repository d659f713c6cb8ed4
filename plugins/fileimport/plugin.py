"""The file importer as a plugin: FIT, GPX and TCX (plain or gzipped) through the public interface.

Registered as entry point "files", like any third-party importer would be. The parsing itself
lives in this package's parse module; this class only adapts it to trainer.plugins.FileImporter
(sniffing by content, the interface's error type).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from trainer.normalized import ImportedActivity
from trainer.plugins import FileImporter, ImportFileError, Plugin, PluginSettings

from .errors import ImportFileError as ParseError
from .parse import parse_activity_file

_GZIP = b"\x1f\x8b"
_SUFFIXES = (".fit", ".gpx", ".tcx", ".fit.gz", ".gpx.gz", ".tcx.gz")


class FileImportSettings(PluginSettings):
    """[plugins.files]: nothing to configure besides `enabled`."""


class FileImportPlugin(Plugin, FileImporter):
    name = "files"
    version = "1.0"
    description = "Activity files: FIT, GPX and TCX, plain or gzipped (Strava and Garmin exports)"
    settings_model = FileImportSettings
    file_types: ClassVar[tuple[str, ...]] = ("fit", "gpx", "tcx", "fit.gz", "gpx.gz", "tcx.gz")

    def sniff(self, head: bytes, filename: str) -> bool:
        if head.startswith(_GZIP):
            return True  # the parser looks inside and refuses what is not an activity
        if len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT":
            return True
        if b"<gpx" in head or b"<TrainingCenterDatabase" in head:
            return True
        return filename.lower().endswith(_SUFFIXES)

    def parse(self, path: Path) -> list[ImportedActivity]:
        try:
            return parse_activity_file(path)
        except ParseError as exc:
            raise ImportFileError(exc.reason) from None

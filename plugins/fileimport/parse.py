"""Entry point of the file import: pick the right parser by content, never by name alone.

Uploads come from phones, watches and bulk exports (Strava's export gzips each activity as
``.fit.gz``/``.gpx.gz``/``.tcx.gz``) and file names lie, so the format is sniffed: gzip magic,
then the FIT header's ".FIT" signature, then the XML root element (<gpx>, or
<TrainingCenterDatabase> for TCX).

The external id of an imported activity is a hash of the decompressed file content, so
importing the same recording again, gzipped or not, yields the same id and is idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

from trainer.normalized import ImportedActivity

from .errors import ImportFileError
from .fit import parse_fit
from .gpx import parse_gpx
from .tcx import parse_tcx
from .xmlsafe import xml_root_name

__all__ = ["MAX_FILE_BYTES", "ImportFileError", "content_id", "parse_activity_bytes", "parse_activity_file"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES: Final = 200 * 1024 * 1024
"""Largest file accepted, before and after decompression (a 24 h 1 Hz FIT file is ~5 MB)."""
_MB: Final = 1024 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_ID_HEX_CHARS: Final = 32

Parser = Callable[[bytes, str], list[ImportedActivity]]


def content_id(data: bytes) -> str:
    """Stable external id: the first 32 hex chars of the SHA-256 of the (decompressed) bytes."""
    return hashlib.sha256(data).hexdigest()[:_ID_HEX_CHARS]


def _too_large() -> ImportFileError:
    return ImportFileError(f"file too large (limit {MAX_FILE_BYTES // _MB} MB)")


def _gunzip(data: bytes) -> bytes:
    """Decompress every gzip member, refusing output beyond MAX_FILE_BYTES (gzip bombs)."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, MAX_FILE_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise ImportFileError(f"corrupt gzip file: {exc}") from None
        if len(out) > MAX_FILE_BYTES or inflater.unconsumed_tail:
            raise _too_large()
        if not inflater.eof:
            raise ImportFileError("corrupt gzip file: unexpected end of data")
        rest = inflater.unused_data.lstrip(b"\0")  # some writers pad between members
        if rest and not rest.startswith(_GZIP_MAGIC):
            break  # trailing garbage after the last member: ignore, like gzip(1)
    return bytes(out)


def _is_fit(data: bytes) -> bool:
    return len(data) >= 12 and data[0] in (12, 14) and data[8:12] == b".FIT"


def _sniff(data: bytes) -> tuple[str, Parser]:
    if _is_fit(data):
        return "FIT", parse_fit
    root = xml_root_name(data)
    if root == "gpx":
        return "GPX", parse_gpx
    if root == "TrainingCenterDatabase":
        return "TCX", parse_tcx
    if root is not None:
        raise ImportFileError(f"unsupported file: XML root element <{root}> is neither GPX nor TCX")
    if data.startswith(_ZIP_MAGIC):
        raise ImportFileError("unsupported file: ZIP archive; upload the activity files inside it")
    if not data:
        raise ImportFileError("empty file")
    raise ImportFileError("unsupported file: not a FIT, GPX or TCX activity (or a gzip of one)")


def parse_activity_bytes(data: bytes) -> list[ImportedActivity]:
    """Parse an activity file held in memory; see :func:`parse_activity_file`."""
    if len(data) > MAX_FILE_BYTES:
        raise _too_large()
    if data.startswith(_GZIP_MAGIC):
        data = _gunzip(data)
    kind, parser = _sniff(data)
    try:
        return parser(data, content_id(data))
    except ImportFileError:
        raise
    except Exception as exc:  # a parser bug must not turn a bad upload into a traceback
        log.exception("unexpected error while parsing a %s file", kind)
        raise ImportFileError(f"unreadable {kind} file ({exc.__class__.__name__})") from exc


def parse_activity_file(path: Path) -> list[ImportedActivity]:
    """Parse a FIT, GPX or TCX file (optionally gzipped) into imported activities.

    Returns one ImportedActivity per recorded activity; multisport recordings yield one per leg
    (transitions included), grouped by ``parent_external_id``. Raises :class:`ImportFileError`
    with a one-line reason for anything that cannot be imported.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _too_large()
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read file: {exc.strerror or exc.__class__.__name__}") from None
    return parse_activity_bytes(data)

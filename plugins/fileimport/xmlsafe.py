"""Defensive checks shared by the XML formats (GPX, TCX) before any XML parser sees the bytes.

Why: uploads are untrusted. GPX and TCX never need a DTD, so any DOCTYPE/ENTITY declaration is
refused outright, which rules out entity-expansion ("billion laughs") and external-entity
tricks whatever parser (ElementTree, or lxml under gpxpy) ends up reading the document.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from .errors import ImportFileError

__all__ = ["MAX_XML_BYTES", "check_xml", "decode_xml", "xml_root_name"]

MAX_XML_BYTES: Final = 64 * 1024 * 1024
"""Largest GPX/TCX accepted: a DOM needs ~10x the text size in memory."""

_PROLOG_BYTES: Final = 64 * 1024
_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# Skip the XML declaration, comments, processing instructions, a DOCTYPE (refused later, with a
# clear reason, once the format is known) and whitespace; capture the root element's local name.
_ROOT = re.compile(
    rb"^(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*"
    rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)",
    re.DOTALL,
)


def _strip_bom(data: bytes) -> bytes:
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


def xml_root_name(data: bytes) -> str | None:
    """Local name of the root element, or None when ``data`` does not look like XML."""
    head = _strip_bom(data[:_PROLOG_BYTES])
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    match = _ROOT.match(head)
    return match.group(1).decode("ascii") if match else None


def check_xml(data: bytes, kind: str) -> None:
    """Refuse XML that is too large or declares a DTD/entities."""
    if len(data) > MAX_XML_BYTES:
        raise ImportFileError(f"file too large (limit {MAX_XML_BYTES // (1024 * 1024)} MB for {kind})")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ImportFileError(f"unsafe {kind}: DTD and entity declarations are not accepted")


def decode_xml(data: bytes, kind: str) -> str:
    """Decode per the XML declaration (UTF-8 by default), for parsers that want text."""
    data = _strip_bom(data)
    match = _DECLARATION.match(data[:512])
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    try:
        return data.decode(encoding)
    except LookupError:
        raise ImportFileError(f"corrupt {kind}: unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"corrupt {kind}: not valid {encoding} text at byte {exc.start}") from None

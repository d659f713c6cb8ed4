"""The JSON values stored in the databases: one encoder for what goes in, and a decoder with
orjson's speed and the standard library's results for what comes back.

Encoding is the standard library's, compact, refusing NaN and Infinity (PostgreSQL's jsonb has no
literal for them, and SQLite must store the same text), through one encoder object: json.dumps with
arguments builds a new encoder on every call, a third of the cost for a small value.

Every JSON column read (settings, inbox payloads, daily state) is decoded here, dozens per processed
event, and orjson is several times faster. It differs from Python's json in two ways that matter:
an integer beyond 64 bits comes back as a rounded float, and NaN/Infinity literals are refused.
Text with a run of 19 or more digits therefore goes to the standard decoder, as does anything orjson
refuses, so a value always decodes to what the standard library would give. The run is found by
mapping every digit to "0" and searching for nineteen of them: two passes in C, a fraction of the
decoding, where a regular expression took four times as long as orjson itself on a 50 kB body.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
dumps = _ENCODER.encode
"""Compact JSON text of a value; ValueError for NaN or Infinity, TypeError for what JSON cannot hold."""

_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_NINETEEN_DIGITS = b"0" * 19


def loads(raw: bytes | str) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    if _NINETEEN_DIGITS in data.translate(_DIGITS_AS_ZERO):  # maybe an integer beyond 64 bits
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

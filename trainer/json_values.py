"""Decoding the JSON values the databases hand back: orjson's speed, the standard library's results.

Every JSON column read (settings, inbox payloads, daily state) is decoded here, dozens per processed
event, and orjson is several times faster. It differs from Python's json in two ways that matter:
an integer beyond 64 bits comes back as a rounded float, and NaN/Infinity literals are refused.
Text with a run of 19 or more digits therefore goes to the standard decoder, as does anything orjson
refuses, so a stored value always decodes to what the standard library would give.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_MAYBE_BEYOND_64_BITS = re.compile(rb"\d{19}")


def loads(raw: bytes | str) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    if _MAYBE_BEYOND_64_BITS.search(data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

"""Turning values from outside into database values, per column kind.

Two directions of trust, two functions:
- `from_client` cleans what a device pushed. It never raises for a bad value: a string too long is
  truncated, a number out of range is clamped or nulled, a numeric string becomes a number, garbage
  becomes the column's default. Only a *required* column of a new row without a usable value makes
  the record unusable (`Unusable`); one odd record must never leave a device unable to sync.
- `from_server` checks what trainer's own code writes (ingest, analysis) and raises ValueError on a
  bad value: there a wrong value is a bug to surface, not user input to forgive.

Database values are what both backends accept and return: str for text and days ('YYYY-MM-DD'),
float/int, bool, int ms for instants, and Python objects for JSON documents.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from trainer.clock import datetime_to_ms
from trainer.ids import is_valid_id
from trainer.sync.tables import Column

MAX_JSON_CHARS = 64 * 1024
MIN_DAY = date(1900, 1, 1)
MAX_DAY = date(2200, 12, 31)
MAX_INSTANT_MS = 7_258_118_400_000  # 2200-01-01: far enough, and well inside 2^53
_MISSING = object()


class Unusable(ValueError):
    """A required column of a new row has no usable value: the record cannot be stored."""


def from_client(column: Column, raw: Any) -> Any:
    """The database value for a pushed `raw` value (see module docstring)."""
    value = _CLEAN[column.kind](column, raw)
    if value is None and not column.optional:
        if column.required:
            raise Unusable(f"{column.name} is missing or not valid")
        return column.default
    return value


def to_wire(column: Column, value: Any) -> Any:
    """How a database value looks in a pulled record (JSON documents as text)."""
    if value is None:
        return None
    if column.kind == "json":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return value


def same_on_wire(column: Column, raw: Any, value: Any) -> bool:
    """Whether the device's copy (`raw`) already equals what the server stores (`value`).

    When it does not (the server cleaned the value, or the column is server-computed), the row is
    sent back to the pushing device on its next pull instead of being skipped as its own echo.
    """
    if column.kind == "json":
        return _json_value(raw) == _json_value(value)
    if isinstance(raw, bool) != isinstance(value, bool):
        return False
    stored = to_wire(column, value)
    if not column.optional and raw is None:
        return stored == column.client_default
    return raw == stored


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return _MISSING
    return value


# -- client values --------------------------------------------------------------------------


def _clean_text(column: Column, raw: Any) -> str | None:
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int | float) and math.isfinite(raw):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if column.references is not None:
        return text if is_valid_id(text) else None
    if column.choices is not None:
        return text if text in column.choices else None
    if column.max_length is not None and len(text) > column.max_length:
        text = text[: column.max_length]
    return text


def _as_float(raw: Any) -> float | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _in_range(column: Column, number: float) -> float | None:
    lo = column.lo if column.lo is not None else -math.inf
    hi = column.hi if column.hi is not None else math.inf
    if lo <= number <= hi:
        return number
    if column.out_of_range == "clamp" or not column.optional:
        return min(max(number, lo), hi)
    return None


def _clean_number(column: Column, raw: Any) -> float | None:
    number = _as_float(raw)
    return None if number is None else _in_range(column, number)


def _clean_integer(column: Column, raw: Any) -> int | None:
    number = _clean_number(column, raw)
    return None if number is None else round(number)


def _clean_instant(column: Column, raw: Any) -> int | None:
    number = _as_float(raw)
    if number is None and isinstance(raw, str):
        try:
            number = datetime_to_ms(datetime.fromisoformat(raw.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    if number is None or not 0 <= number <= MAX_INSTANT_MS:
        return None
    return int(number)


def _clean_boolean(column: Column, raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0"):
        return raw.strip().lower() in ("true", "1")
    return None


def _clean_day(column: Column, raw: Any) -> str | None:
    if not isinstance(raw, str) or len(raw.strip()) < 10:
        return None
    text = raw.strip()
    if len(text) > 10 and text[10] not in "T ":  # only 'YYYY-MM-DD' or an ISO date-time's date part
        return None
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return day.isoformat() if MIN_DAY <= day <= MAX_DAY else None


def _clean_json(column: Column, raw: Any) -> Any:
    if isinstance(raw, str):
        if len(raw) > MAX_JSON_CHARS:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
    else:
        value = raw
    if not isinstance(value, dict | list):
        return None
    if column.default is not None and not isinstance(value, type(column.default)):
        return None
    return _without_nul(value)


def _without_nul(value: Any) -> Any:
    """The JSON value with U+0000 removed from every string (PostgreSQL jsonb cannot store it)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


_CLEAN = {
    "text": _clean_text,
    "number": _clean_number,
    "integer": _clean_integer,
    "instant": _clean_instant,
    "boolean": _clean_boolean,
    "day": _clean_day,
    "json": _clean_json,
}


# -- server values --------------------------------------------------------------------------


def from_server(column: Column, value: Any) -> Any:
    """The database value for a value trainer's own code writes; ValueError when it is wrong."""
    if value is None:
        if not column.optional:
            raise ValueError(f"{column.name} cannot be null")
        return None
    kind = column.kind
    if kind == "text":
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"{column.name} must be a string without NUL characters")
        if column.references is not None and not is_valid_id(value):
            raise ValueError(f"{column.name} is not a valid id")
        return value
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{column.name} must be a finite number")
        return round(value) if kind == "integer" else float(value)
    if kind == "instant":
        if isinstance(value, datetime):
            return datetime_to_ms(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{column.name} must be integer milliseconds or an aware datetime")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{column.name} must be a bool")
        return value
    if kind == "day":
        if isinstance(value, datetime):
            raise ValueError(f"{column.name} must be a date, not a datetime")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str) and _clean_day(column, value) == value:
            return value
        raise ValueError(f"{column.name} must be a date or 'YYYY-MM-DD'")
    # json: anything JSON can hold, without NaN or NUL
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{column.name} is not JSON-serializable: {exc}") from None
    if "\\u0000" in text:
        raise ValueError(f"{column.name} must not contain NUL characters")
    return value

"""The one clock of trainer.

Tokens, throttles, sync stamps and schedules all read time here, so tests can move time in one
place (`freeze`) and nothing compares two different clocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_offset_s: float = 0.0
_frozen_at: float | None = None


def now_s() -> float:
    """Seconds since the epoch (UTC) as a float."""
    if _frozen_at is not None:
        return _frozen_at
    return time.time() + _offset_s


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every stored instant and of sync timestamps."""
    return int(now_s() * 1000)


def now() -> datetime:
    """The current instant as an aware UTC datetime."""
    return datetime.fromtimestamp(now_s(), tz=UTC)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: trainer stores only aware instants")
    return int(value.timestamp() * 1000)


@contextmanager
def shifted(seconds: float) -> Iterator[None]:
    """Move the clock forward (tests of expiry and throttling)."""
    global _offset_s
    _offset_s += seconds
    try:
        yield
    finally:
        _offset_s -= seconds


@contextmanager
def frozen(at_s: float) -> Iterator[None]:
    """Stop the clock at one instant (tests that need exact equality)."""
    global _frozen_at
    previous, _frozen_at = _frozen_at, at_s
    try:
        yield
    finally:
        _frozen_at = previous

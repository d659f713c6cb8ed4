"""Calendar days in the user's time zone.

Daily loads, readiness and the plan are all per *local* calendar day: a run at 23:30 in Berlin
belongs to that evening, not to the next UTC day. Every conversion goes through here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from trainer import clock
from trainer.profile import UserSettings

__all__ = ["day_start_ms", "local_day", "today", "user_zone", "week_bounds"]

ONE_DAY = dt.timedelta(days=1)


def user_zone(settings: UserSettings) -> ZoneInfo:
    return ZoneInfo(settings.timezone)


def today(zone: ZoneInfo) -> dt.date:
    """The user's current calendar day, from the one clock."""
    return clock.now().astimezone(zone).date()


def local_day(instant_ms: int, zone: ZoneInfo) -> dt.date:
    return clock.ms_to_datetime(instant_ms).astimezone(zone).date()


def day_start_ms(day: dt.date, zone: ZoneInfo) -> int:
    """First millisecond of a local day (DST-safe: midnight local, whatever the offset)."""
    return clock.datetime_to_ms(dt.datetime.combine(day, dt.time(0), tzinfo=zone))


def week_bounds(day: dt.date, week_start: str) -> tuple[dt.date, dt.date]:
    """First and last day of the user's week containing `day` (weeks start monday or sunday)."""
    first_weekday = 0 if week_start == "monday" else 6
    start = day - dt.timedelta(days=(day.weekday() - first_weekday) % 7)
    return start, start + dt.timedelta(days=6)

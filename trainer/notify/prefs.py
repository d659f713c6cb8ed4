"""Whether a message may go out now, by the user's own settings.

Decided when the message is delivered, not when it is written: a user who turns notifications off
or mutes a category stops receiving messages that were already waiting, and quiet hours are
judged at the moment the phone would buzz, in the user's time zone (DST included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from trainer.profile import UserSettings

Action = Literal["send", "defer", "drop", "skip"]


@dataclass(frozen=True)
class Decision:
    action: Action
    until_ms: int | None = None  # defer: when the quiet period ends
    reason: str = ""


def decide(settings: UserSettings, category: str, now_ms: int) -> Decision:
    if not settings.notifications:
        return Decision("skip", reason="notifications are off")
    if category in settings.muted_notifications:
        return Decision("skip", reason=f"{category} is muted")
    end = quiet_until(settings, now_ms)
    if end is None:
        return Decision("send")
    if settings.quiet_hours_mode == "drop":
        return Decision("drop", reason="quiet hours")
    return Decision("defer", until_ms=end, reason="quiet hours")


def quiet_until(settings: UserSettings, now_ms: int) -> int | None:
    """When the quiet period around `now_ms` ends (ms), or None when it is not quiet now.

    Start and end are local wall-clock times; a period such as 22:00-07:00 runs over midnight.
    Equal start and end mean no quiet hours (rather than a whole day of silence).
    """
    if not settings.quiet_hours_start or not settings.quiet_hours_end:
        return None
    start, end = _hhmm(settings.quiet_hours_start), _hhmm(settings.quiet_hours_end)
    if start == end:
        return None
    zone = ZoneInfo(settings.timezone)
    local = datetime.fromtimestamp(now_ms / 1000, tz=zone)
    clock_now = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        if not start <= clock_now < end:
            return None
        end_day = today
    else:
        if end <= clock_now < start:
            return None
        end_day = today + timedelta(days=1) if clock_now >= start else today
    until = _instant(end_day, end, zone)
    return until if until > now_ms else None


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _instant(day: date, at: time, zone: ZoneInfo) -> int:
    """A local wall-clock time as ms; one skipped by a DST jump (02:30 that night) lands an hour later."""
    return int(datetime.combine(day, at, tzinfo=zone).timestamp() * 1000)

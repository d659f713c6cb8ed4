"""Quiet hours and preferences, judged in the user's time zone (pure: no database)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from trainer.notify.prefs import Decision, decide, quiet_until
from trainer.profile import UserSettings


def ms(text: str, zone: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def quiet(start: str, end: str, zone: str = "Europe/Berlin", **more: object) -> UserSettings:
    return UserSettings(timezone=zone, quiet_hours_start=start, quiet_hours_end=end, **more)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2025-06-15 21:59", None),
        ("2025-06-15 22:00", "2025-06-16 07:00"),
        ("2025-06-15 23:59", "2025-06-16 07:00"),
        ("2025-06-16 00:30", "2025-06-16 07:00"),
        ("2025-06-16 06:59", "2025-06-16 07:00"),
        ("2025-06-16 07:00", None),
        ("2025-06-16 12:00", None),
    ],
)
def test_overnight_quiet_hours(now: str, until: str | None):
    expected = None if until is None else ms(until, "Europe/Berlin")
    assert quiet_until(quiet("22:00", "07:00"), ms(now, "Europe/Berlin")) == expected


def test_daytime_quiet_hours_and_the_users_zone():
    settings = quiet("13:00", "15:00", "Asia/Tokyo")
    assert quiet_until(settings, ms("2025-06-15 14:00", "Asia/Tokyo")) == ms("2025-06-15 15:00", "Asia/Tokyo")
    assert quiet_until(settings, ms("2025-06-15 14:00", "Europe/Berlin")) is None  # 21:00 in Tokyo


def test_quiet_hours_ending_after_a_dst_change_end_at_local_time():
    # Europe/Berlin springs forward at 02:00 on 2025-03-30: the night is an hour shorter.
    settings = quiet("22:00", "07:00")
    assert quiet_until(settings, ms("2025-03-29 23:00", "Europe/Berlin")) == ms("2025-03-30 07:00", "Europe/Berlin")
    assert (ms("2025-03-30 07:00", "Europe/Berlin") - ms("2025-03-29 23:00", "Europe/Berlin")) == 7 * 3600 * 1000


def test_no_or_empty_quiet_hours():
    now = ms("2025-06-15 23:00", "Europe/Berlin")
    assert quiet_until(UserSettings(), now) is None
    assert quiet_until(quiet("22:00", "22:00"), now) is None
    assert quiet_until(UserSettings(quiet_hours_start="22:00"), now) is None


def test_decisions():
    night = ms("2025-06-15 23:00", "Europe/Berlin")
    assert decide(UserSettings(), "plan_adapted", night) == Decision("send")
    assert decide(quiet("22:00", "07:00"), "plan_adapted", night).action == "defer"
    assert decide(quiet("22:00", "07:00", quiet_hours_mode="drop"), "plan_adapted", night).action == "drop"
    assert decide(UserSettings(notifications=False), "plan_adapted", night).action == "skip"
    muted = UserSettings(muted_notifications=["plan_adapted"])
    assert decide(muted, "plan_adapted", night).action == "skip"
    assert decide(muted, "low_readiness", night).action == "send"

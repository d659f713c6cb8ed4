"""A user's own settings: the physiology the analysis needs and the app's display preferences.

Stored as one JSON document on the user row. `SettingsPatch` is the partial update the app sends:
unknown keys are refused (a typo must not be silently dropped), null clears a value.
"""

from __future__ import annotations

from copy import copy
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from trainer.errors import InvalidInput
from trainer.notify.templates import Category

Sex = Literal["male", "female", "unknown"]


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
    return value


class UserSettings(BaseModel):
    """What the app may read and change about its user (besides email and password)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    display_name: str | None = Field(None, max_length=100)
    birth_year: int | None = Field(None, ge=1900, le=date.today().year)
    sex: Sex = "unknown"
    hr_max: int | None = Field(None, ge=100, le=240, description="Maximum heart rate, bpm (measured if known)")
    hr_rest: int | None = Field(None, ge=25, le=120, description="Resting heart rate, bpm")
    lthr: int | None = Field(None, ge=80, le=230, description="Lactate-threshold heart rate, bpm")
    timezone: str = "UTC"
    units: Literal["metric", "imperial"] = "metric"
    zone_model: Literal["karvonen", "lthr"] = "karvonen"
    week_start: Literal["monday", "sunday"] = "monday"
    quiet_hours_start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_hours_end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    notifications: bool = True
    quiet_hours_mode: Literal["defer", "drop"] = Field(
        "defer", description="Messages due during quiet hours: sent when they end (defer) or never (drop)"
    )
    muted_notifications: list[Category] = Field([], description="Notification categories the user turned off")

    _tz = field_validator("timezone")(_check_timezone)


class _PatchBase(BaseModel):
    """A partial update: only the keys present change; unknown keys are a BAD_REQUEST."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    def apply(self, current: UserSettings) -> UserSettings:
        """The settings after this patch; cross-field rules are checked on the result."""
        merged = current.model_dump() | self.model_dump(exclude_unset=True)
        defaults = UserSettings()
        for key, value in list(merged.items()):
            if value is None and getattr(defaults, key) is not None:
                merged[key] = getattr(defaults, key)  # null resets a non-nullable setting to its default
        result = UserSettings.model_validate(merged)
        if result.hr_max is not None and result.hr_rest is not None and result.hr_rest >= result.hr_max:
            raise InvalidInput("hrRest: must be below hrMax")
        return result


def _optional(field: FieldInfo) -> tuple[object, FieldInfo]:
    patched = copy(field)
    patched.default = None
    return field.annotation | None, patched


# The patch has exactly the fields of UserSettings, each optional: declared once, above.
SettingsPatch = create_model(  # type: ignore[call-overload]
    "SettingsPatch",
    __base__=_PatchBase,
    __validators__={"_tz": field_validator("timezone")(_check_timezone)},
    **{name: _optional(field) for name, field in UserSettings.model_fields.items()},
)

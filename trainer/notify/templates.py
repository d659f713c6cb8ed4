"""Every notification's wording, in one place.

The outbox stores a template key and its parameters (numbers, ids), never finished text: the words
are rendered when the message is delivered, so a wording fix or the user's unit setting applies to
messages still waiting (e.g. deferred over quiet hours), and the stored row holds data, not prose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Category = Literal["activity_analyzed", "plan_adapted", "low_readiness", "connection_lost", "backfill_finished"]
"""What a user can mute one by one (UserSettings.muted_notifications)."""

CATEGORIES: tuple[str, ...] = get_args(Category)
Units = Literal["metric", "imperial"]
Params = Mapping[str, Any]

HOUR_S = 3600
METERS_PER_MILE = 1609.344


class TemplateError(ValueError):
    """An unknown template key or a category that does not match it: a programming error of the caller."""


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


@dataclass(frozen=True)
class Template:
    key: str
    category: Category
    ttl_s: int  # how long after the event the message is still worth sending
    render: Callable[[Params, Units], Rendered]


# -- formatting helpers ----------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def distance_text(meters: Any, units: Units) -> str | None:
    """10234 m -> "10.2 km" (or "6.4 mi"); None when unknown or zero."""
    value = _number(meters)
    if value is None or value <= 0:
        return None
    if units == "imperial":
        return f"{value / METERS_PER_MILE:.1f} mi"
    return f"{value / 1000:.1f} km"


def sport_text(sport: Any) -> str:
    """Sport id to words: "trail_run" -> "Trail Run"; unknown or missing -> "Activity"."""
    if not isinstance(sport, str) or not sport or sport == "other":
        return "Activity"
    return sport.replace("_", " ").title()


def _whole(label: str, value: Any) -> str | None:
    number = _number(value)
    return None if number is None else f"{label} {round(number)}"


def _vendor(params: Params) -> str:
    vendor = params.get("vendor")
    return vendor if isinstance(vendor, str) and vendor else "Your account"


# -- the templates --------------------------------------------------------------------------------


def _activity_analyzed(params: Params, units: Units) -> Rendered:
    parts = [
        distance_text(params.get("distance_m"), units),
        _whole("load", params.get("load")),
        _whole("readiness", params.get("readiness")),
    ]
    body = ", ".join(p for p in parts if p) or "Training load updated"
    return Rendered(f"New {sport_text(params.get('sport'))} Analyzed", body)


def _plan_adapted(params: Params, units: Units) -> Rendered:
    changed = _number(params.get("changed"))
    count = int(changed) if changed is not None else 0
    what = f"{count} workout{'s' if count != 1 else ''} changed" if count else "Upcoming workouts changed"
    reason = params.get("reason")
    return Rendered("Plan Adapted", f"{what}: {reason}" if isinstance(reason, str) and reason else what)


def _low_readiness(params: Params, units: Units) -> Rendered:
    score = _whole("Readiness", params.get("readiness")) or "Readiness is low"
    return Rendered("Low Readiness", f"{score} today. Consider an easy day or rest.")


def _connection_lost(params: Params, units: Units) -> Rendered:
    vendor = _vendor(params)
    return Rendered(f"{vendor} Disconnected", f"Reconnect {vendor} in the app to keep your activities syncing.")


def _backfill_finished(params: Params, units: Units) -> Rendered:
    vendor = _vendor(params)
    count = _number(params.get("activities"))
    if count is None:
        body = "Your history is being imported; activities appear as they are processed."
    else:
        body = f"Found {int(count)} activit{'y' if int(count) == 1 else 'ies'}; they appear as they are processed."
    return Rendered(f"{vendor} Import Finished", body)


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template("activity_analyzed", "activity_analyzed", 24 * HOUR_S, _activity_analyzed),
        Template("plan_adapted", "plan_adapted", 24 * HOUR_S, _plan_adapted),
        Template("low_readiness", "low_readiness", 12 * HOUR_S, _low_readiness),
        Template("vendor_connection_lost", "connection_lost", 7 * 24 * HOUR_S, _connection_lost),
        Template("backfill_finished", "backfill_finished", 3 * 24 * HOUR_S, _backfill_finished),
    )
}


def get(template_key: str) -> Template:
    template = TEMPLATES.get(template_key)
    if template is None:
        raise TemplateError(f"unknown notification template {template_key!r}")
    return template


def render(template_key: str, params: Params, units: Units = "metric") -> Rendered:
    """The title and body a user reads, in their units."""
    return get(template_key).render(params, units)

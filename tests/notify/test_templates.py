"""Message wording: one template per message, rendered in the user's units."""

from __future__ import annotations

import pytest

from trainer.notify.templates import CATEGORIES, TEMPLATES, TemplateError, get, render


def test_activity_analyzed_reads_as_the_app_shows_it():
    params = {"sport": "run", "distance_m": 10234.0, "load": 96.4, "readiness": 73.6}
    text = render("activity_analyzed", params)
    assert (text.title, text.body) == ("New Run Analyzed", "10.2 km, load 96, readiness 74")
    assert render("activity_analyzed", params, "imperial").body == "6.4 mi, load 96, readiness 74"


def test_missing_numbers_are_left_out_not_shown_as_none():
    text = render("activity_analyzed", {"sport": "strength", "distance_m": None, "load": 41})
    assert (text.title, text.body) == ("New Strength Analyzed", "load 41")
    assert render("activity_analyzed", {}).title == "New Activity Analyzed"
    assert render("activity_analyzed", {}).body == "Training load updated"
    assert render("activity_analyzed", {"load": True, "readiness": "high"}).body == "Training load updated"


@pytest.mark.parametrize(
    ("key", "params", "title", "body"),
    [
        ("plan_adapted", {"changed": 1}, "Plan Adapted", "1 workout changed"),
        (
            "plan_adapted",
            {"changed": 3, "reason": "readiness is low"},
            "Plan Adapted",
            "3 workouts changed: readiness is low",
        ),
        ("plan_adapted", {}, "Plan Adapted", "Upcoming workouts changed"),
        ("low_readiness", {"readiness": 28.4}, "Low Readiness", "Readiness 28 today. Consider an easy day or rest."),
        (
            "vendor_connection_lost",
            {"vendor": "Garmin"},
            "Garmin Disconnected",
            "Reconnect Garmin in the app to keep your activities syncing.",
        ),
        (
            "backfill_finished",
            {"vendor": "Strava", "activities": 152},
            "Strava Import Finished",
            "Found 152 activities; they appear as they are processed.",
        ),
        (
            "backfill_finished",
            {"vendor": "Strava", "activities": 1},
            "Strava Import Finished",
            "Found 1 activity; they appear as they are processed.",
        ),
    ],
)
def test_every_template(key: str, params: dict, title: str, body: str):
    text = render(key, params)
    assert (text.title, text.body) == (title, body)


def test_every_category_has_a_template_and_unknown_keys_are_errors():
    assert {t.category for t in TEMPLATES.values()} == set(CATEGORIES)
    with pytest.raises(TemplateError):
        get("no_such_template")

"""Cleaning of pushed values and strict checks of server values (pure functions, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from trainer.sync.tables import TABLES, Column
from trainer.sync.values import Unusable, from_client, from_server, same_on_wire

ACT = TABLES["activities"].by_name
PLAN = TABLES["training_plans"].by_name
WORKOUT = TABLES["scheduled_workouts"].by_name


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        (ACT["name"], "ok", "ok"),
        (ACT["name"], "é" * 300, "é" * 200),
        (ACT["name"], 12.5, "12.5"),
        (ACT["name"], None, ""),
        (ACT["name"], ["x"], ""),
        (ACT["device"], None, None),
        (ACT["duration_s"], "90", 90.0),
        (ACT["duration_s"], -5, 0.0),
        (ACT["duration_s"], True, 0),
        (ACT["avg_hr"], 300, None),
        (ACT["avg_hr"], float("inf"), None),
        (ACT["rpe"], 0, 1),
        (ACT["utc_offset_s"], "3600.6", 3601),
        (ACT["manual"], 1, True),
        (ACT["manual"], "false", False),
        (ACT["manual"], "maybe", False),
        (ACT["start_time"], 1.7e12, 1_700_000_000_000),
        (ACT["start_time"], "2024-05-01T06:00:00Z", 1_714_543_200_000),
        (PLAN["race_date"], "2024-02-29", "2024-02-29"),
        (PLAN["race_date"], "2023-02-29", None),
        (PLAN["race_date"], "2024-06-01T10:00:00+02:00", "2024-06-01"),
        (PLAN["race_date"], "2024-06-01junk", None),
        (PLAN["race_date"], 1_717_200_000_000, None),  # ms is not a calendar day without a time zone
        (PLAN["race_date"], "1066-10-14", None),
        (PLAN["options"], '{"days": 5}', {"days": 5}),
        (PLAN["options"], {"days": 5}, {"days": 5}),
        (PLAN["options"], "[1]", {}),
        (PLAN["options"], "{broken", {}),
        (WORKOUT["kind"], "tempo", "tempo"),
        (WORKOUT["kind"], "zumba", "easy"),
        (WORKOUT["plan_id"], "not an id!", None),
    ],
)
def test_from_client_cleans(column: Column, raw, expected) -> None:
    assert from_client(column, raw) == expected


def test_a_required_column_without_a_usable_value_makes_the_record_unusable() -> None:
    for bad in (None, "", "soon", -1):
        with pytest.raises(Unusable):
            from_client(ACT["start_time"], bad)


def test_same_on_wire_decides_whether_the_device_copy_is_current() -> None:
    assert same_on_wire(ACT["duration_s"], 5, 5.0)
    assert not same_on_wire(ACT["manual"], 1, True)
    assert same_on_wire(PLAN["options"], '{"a": 1}', {"a": 1})
    assert not same_on_wire(ACT["name"], "x" * 300, "x" * 200)
    assert same_on_wire(ACT["trimp"], None, None)


def test_from_server_is_strict() -> None:
    assert from_server(ACT["start_time"], dt.datetime(2024, 5, 1, 6, tzinfo=dt.UTC)) == 1_714_543_200_000
    assert from_server(PLAN["race_date"], dt.date(2024, 5, 1)) == "2024-05-01"
    assert from_server(ACT["utc_offset_s"], 3600.0) == 3600
    for column, value in [
        (ACT["avg_hr"], float("nan")),
        (ACT["avg_hr"], "150"),
        (ACT["manual"], 1),
        (ACT["name"], None),
        (ACT["name"], "a\x00b"),
        (PLAN["race_date"], dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
        (PLAN["options"], {"x": float("inf")}),
        (PLAN["options"], {"x": "a\x00b"}),
        (WORKOUT["plan_id"], "bad id"),
    ]:
        with pytest.raises(ValueError):
            from_server(column, value)

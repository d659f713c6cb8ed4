"""The synced tables as the app sees them: ONE declaration per table.

Each `Table` lists the columns a device receives (and their WatermelonDB type), which of them a
device may write, and how a pushed value is cleaned. The pull serializer, the push sanitizer, the
server-side write API (writes.py), the `migration` whitelist and `trainer codegen` (WatermelonDB
`appSchema` + `schemaMigrations`) all read these declarations, so adding a column is one line here
(plus the SQL migration that creates it).

Value conventions on the wire:
- instants (`kind="instant"`) are integer milliseconds since the epoch, stored as BIGINT ms;
- calendar days (`kind="day"`) are 'YYYY-MM-DD' strings: a day is not an instant, and a number
  would force every client to agree on a time zone to turn it back into a date;
- JSON documents (`kind="json"`) travel as a JSON-encoded string (WatermelonDB has no JSON type);
- booleans are true/false; numbers are JSON numbers; a nullable column is `isOptional` on the app.

Columns with `writable=False` are computed by the server (loads, analysis, plan phase, adaptation
reason) or describe provenance (source); a pushed value for them is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from trainer.analysis.plan import Kind as WorkoutKind

SCHEMA_VERSION = 2
"""Version of the app-side schema these declarations describe; bump it with every column or table
added below (and give the new column `since=` the new version), so codegen emits the migration."""

ColumnKind = Literal["text", "number", "integer", "boolean", "instant", "day", "json"]
WatermelonType = Literal["string", "number", "boolean"]
OutOfRange = Literal["clamp", "null"]

WATERMELON_TYPE: dict[ColumnKind, WatermelonType] = {
    "text": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "instant": "number",
    "day": "string",
    "json": "string",
}


@dataclass(frozen=True)
class Column:
    """One client-visible column.

    `optional`: NULL is a valid value (DB column nullable; app column `isOptional`).
    `required`: a new row cannot be stored without a valid value (the record is rejected, not the push).
    `lo`/`hi` + `out_of_range`: plausible range; user-entered scales are clamped, measurements outside
    physical limits become NULL (for a non-optional column they are clamped).
    `references`: id of a row of another synced table of the same user; `on_parent_delete` says what
    deleting that parent does to this row ("cascade": deleted with a tombstone; "set_null").
    `since`: the SCHEMA_VERSION that introduced the column (drives codegen's schemaMigrations).
    """

    name: str
    kind: ColumnKind
    optional: bool = False
    writable: bool = True
    required: bool = False
    default: Any = None
    max_length: int | None = None
    lo: float | None = None
    hi: float | None = None
    out_of_range: OutOfRange = "null"
    choices: tuple[str, ...] | None = None
    references: str | None = None
    on_parent_delete: Literal["cascade", "set_null"] = "cascade"
    indexed: bool = False
    since: int = 1

    @property
    def watermelon_type(self) -> WatermelonType:
        return WATERMELON_TYPE[self.kind]

    @property
    def client_default(self) -> Any:
        """What WatermelonDB fills in for a missing value of this column (the 'default' of a migration)."""
        if self.optional:
            return None
        return {"string": "", "number": 0, "boolean": False}[self.watermelon_type]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    since: int = 1
    by_name: MappingProxyType[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", MappingProxyType({c.name: c for c in self.columns}))

    @property
    def writable(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.writable)

    @property
    def references(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.references)


def _text(name: str, max_length: int, **kw: Any) -> Column:
    kw.setdefault("default", None if kw.get("optional") else "")
    return Column(name, "text", max_length=max_length, **kw)


def _num(name: str, lo: float, hi: float, **kw: Any) -> Column:
    return Column(name, "number", lo=lo, hi=hi, **kw)


def _opt_num(name: str, lo: float, hi: float, **kw: Any) -> Column:
    return Column(name, "number", optional=True, lo=lo, hi=hi, **kw)


def _computed(name: str) -> Column:
    return Column(name, "number", optional=True, writable=False)


DAY_S = 86_400
ACTIVITIES = Table(
    "activities",
    (
        _text("source", 32, writable=False, default="app"),
        _text("sport", 32, default="other"),
        _text("name", 200),
        _text("notes", 10_000),
        Column("start_time", "instant", required=True, indexed=True),
        Column("utc_offset_s", "integer", lo=-DAY_S, hi=DAY_S, out_of_range="clamp", default=0),
        _num("duration_s", 0, 30 * DAY_S, out_of_range="clamp", default=0),
        _opt_num("moving_time_s", 0, 30 * DAY_S),
        _opt_num("distance_m", 0, 100_000_000),
        _opt_num("elevation_gain_m", 0, 100_000),
        _opt_num("calories_kcal", 0, 100_000),
        _opt_num("avg_hr", 20, 260),
        _opt_num("max_hr", 20, 260),
        _opt_num("avg_power_w", 0, 3_000),
        _opt_num("max_power_w", 0, 5_000),
        _opt_num("normalized_power_w", 0, 3_000),
        _opt_num("avg_cadence", 0, 300),
        _opt_num("avg_speed_m_s", 0, 150),
        _text("device", 100, optional=True),
        Column("manual", "boolean", default=False),
        _opt_num("rpe", 1, 10, out_of_range="clamp"),
        _computed("trimp"),
        _computed("hr_tss"),
        _computed("training_load"),
        Column("analysis", "json", optional=True, writable=False),
    ),
)

DAILY_METRICS = Table(
    "daily_metrics",
    (
        Column("day", "day", required=True, indexed=True),
        _opt_num("resting_hr", 20, 200),
        _opt_num("hrv_rmssd_ms", 1, 500),
        _opt_num("sleep_s", 0, DAY_S, out_of_range="clamp"),
        _opt_num("sleep_score", 0, 100, out_of_range="clamp"),
        _opt_num("stress", 0, 100, out_of_range="clamp"),
        Column("soreness", "integer", optional=True, lo=1, hi=10, out_of_range="clamp"),
        Column("fatigue", "integer", optional=True, lo=1, hi=10, out_of_range="clamp"),
        Column("mood", "integer", optional=True, lo=1, hi=10, out_of_range="clamp"),
        _text("notes", 10_000),
        _text("source", 32, writable=False, default="app"),
    ),
)

TRAINING_PLANS = Table(
    "training_plans",
    (
        _text("name", 200),
        _text("sport", 32, default="run"),
        _text("goal", 1_000),
        Column("start_date", "day", optional=True),
        Column("race_date", "day", optional=True),
        _text("status", 32, default="active"),
        _text("current_phase", 32, optional=True, writable=False),
        Column("options", "json", default={}),
    ),
)

SCHEDULED_WORKOUTS = Table(
    "scheduled_workouts",
    (
        Column("plan_id", "text", optional=True, references="training_plans", on_parent_delete="cascade", indexed=True),
        Column("day", "day", required=True, indexed=True),
        _text("kind", 32, default="easy", choices=get_args(WorkoutKind)),
        _text("title", 200),
        _text("description", 4_000),
        _opt_num("target_duration_min", 0, 24 * 60),
        _opt_num("target_load", 0, 2_000),
        _text("status", 32, default="planned"),
        Column("completed_activity_id", "text", optional=True, references="activities", on_parent_delete="set_null"),
        _text("original_kind", 32, optional=True, writable=False),
        _text("adaptation_reason", 1_000, optional=True, writable=False),
    ),
)

DAILY_STATE = Table(
    "daily_state",
    (
        Column("day", "day", required=True, indexed=True, writable=False),
        *(Column(name, "number", writable=False) for name in ("load", "ctl", "atl", "tsb", "ramp", "readiness_score")),
        *(Column(name, "number", optional=True, writable=False) for name in ("acwr", "monotony", "strain")),
        Column("readiness_band", "text", writable=False),
        Column("readiness_confidence", "text", writable=False),
        Column("readiness_reasons", "json", default=[], writable=False),
    ),
    since=2,
)
"""Computed by trainer/engine/recompute.py; devices only read it (pushed records are ignored)."""

TABLES: MappingProxyType[str, Table] = MappingProxyType(
    {t.name: t for t in (ACTIVITIES, DAILY_METRICS, TRAINING_PLANS, SCHEDULED_WORKOUTS, DAILY_STATE)}
)
"""In dependency order: parents before children (pushes apply in this order, deletions in reverse)."""

META_COLUMNS = ("id", "user_id", "created_stamp", "updated_stamp", "changed_by_device")
"""Bookkeeping columns every synced table has; never client-visible except `id`."""

SERVER_ONLY_COLUMNS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "activities": ("external_id",),
        # JSON text of the session as planned, before adaptation (trainer/engine/adaptation.py).
        "scheduled_workouts": ("planned",),
    }
)
"""Columns the server writes (writes.py) that no device ever sees."""


def children_of(parent: str) -> list[tuple[Table, Column]]:
    """Every (table, column) that references `parent`."""
    return [(t, c) for t in TABLES.values() for c in t.references if c.references == parent]


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a synced table (known: {', '.join(TABLES)})") from None

"""Training-plan generation toward a goal race, and the daily adaptation rules.

Everything here is a coaching convention resting on the evidence graded in
docs/analysis.md (progression ~10 %/week with a hard flag above 30 %, recovery week
every 3-4 weeks at -30..-50 %, ~2-week taper cutting volume 41-60 % while keeping
intensity; HRV-guided intensity; TSB < -30 caps at easy; ACWR/monotony as soft flags;
resting-HR/sleep flags downgrade one level only).  Pure functions: the caller supplies
today's state, nothing is read from a database.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    from trainer.analysis.readiness import Readiness

__all__ = [
    "DOWNGRADE",
    "INTENSITY",
    "Adjustment",
    "DayState",
    "Plan",
    "PlanSettings",
    "PlanWeek",
    "ScheduledWorkout",
    "adapt_day",
    "adapt_workout",
    "apply_adjustments",
    "current_phase",
    "generate_plan",
    "progression_flag",
    "reschedule_missed",
    "retarget",
]

Kind = Literal["rest", "easy", "endurance", "tempo", "intervals", "long", "race"]
Phase = Literal["base", "build", "peak", "taper"]

# Session-average intensity factor per kind: load per hour = 100 * IF^2 (TSS-like scale).
_IF: dict[str, float] = {
    "rest": 0.0,
    "easy": 0.65,
    "endurance": 0.72,
    "long": 0.72,
    "tempo": 0.83,
    "intervals": 0.85,
    "race": 0.95,
}
# Conservativeness order used to pick the most cautious of several rule outcomes.
INTENSITY: dict[str, int] = {"rest": 0, "easy": 1, "endurance": 2, "long": 3, "tempo": 4, "intervals": 5}
# One level down: hard sessions lose intensity before volume, long loses volume.
DOWNGRADE: dict[str, str] = {
    "intervals": "tempo",
    "tempo": "endurance",
    "long": "endurance",
    "endurance": "easy",
    "easy": "rest",
    "rest": "rest",
}
_HARD = frozenset({"intervals", "tempo", "long"})

# Weekly templates: (kind, share of the week's training load), one entry per day of the week
# block (the block ends on race day, so day 6 of the last block is the race).
_Template = tuple[tuple[str, float], ...]
_TEMPLATES: dict[str, _Template] = {
    "base": (
        ("rest", 0.0),
        ("easy", 0.13),
        ("endurance", 0.20),
        ("easy", 0.13),
        ("rest", 0.0),
        ("long", 0.34),
        ("endurance", 0.20),
    ),
    "build": (
        ("rest", 0.0),
        ("intervals", 0.18),
        ("easy", 0.12),
        ("tempo", 0.18),
        ("rest", 0.0),
        ("long", 0.32),
        ("easy", 0.20),
    ),
    "peak": (
        ("rest", 0.0),
        ("intervals", 0.20),
        ("easy", 0.13),
        ("tempo", 0.17),
        ("rest", 0.0),
        ("long", 0.30),
        ("endurance", 0.20),
    ),
    "recovery": (
        ("rest", 0.0),
        ("easy", 0.20),
        ("endurance", 0.25),
        ("rest", 0.0),
        ("easy", 0.20),
        ("endurance", 0.35),
        ("rest", 0.0),
    ),
    "taper": (
        ("rest", 0.0),
        ("intervals", 0.22),
        ("easy", 0.18),
        ("tempo", 0.20),
        ("rest", 0.0),
        ("long", 0.22),
        ("easy", 0.18),
    ),
    "race": (
        ("rest", 0.0),
        ("intervals", 0.30),
        ("easy", 0.25),
        ("rest", 0.0),
        ("easy", 0.25),
        ("easy", 0.20),
        ("race", 0.0),
    ),
}

_NOUN = {"run": "run", "bike": "ride", "swim": "swim"}
_DETAIL: dict[str, str] = {
    "rest": "Rest day: no training, or gentle mobility",
    "easy": "Easy {noun}, conversational (Z1-Z2)",
    "endurance": "Steady endurance {noun} (Z2)",
    "long": "Long {noun} at easy-steady effort (Z2)",
    "tempo": "Tempo {noun}: 2-3 blocks at Z3-Z4 inside an easy {noun}",
    "intervals": "Intervals: 4-6 x 4 min at Z4-Z5a with equal easy recoveries",
    "race": "Race day",
}


@dataclass(frozen=True, slots=True)
class ScheduledWorkout:
    date: dt.date
    kind: Kind
    target_load: float
    target_duration_min: float
    description: str
    phase: Phase


@dataclass(frozen=True, slots=True)
class PlanWeek:
    start: dt.date
    end: dt.date
    phase: Phase
    target_load: float
    recovery: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True, slots=True)
class Plan:
    start: dt.date
    race_date: dt.date
    sport: str
    weeks: tuple[PlanWeek, ...]
    workouts: tuple[ScheduledWorkout, ...]

    def on(self, day: dt.date) -> ScheduledWorkout | None:
        i = (day - self.start).days
        return self.workouts[i] if 0 <= i < len(self.workouts) else None

    def week_of(self, day: dt.date) -> PlanWeek | None:
        return next((w for w in self.weeks if w.start <= day <= w.end), None)


@dataclass(frozen=True, slots=True)
class PlanSettings:
    max_weekly_increase: float = 0.10  # the common 10 % rule (soft; Buist 2008 found no benefit)
    hard_flag_increase: float = 0.30  # Nielsen 2014: > 30 %/week linked to more injuries
    recovery_every: int = 4  # 3 loading weeks + 1 recovery week
    recovery_cut: float = 0.40  # coaching convention -30..-50 %
    taper_weeks: int = 2
    taper_first_cut: float = 0.30
    taper_final_cut: float = 0.55  # Bosquet 2007: cut volume 41-60 %
    peak_weeks: int = 2
    build_fraction: float = 0.4  # share of the pre-peak weeks spent in build
    peak_growth: float = 1.5  # weekly load never exceeds start level x this
    min_weekly_load: float = 150.0  # ~2.5-3 h of easy training: a beginner's floor
    load_per_hour: float = 60.0  # converts weekly hours to load (mixed training, IF ~0.77)
    min_session_min: float = 20.0
    # adaptation
    tsb_floor: float = -30.0
    acwr_high: float = 1.5
    acwr_norm_margin: float = 0.3
    monotony_high: float = 2.0
    reduce_factor: float = 0.8


DEFAULT_PLAN = PlanSettings()


# --------------------------------------------------------------------------- generation


def _phases(full_weeks: int, s: PlanSettings) -> list[Phase]:
    """Taper first (from the end), then peak and build; base takes what is left."""
    taper = min(s.taper_weeks, full_weeks)
    rest = full_weeks - taper
    peak = min(s.peak_weeks, rest // 3)
    build = min(rest - peak, max(1 if rest - peak > 0 else 0, round(s.build_fraction * (rest - peak))))
    base = rest - peak - build
    return ["base"] * base + ["build"] * build + ["peak"] * peak + ["taper"] * taper


def _starting_load(current_ctl: float | None, weekly_hours: float | None, s: PlanSettings) -> float:
    """Weekly load the athlete handles now: 7 x CTL (CTL is a daily average), else hours x
    load_per_hour, floored so a new user still gets a plan."""
    if current_ctl is not None and math.isfinite(current_ctl):
        level = 7.0 * max(current_ctl, 0.0)
    elif weekly_hours is not None and math.isfinite(weekly_hours):
        level = max(weekly_hours, 0.0) * s.load_per_hour
    else:
        level = 0.0
    return max(level, s.min_weekly_load)


def _weekly_loads(phases: Sequence[Phase], start_load: float, s: PlanSettings) -> list[tuple[float, bool]]:
    """(load, is_recovery) per full week.

    Loading weeks grow <= max_weekly_increase over the last loading week, up to
    start x peak_growth; every recovery_every-th week outside the taper is a recovery week
    at last loading x (1 - recovery_cut); taper weeks cut the peak progressively.
    """
    ceiling = start_load * s.peak_growth
    out: list[tuple[float, bool]] = []
    last_loading: float | None = None
    streak = 0
    taper_phases = [p for p in phases if p == "taper"]
    n_taper = len(taper_phases)
    cuts = _taper_cuts(n_taper, s)
    taper_i = 0
    for phase in phases:
        if phase == "taper":
            peak = max((w for w, rec in out if not rec), default=start_load)
            out.append((peak * (1.0 - cuts[taper_i]), False))
            taper_i += 1
            continue
        if last_loading is not None and streak >= s.recovery_every - 1:
            out.append((last_loading * (1.0 - s.recovery_cut), True))
            streak = 0
            continue
        if last_loading is None:
            load = start_load
        elif out[-1][1]:
            load = last_loading  # resume the pre-recovery level after a recovery week
        else:
            load = min(ceiling, last_loading * (1.0 + s.max_weekly_increase))
        load = max(load, last_loading or 0.0)
        out.append((load, False))
        last_loading = load
        streak += 1
    return out


def _taper_cuts(n: int, s: PlanSettings) -> list[float]:
    if n <= 0:
        return []
    if n == 1:
        return [s.taper_final_cut]
    step = (s.taper_final_cut - s.taper_first_cut) / (n - 1)
    return [s.taper_first_cut + i * step for i in range(n)]


def _duration_min(kind: str, load: float, s: PlanSettings) -> float:
    """Minutes that produce `load` at the kind's intensity, rounded to 5 min."""
    f = _IF[kind]
    if kind == "rest" or f <= 0 or load <= 0:
        return 0.0
    minutes = load / (100.0 * f * f) * 60.0
    return float(max(s.min_session_min, 5.0 * round(minutes / 5.0)))


def _describe(kind: str, sport: str, minutes: float, block: str = "") -> str:
    noun = _NOUN.get(sport, "session")
    text = _DETAIL[kind].format(noun=noun)
    if kind == "intervals" and block == "taper":
        text = "Intervals at full intensity, reduced volume: 3-4 x 4 min at Z4-Z5a"
    elif kind == "intervals" and block == "race":
        text = "Openers: 4-6 x 1 min at race effort with full recoveries"
    if kind in ("rest", "race"):
        return text
    return f"{text}, ~{minutes:.0f} min"


def _week_workouts(
    days: Sequence[dt.date], key: str, week_load: float, phase: Phase, sport: str, s: PlanSettings
) -> list[ScheduledWorkout]:
    """Spread a week's load over its template; a partial first week uses the template's
    last days, rescaled so the days present carry the whole (prorated) load."""
    template = _TEMPLATES[key]
    slots = template[len(template) - len(days) :]
    share = sum(f for _, f in slots) or 1.0
    out = []
    for day, (kind, frac) in zip(days, slots, strict=True):
        load = week_load * frac / share
        minutes = _duration_min(kind, load, s)
        desc = _describe(kind, sport, minutes, key)
        out.append(ScheduledWorkout(day, cast(Kind, kind), load, minutes, desc, phase))
    return out


def generate_plan(
    race_date: dt.date,
    *,
    start: dt.date,
    sport: str = "run",
    current_ctl: float | None = None,
    weekly_hours: float | None = None,
    settings: PlanSettings = DEFAULT_PLAN,
) -> Plan:
    """Plan from `start` to race day: 7-day blocks ending on race day, a partial lead-in
    block at the starting level if the span is not a whole number of weeks."""
    if race_date < start:
        raise ValueError("race_date is before start")
    if settings.recovery_every < 2:
        raise ValueError("recovery_every must be >= 2")
    n_days = (race_date - start).days + 1
    full, lead = divmod(n_days, 7)
    start_load = _starting_load(current_ctl, weekly_hours, settings)
    phases = _phases(full, settings)
    loads = _weekly_loads(phases, start_load, settings)
    weeks: list[PlanWeek] = []
    workouts: list[ScheduledWorkout] = []
    day = start
    if lead:
        lead_phase, key, cut = _lead_in(phases, full, settings)
        days = [day + dt.timedelta(days=i) for i in range(lead)]
        load = start_load * lead / 7.0 * (1.0 - cut)
        lead_workouts = _week_workouts(days, key, load, lead_phase, sport, settings)
        weeks.append(PlanWeek(days[0], days[-1], lead_phase, sum(w.target_load for w in lead_workouts)))
        workouts += lead_workouts
        day += dt.timedelta(days=lead)
    for i, (phase, (load, recovery)) in enumerate(zip(phases, loads, strict=True)):
        days = [day + dt.timedelta(days=j) for j in range(7)]
        key = "race" if i == full - 1 else "recovery" if recovery else phase
        weeks.append(PlanWeek(days[0], days[-1], phase, load, recovery))
        workouts += _week_workouts(days, key, load, phase, sport, settings)
        day += dt.timedelta(days=7)
    return Plan(start, race_date, sport, tuple(weeks), tuple(workouts))


def _lead_in(phases: Sequence[Phase], full: int, s: PlanSettings) -> tuple[Phase, str, float]:
    """(phase, template, volume cut) for the partial block before the first whole week.

    Inside the race week it is part of that week; inside a shortened taper it is the taper's
    first step; otherwise it is ordinary training at the starting level."""
    if full == 0:
        return "taper", "race", s.taper_final_cut
    if full < s.taper_weeks:
        return "taper", "taper", s.taper_first_cut
    phase: Phase = phases[0] if phases[0] != "taper" else "peak"
    return phase, phase, 0.0


def current_phase(plan: Plan, day: dt.date) -> Phase | None:
    """Phase of the plan week containing `day`; None outside the plan."""
    week = plan.week_of(day)
    return None if week is None else week.phase


def progression_flag(
    previous_week_load: float, this_week_load: float, settings: PlanSettings = DEFAULT_PLAN
) -> Literal["ok", "above_cap", "hard"]:
    """Classify an actual week-over-week increase: above the ~10 % cap, or above 30 %."""
    if previous_week_load <= 0:
        return "ok"
    rise = this_week_load / previous_week_load - 1.0
    if rise > settings.hard_flag_increase:
        return "hard"
    return "above_cap" if rise > settings.max_weekly_increase + 1e-9 else "ok"


# --------------------------------------------------------------------------- adaptation


@dataclass(frozen=True, slots=True)
class DayState:
    """Today's state as the rules need it; every field may be unknown (None/False)."""

    readiness_band: Literal["green", "amber", "red"] | None = None
    hrv_status: Literal["below", "within", "above"] | None = None
    tsb: float | None = None
    acwr: float | None = None
    acwr_norm: float | None = None
    monotony: float | None = None
    rhr_flag: bool = False
    sleep_flag: bool = False
    readiness_reasons: tuple[str, ...] = ()

    @classmethod
    def from_readiness(
        cls,
        readiness: Readiness | None,
        *,
        tsb: float | None = None,
        acwr: float | None = None,
        acwr_norm: float | None = None,
        monotony: float | None = None,
    ) -> DayState:
        """Bridge from the readiness module so callers cannot mix up which flag is which."""
        if readiness is None:
            return cls(tsb=tsb, acwr=acwr, acwr_norm=acwr_norm, monotony=monotony)
        hrv = readiness.hrv.status if readiness.hrv is not None else None
        return cls(
            readiness_band=readiness.band,
            hrv_status=hrv,
            tsb=tsb,
            acwr=acwr,
            acwr_norm=acwr_norm,
            monotony=monotony,
            rhr_flag=readiness.rhr_flag,
            sleep_flag=readiness.sleep_flag,
            readiness_reasons=readiness.reasons,
        )


@dataclass(frozen=True, slots=True)
class Adjustment:
    date: dt.date
    before: ScheduledWorkout
    after: ScheduledWorkout
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def retarget(workout: ScheduledWorkout, kind: str, factor: float = 1.0, sport: str = "run") -> ScheduledWorkout:
    """Same slot, new kind: keep the duration (easy capped at 45 min) so the athlete still
    moves, recompute load from the new kind's intensity, then scale by `factor`."""
    if kind == "rest":
        return replace(workout, kind="rest", target_load=0.0, target_duration_min=0.0, description=_DETAIL["rest"])
    minutes = workout.target_duration_min
    if kind == "easy" and workout.kind != "easy":
        minutes = min(minutes, 45.0)
    minutes = float(round(minutes * factor))
    load = 100.0 * _IF[kind] ** 2 * minutes / 60.0
    if kind == workout.kind:
        load = workout.target_load * factor
    return replace(
        workout,
        kind=cast(Kind, kind),
        target_load=min(load, workout.target_load),
        target_duration_min=float(minutes),
        description=_describe(kind, sport, minutes),
    )


def _cap(kind: str, limit: str) -> str:
    return limit if INTENSITY[kind] > INTENSITY[limit] else kind


def _rules(kind: str, state: DayState, s: PlanSettings) -> list[tuple[str, float, str]]:
    """Each fired rule as (kind it allows, load factor, reason)."""
    out: list[tuple[str, float, str]] = []
    detail = f" ({'; '.join(state.readiness_reasons)})" if state.readiness_reasons else ""
    if state.hrv_status in ("below", "above"):
        where = "below" if state.hrv_status == "below" else "above"
        if state.readiness_band == "red":
            out.append(("rest", 1.0, f"Readiness red with HRV {where} your normal range{detail}: rest today"))
        else:
            limit = "endurance" if kind == "long" else "easy"
            out.append((_cap(kind, limit), 1.0, f"HRV 7-day average {where} your normal range{detail}: go easy"))
    flags = [n for n, on in (("resting HR", state.rhr_flag), ("sleep", state.sleep_flag)) if on]
    if state.readiness_band in ("amber", "red") and not flags and state.hrv_status not in ("below", "above"):
        flags.append(f"readiness {state.readiness_band}")
    if flags:
        out.append((DOWNGRADE[kind], 1.0, f"{' and '.join(flags).capitalize()} flag{detail}: one step easier"))
    if state.tsb is not None and state.tsb < s.tsb_floor:
        out.append(
            (
                _cap(kind, "easy"),
                1.0,
                f"Form (TSB) {state.tsb:.0f} is below {s.tsb_floor:.0f}: capped at easy",
            )
        )
    acwr_msg = _acwr_reason(state, s)
    if acwr_msg:
        reduced = DOWNGRADE[kind] if kind in ("intervals", "tempo") else kind
        out.append((reduced, s.reduce_factor, acwr_msg))
    return out


def _acwr_reason(state: DayState, s: PlanSettings) -> str | None:
    if state.acwr is not None and state.acwr > s.acwr_high:
        return f"Acute:chronic load ratio {state.acwr:.2f} is above {s.acwr_high:.1f}: reduced today's load"
    if state.acwr is not None and state.acwr_norm is not None and state.acwr > state.acwr_norm + s.acwr_norm_margin:
        return (
            f"Acute:chronic load ratio {state.acwr:.2f} is well above your usual {state.acwr_norm:.2f}: "
            "reduced today's load"
        )
    if state.monotony is not None and state.monotony > s.monotony_high:
        return f"Training monotony {state.monotony:.1f} is above {s.monotony_high:.1f}: lighter day for variety"
    return None


def adapt_workout(
    workout: ScheduledWorkout, state: DayState, *, sport: str = "run", settings: PlanSettings = DEFAULT_PLAN
) -> Adjustment | None:
    """Apply every rule and keep the most cautious outcome; never upgrades, never touches a
    race.  None when nothing changes."""
    if workout.kind in ("race", "rest"):
        return None
    fired = _rules(workout.kind, state, settings)
    if not fired:
        return None
    kind = min((k for k, _, _ in fired), key=INTENSITY.__getitem__)
    factor = min(f for _, f, _ in fired)
    if kind == workout.kind and factor >= 1.0:
        return None
    after = retarget(workout, kind, factor, sport)
    return Adjustment(workout.date, workout, after, tuple(r for _, _, r in fired))


def adapt_day(plan: Plan, day: dt.date, state: DayState, settings: PlanSettings = DEFAULT_PLAN) -> Adjustment | None:
    """adapt_workout for the plan's session on `day` (None if no session or no change)."""
    workout = plan.on(day)
    if workout is None:
        return None
    return adapt_workout(workout, state, sport=plan.sport, settings=settings)


def reschedule_missed(plan: Plan, missed: Iterable[dt.date], today: dt.date) -> list[Adjustment]:
    """Move missed key sessions (intervals, tempo, long) from earlier this week to a rest/easy
    day left in the same week: preferably not next to another hard day, never between two,
    never on or the day before the race.  Missed easy sessions are not made up: stacking easy
    volume adds fatigue for little gain.  Returns an adjustment for the missed day (now rest)
    and one for the receiving day."""
    week = plan.week_of(today)
    if week is None:
        return []
    by_date = {w.date: w for w in plan.workouts}
    schedule = dict(by_date)
    out: list[Adjustment] = []
    todo = sorted(
        (by_date[d] for d in set(missed) if d in by_date and week.start <= d < today and by_date[d].kind in _HARD),
        key=lambda w: (-INTENSITY[w.kind], w.date),
    )
    for w in todo:
        schedule[w.date] = retarget(w, "rest")
        found = _free_slot(schedule, today, week.end, plan.race_date)
        if found is None:
            why = f"Missed {w.kind} on {w.date:%A}: no free day left this week, skipped rather than crammed"
            out.append(Adjustment(w.date, w, schedule[w.date], (why,)))
            continue
        slot, next_to = found
        moved = replace(w, date=slot)
        note = f" (next to {next_to.kind} on {next_to.date:%A}: keep both controlled)" if next_to else ""
        out.append(Adjustment(w.date, w, schedule[w.date], (f"Missed {w.kind} on {w.date:%A}: moved to {slot:%A}",)))
        out.append(Adjustment(slot, schedule[slot], moved, (f"Missed {w.kind} from {w.date:%A} moved here{note}",)))
        schedule[slot] = moved
    return out


def _free_slot(
    schedule: dict[dt.date, ScheduledWorkout], first: dt.date, last: dt.date, race: dt.date
) -> tuple[dt.date, ScheduledWorkout | None] | None:
    """Earliest rest/easy day with no hard neighbour, else the earliest with exactly one."""
    one = dt.timedelta(days=1)
    fallback: tuple[dt.date, ScheduledWorkout | None] | None = None
    day = first
    while day <= last and day < race - one:
        w = schedule.get(day)
        if w is not None and w.kind in ("rest", "easy"):
            hard = [n for n in (schedule.get(day - one), schedule.get(day + one)) if n is not None and n.kind in _HARD]
            if not hard:
                return day, None
            if len(hard) == 1 and fallback is None:
                fallback = (day, hard[0])
        day += one
    return fallback


def apply_adjustments(plan: Plan, adjustments: Iterable[Adjustment]) -> Plan:
    """New plan with each adjustment's `after` in its date's slot."""
    workouts = list(plan.workouts)
    for adj in adjustments:
        i = (adj.date - plan.start).days
        if 0 <= i < len(workouts):
            workouts[i] = adj.after
    return replace(plan, workouts=tuple(workouts))

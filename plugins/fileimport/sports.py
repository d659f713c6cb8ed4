"""Sport names used inside FIT, TCX and GPX files, mapped to the normalized :class:`Sport`.

Kept apart from the parsers so the vocabulary decisions are reviewable in one place. Anything
unknown maps to ``Sport.OTHER``: a wrong specific sport is worse for training-load analysis than
an honest "other" the athlete can correct.
"""

from __future__ import annotations

from typing import Final

from trainer.normalized import Sport

__all__ = ["fit_is_indoor", "fit_sport", "gpx_sport", "tcx_sport"]

# FIT `sport` enum names (fitdecode profile) -> default Sport when the sub-sport adds nothing.
_FIT_SPORT: Final[dict[str, Sport]] = {
    "running": Sport.RUN,
    "cycling": Sport.RIDE,
    "transition": Sport.TRANSITION,
    "fitness_equipment": Sport.CARDIO,
    "swimming": Sport.SWIM,
    "training": Sport.CARDIO,
    "hiit": Sport.CARDIO,
    "walking": Sport.WALK,
    "cross_country_skiing": Sport.NORDIC_SKI,
    "alpine_skiing": Sport.ALPINE_SKI,
    "snowboarding": Sport.SNOWBOARD,
    "rowing": Sport.ROWING,
    "mountaineering": Sport.HIKE,
    "hiking": Sport.HIKE,
    "multisport": Sport.MULTISPORT,
    "paddling": Sport.PADDLE,
    "stand_up_paddleboarding": Sport.PADDLE,
    "kayaking": Sport.PADDLE,
    "rafting": Sport.PADDLE,
    "e_biking": Sport.E_BIKE_RIDE,
    "inline_skating": Sport.SKATE,
    "ice_skating": Sport.SKATE,
    "rock_climbing": Sport.CLIMBING,
    "floor_climbing": Sport.STAIR_STEPPER,
    "snowshoeing": Sport.SNOWSHOE,
    "diving": Sport.DIVE,
    "wheelchair_push_walk": Sport.WALK,
    "wheelchair_push_run": Sport.RUN,
}

# FIT `sub_sport` names that decide the sport on their own, whatever the parent sport says.
_FIT_SUB_SPORT: Final[dict[str, Sport]] = {
    "treadmill": Sport.TREADMILL_RUN,
    "indoor_running": Sport.TREADMILL_RUN,
    "trail": Sport.TRAIL_RUN,
    "spin": Sport.INDOOR_RIDE,
    "indoor_cycling": Sport.INDOOR_RIDE,
    "mountain": Sport.MOUNTAIN_BIKE,
    "downhill": Sport.MOUNTAIN_BIKE,
    "cyclocross": Sport.GRAVEL_RIDE,
    "gravel_cycling": Sport.GRAVEL_RIDE,
    "e_bike_fitness": Sport.E_BIKE_RIDE,
    "e_bike_mountain": Sport.E_BIKE_RIDE,
    "indoor_rowing": Sport.INDOOR_ROWING,
    "elliptical": Sport.ELLIPTICAL,
    "stair_climbing": Sport.STAIR_STEPPER,
    "lap_swimming": Sport.SWIM,
    "open_water": Sport.OPEN_WATER_SWIM,
    "strength_training": Sport.STRENGTH,
    "cardio_training": Sport.CARDIO,
    "hiit": Sport.CARDIO,
    "yoga": Sport.YOGA,
    "pilates": Sport.PILATES,
    "backcountry": Sport.BACKCOUNTRY_SKI,
    "indoor_climbing": Sport.CLIMBING,
    "bouldering": Sport.CLIMBING,
    "single_gas_diving": Sport.DIVE,
    "multi_gas_diving": Sport.DIVE,
    "gauge_diving": Sport.DIVE,
    "apnea_diving": Sport.DIVE,
    "apnea_hunting": Sport.DIVE,
    "bike_to_run_transition": Sport.TRANSITION,
    "run_to_bike_transition": Sport.TRANSITION,
    "swim_to_bike_transition": Sport.TRANSITION,
}

# `virtual_activity` depends on the parent sport (virtual ride vs virtual run).
_FIT_VIRTUAL: Final[dict[str, Sport]] = {"cycling": Sport.VIRTUAL_RIDE, "running": Sport.VIRTUAL_RUN}

# Sub-sports that only make sense within one parent sport (e.g. "mountain" is a bike thing).
_SUB_SPORT_PARENTS: Final[dict[str, frozenset[str]]] = {
    "trail": frozenset({"running"}),
    "treadmill": frozenset({"running", "walking"}),
    "mountain": frozenset({"cycling", "e_biking"}),
    "downhill": frozenset({"cycling", "e_biking"}),
    "backcountry": frozenset({"cross_country_skiing", "alpine_skiing", "snowboarding"}),
}

_INDOOR_SUB_SPORTS: Final = frozenset(
    {
        "treadmill",
        "indoor_running",
        "spin",
        "indoor_cycling",
        "indoor_rowing",
        "indoor_walking",
        "virtual_activity",
        "indoor_skiing",
        "elliptical",
        "stair_climbing",
        "indoor_climbing",
    }
)


def _name(value: object) -> str:
    """fitdecode yields enum names as str, or the raw int for values unknown to its profile."""
    return value.strip().lower() if isinstance(value, str) else ""


def fit_sport(sport: object, sub_sport: object) -> Sport:
    """Map a FIT (sport, sub_sport) pair to a Sport."""
    parent, child = _name(sport), _name(sub_sport)
    if child == "virtual_activity":
        return _FIT_VIRTUAL.get(parent, _FIT_SPORT.get(parent, Sport.OTHER))
    if parent == "walking" and child in {"treadmill", "indoor_walking"}:
        return Sport.WALK
    if parent == "cross_country_skiing" and child == "backcountry":
        return Sport.BACKCOUNTRY_SKI
    by_child = _FIT_SUB_SPORT.get(child)
    allowed_parents = _SUB_SPORT_PARENTS.get(child)
    if by_child is not None and (allowed_parents is None or parent in allowed_parents):
        return by_child
    return _FIT_SPORT.get(parent, Sport.OTHER)


def fit_is_indoor(sub_sport: object) -> bool | None:
    """True when the FIT sub-sport says the activity was indoors; None when it does not say."""
    return True if _name(sub_sport) in _INDOOR_SUB_SPORTS else None


_TCX_SPORT: Final[dict[str, Sport]] = {"running": Sport.RUN, "biking": Sport.RIDE}


def tcx_sport(sport: str | None) -> Sport:
    """TCX's `Activity/@Sport` only knows Running, Biking and Other."""
    return _TCX_SPORT.get((sport or "").strip().lower(), Sport.OTHER)


# GPX <trk><type> is free text. Common spellings from Garmin, Strava, Komoot, OsmAnd, ...
_GPX_TYPE: Final[dict[str, Sport]] = {
    "running": Sport.RUN,
    "run": Sport.RUN,
    "trail_running": Sport.TRAIL_RUN,
    "trail running": Sport.TRAIL_RUN,
    "trailrun": Sport.TRAIL_RUN,
    "treadmill_running": Sport.TREADMILL_RUN,
    "cycling": Sport.RIDE,
    "biking": Sport.RIDE,
    "ride": Sport.RIDE,
    "road_biking": Sport.RIDE,
    "road_cycling": Sport.RIDE,
    "mountain_biking": Sport.MOUNTAIN_BIKE,
    "mountainbiking": Sport.MOUNTAIN_BIKE,
    "mtb": Sport.MOUNTAIN_BIKE,
    "gravel_cycling": Sport.GRAVEL_RIDE,
    "gravel": Sport.GRAVEL_RIDE,
    "virtualride": Sport.VIRTUAL_RIDE,
    "e_biking": Sport.E_BIKE_RIDE,
    "ebikeride": Sport.E_BIKE_RIDE,
    "walking": Sport.WALK,
    "walk": Sport.WALK,
    "hiking": Sport.HIKE,
    "hike": Sport.HIKE,
    "mountaineering": Sport.HIKE,
    "swimming": Sport.SWIM,
    "swim": Sport.SWIM,
    "open_water_swimming": Sport.OPEN_WATER_SWIM,
    "rowing": Sport.ROWING,
    "kayaking": Sport.PADDLE,
    "canoeing": Sport.PADDLE,
    "paddling": Sport.PADDLE,
    "stand_up_paddleboarding": Sport.PADDLE,
    "standuppaddling": Sport.PADDLE,
    "cross_country_skiing": Sport.NORDIC_SKI,
    "nordicski": Sport.NORDIC_SKI,
    "backcountry_skiing": Sport.BACKCOUNTRY_SKI,
    "backcountryski": Sport.BACKCOUNTRY_SKI,
    "alpine_skiing": Sport.ALPINE_SKI,
    "alpineski": Sport.ALPINE_SKI,
    "snowboarding": Sport.SNOWBOARD,
    "snowshoeing": Sport.SNOWSHOE,
    "inline_skating": Sport.SKATE,
    "ice_skating": Sport.SKATE,
    # Strava's GPX exports number the type; these two are the well-attested codes.
    "1": Sport.RIDE,
    "9": Sport.RUN,
}


def gpx_sport(track_type: str | None) -> Sport:
    """Map a GPX track <type> (free text) to a Sport."""
    key = (track_type or "").strip().lower().replace("-", "_")
    return _GPX_TYPE.get(key) or _GPX_TYPE.get(key.replace(" ", "_"), Sport.OTHER)

"""The athlete as the formulas see them, plus every user-selectable analysis setting.

Sources disagree on several constants (see docs/analysis.md); the choice is a user
setting with one documented default, so two users comparing numbers with another app
can match it, and one place states which convention the app follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_HR_MAX",
    "DEFAULT_HR_REST",
    "DEFAULT_SETTINGS",
    "AnalysisSettings",
    "EwmaConstant",
    "MonotonySd",
    "Physiology",
    "Sex",
    "TrimpCoefficients",
    "TsbTiming",
    "ZoneModel",
    "ewma_k",
    "tanaka_hr_max",
    "trimp_coefficients",
]

# Runalyze's fallback athlete: used only when nothing is measured and no age is known.
DEFAULT_HR_MAX = 200.0
DEFAULT_HR_REST = 60.0


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class TrimpCoefficients(StrEnum):
    """Banister weighting constants (a, b) per sex.

    MORTON: literature (Morton 1990). RUNALYZE: female/unknown `a` chosen so the
    maximal per-minute weight equals the male one. GOLDENCHEETAH: a = 0.64 for all.
    """

    MORTON = "morton"
    RUNALYZE = "runalyze"
    GOLDENCHEETAH = "goldencheetah"


class EwmaConstant(StrEnum):
    """How a time constant tau becomes the daily smoothing factor k."""

    EXPONENTIAL = "exponential"  # 1 - e^(-1/tau): GoldenCheetah, intervals.icu
    INVERSE = "inverse"  # 1/tau: the widely quoted "yesterday + (TSS - yesterday)/tau"
    SPAN = "span"  # 2/(tau+1): Runalyze and Williams' EWMA-ACWR


class TsbTiming(StrEnum):
    """Whether today's TSB includes today's training."""

    PREVIOUS_DAY = "previous_day"  # TrainingPeaks / GoldenCheetah default
    SAME_DAY = "same_day"  # Runalyze


class ZoneModel(StrEnum):
    KARVONEN = "karvonen"
    LTHR = "lthr"


class MonotonySd(StrEnum):
    POPULATION = "population"  # ddof=0, Runalyze
    SAMPLE = "sample"  # ddof=1


# (a, b) for male, female, unknown.  Unknown values for MORTON and GOLDENCHEETAH are an
# app convention (midpoint of male/female); Runalyze publishes its own.
_COEFFICIENTS: dict[TrimpCoefficients, dict[Sex, tuple[float, float]]] = {
    TrimpCoefficients.MORTON: {
        Sex.MALE: (0.64, 1.92),
        Sex.FEMALE: (0.86, 1.67),
        Sex.UNKNOWN: (0.75, 1.795),
    },
    TrimpCoefficients.RUNALYZE: {
        Sex.MALE: (0.64, 1.92),
        Sex.FEMALE: (0.821776, 1.67),
        Sex.UNKNOWN: (0.725215, 1.795),
    },
    TrimpCoefficients.GOLDENCHEETAH: {
        Sex.MALE: (0.64, 1.92),
        Sex.FEMALE: (0.64, 1.67),
        Sex.UNKNOWN: (0.64, 1.795),
    },
}


def trimp_coefficients(sex: Sex | str, coefficients: TrimpCoefficients | str) -> tuple[float, float]:
    """Return Banister (a, b); kept as a lookup so every caller uses the same table."""
    return _COEFFICIENTS[TrimpCoefficients(coefficients)][Sex(sex)]


def ewma_k(tau_days: float, constant: EwmaConstant | str) -> float:
    """Daily smoothing factor for a time constant; the three conventions differ by up to 2x."""
    if tau_days <= 0:
        raise ValueError("tau_days must be positive")
    match EwmaConstant(constant):
        case EwmaConstant.EXPONENTIAL:
            return -math.expm1(-1.0 / tau_days)
        case EwmaConstant.INVERSE:
            return 1.0 / tau_days
        case EwmaConstant.SPAN:
            return 2.0 / (tau_days + 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def tanaka_hr_max(age: float) -> float:
    """Tanaka, Monahan & Seals 2001; preferred over 220-age because it fits older adults better."""
    return 208.0 - 0.7 * float(age)


@dataclass(frozen=True, slots=True)
class Physiology:
    """Heart-rate anchors for one athlete at one point in time.

    Frozen so an analysis result can record exactly which anchors produced it.
    """

    sex: Sex = Sex.UNKNOWN
    hr_rest: float = DEFAULT_HR_REST
    hr_max: float = DEFAULT_HR_MAX
    lthr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sex", Sex(self.sex))
        object.__setattr__(self, "hr_rest", float(self.hr_rest))
        object.__setattr__(self, "hr_max", float(self.hr_max))
        if self.lthr is not None:
            object.__setattr__(self, "lthr", float(self.lthr))
        if not 0.0 < self.hr_rest < self.hr_max:
            raise ValueError(f"need 0 < hr_rest < hr_max, got {self.hr_rest}, {self.hr_max}")
        if self.lthr is not None and not self.hr_rest < self.lthr <= self.hr_max:
            raise ValueError(f"need hr_rest < lthr <= hr_max, got lthr={self.lthr}")

    @classmethod
    def from_measurements(
        cls,
        sex: Sex | str = Sex.UNKNOWN,
        *,
        age: float | None = None,
        hr_rest: float | None = None,
        hr_max: float | None = None,
        lthr: float | None = None,
    ) -> Physiology:
        """Build from whatever the user entered.

        Measured values win; HRmax falls back to Tanaka(age), then to 200; HRrest falls
        back to 60 (Runalyze's defaults), so an analysis can always run.
        """
        if hr_max is None:
            hr_max = tanaka_hr_max(age) if age is not None else DEFAULT_HR_MAX
        if hr_rest is None:
            hr_rest = DEFAULT_HR_REST
        return cls(sex=Sex(sex), hr_rest=hr_rest, hr_max=hr_max, lthr=lthr)

    @classmethod
    def unknown(cls) -> Physiology:
        """Runalyze's anonymous athlete: HRmax 200, HRrest 60, sex unknown."""
        return cls()

    @property
    def hr_reserve(self) -> float:
        return self.hr_max - self.hr_rest


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """Every user-choosable analysis convention in one value, so it can be stored per user.

    Defaults and why (see docs/analysis.md):
    - trimp_coefficients=RUNALYZE: the only published set covering sex 'unknown'; it equals
      Morton for men and keeps the per-minute maximum equal across sexes. hrTSS (the PMC
      load) does not depend on `a`, so this only changes the displayed raw TRIMP.
    - ewma=EXPONENTIAL: GoldenCheetah/intervals.icu; CTL after 42 constant days = 63.2 %.
    - tsb_timing=PREVIOUS_DAY: TrainingPeaks/GoldenCheetah; "form" is the state you start
      today's session in, which is what the plan-adaptation rules need.
    - zone_model=KARVONEN: needs only HRrest/HRmax, which always exist (with defaults).
    - monotony_sd=POPULATION: Runalyze; Foster does not specify.
    """

    trimp_coefficients: TrimpCoefficients = TrimpCoefficients.RUNALYZE
    ewma: EwmaConstant = EwmaConstant.EXPONENTIAL
    tsb_timing: TsbTiming = TsbTiming.PREVIOUS_DAY
    zone_model: ZoneModel = ZoneModel.KARVONEN
    monotony_sd: MonotonySd = MonotonySd.POPULATION
    ctl_days: float = 42.0
    atl_days: float = 7.0
    # HR cleaning
    hr_min_bpm: float = 25.0
    hr_max_bpm: float = 250.0
    max_gap_s: float = 30.0
    spike_bpm: float = 25.0
    min_hr_valid_fraction: float = 0.5
    # Load
    srpe_scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "trimp_coefficients", TrimpCoefficients(self.trimp_coefficients))
        object.__setattr__(self, "ewma", EwmaConstant(self.ewma))
        object.__setattr__(self, "tsb_timing", TsbTiming(self.tsb_timing))
        object.__setattr__(self, "zone_model", ZoneModel(self.zone_model))
        object.__setattr__(self, "monotony_sd", MonotonySd(self.monotony_sd))

    @property
    def k_ctl(self) -> float:
        return ewma_k(self.ctl_days, self.ewma)

    @property
    def k_atl(self) -> float:
        return ewma_k(self.atl_days, self.ewma)


DEFAULT_SETTINGS = AnalysisSettings()

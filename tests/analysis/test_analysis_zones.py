"""Zones, max-HR formulas, VDOT and the physiology defaults."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.analysis.physiology import (
    DEFAULT_SETTINGS,
    AnalysisSettings,
    EwmaConstant,
    MonotonySd,
    Physiology,
    Sex,
    TrimpCoefficients,
    TsbTiming,
    ZoneModel,
    ewma_k,
    tanaka_hr_max,
)
from trainer.analysis.zones import (
    daniels_percent_max,
    daniels_vo2,
    fox_hr_max,
    friel_zones,
    karvonen_target,
    karvonen_zones,
    time_in_zones,
    vdot,
    zones_for,
)

R = 1e-4


@pytest.mark.parametrize(("p", "bpm"), [(0.6, 134), (0.7, 148), (0.8, 162), (0.9, 176)])
def test_karvonen_targets(p: float, bpm: float) -> None:
    assert karvonen_target(p, 50, 190) == pytest.approx(bpm, rel=R)


def test_karvonen_zone_table() -> None:
    table = karvonen_zones(50, 190)
    assert [(z.low_bpm, z.high_bpm) for z in table.zones] == pytest.approx(
        [(120, 134), (134, 148), (148, 162), (162, 176), (176, 190)]
    )
    assert table.edges().tolist() == pytest.approx([134, 148, 162, 176])


def test_friel_run_example() -> None:
    z = {zone.name: zone for zone in friel_zones(170, "run").zones}
    assert (z["Z2"].low_bpm, z["Z2"].high_bpm) == pytest.approx((144.5, 151.3), rel=R)
    assert (z["Z4"].low_bpm, z["Z4"].high_bpm) == pytest.approx((161.5, 168.3), rel=R)
    assert (z["Z5a"].low_bpm, z["Z5a"].high_bpm) == pytest.approx((170, 173.4), rel=R)
    assert z["Z1"].low_bpm is None and z["Z5c"].high_bpm is None


def test_friel_bike_table() -> None:
    z = {zone.name: zone for zone in friel_zones(100, "bike").zones}
    assert z["Z1"].high_bpm == pytest.approx(81)
    assert (z["Z2"].low_bpm, z["Z3"].low_bpm, z["Z4"].low_bpm) == pytest.approx((81, 90, 94))


def test_friel_classification_edges() -> None:
    table = friel_zones(100, "run")
    hr = np.array([84.9, 85.0, 89.5, 90.0, 99.9, 100.0, 103.0, 106.0, 106.01])
    idx = np.searchsorted(table.edges(), hr, side="right")
    assert [table.names[i] for i in idx] == ["Z1", "Z2", "Z2", "Z3", "Z4", "Z5a", "Z5b", "Z5b", "Z5c"]


def test_time_in_zones_weights_by_dt() -> None:
    secs = time_in_zones(np.array([100.0, 140.0, 200.0]), np.array([5.0, 2.0, 1.0]), np.array([120.0, 150.0]))
    assert secs.tolist() == [5.0, 2.0, 1.0]


def test_lthr_model_falls_back_to_karvonen_without_lthr() -> None:
    assert len(zones_for(Physiology(), ZoneModel.LTHR).zones) == 5
    assert len(zones_for(Physiology(lthr=170, hr_max=190), ZoneModel.LTHR).zones) == 7


def test_max_hr_formulas() -> None:
    assert tanaka_hr_max(30) == pytest.approx(187, rel=R)
    assert tanaka_hr_max(50) == pytest.approx(173, rel=R)
    assert fox_hr_max(30) == 190 and fox_hr_max(50) == 170


def test_vdot_example() -> None:
    assert daniels_vo2(200) == pytest.approx(36.0106, rel=R)
    assert daniels_percent_max(50) == pytest.approx(0.900019, rel=R)
    assert vdot(10_000, 50 * 60) == pytest.approx(40.0109, rel=R)
    with pytest.raises(ValueError):
        vdot(0, 100)


def test_physiology_defaults() -> None:
    unknown = Physiology.unknown()
    assert (unknown.sex, unknown.hr_max, unknown.hr_rest, unknown.lthr) == (Sex.UNKNOWN, 200, 60, None)
    by_age = Physiology.from_measurements("female", age=30)
    assert by_age.hr_max == pytest.approx(187) and by_age.hr_rest == 60 and by_age.sex is Sex.FEMALE
    measured = Physiology.from_measurements(Sex.MALE, age=30, hr_max=195, hr_rest=45, lthr=172)
    assert (measured.hr_max, measured.hr_rest, measured.lthr) == (195, 45, 172)
    assert Physiology.from_measurements().hr_max == 200


@pytest.mark.parametrize("kwargs", [{"hr_rest": 0}, {"hr_rest": 200, "hr_max": 190}, {"lthr": 210}])
def test_physiology_rejects_impossible_anchors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Physiology(**kwargs)


def test_settings_defaults_and_constants() -> None:
    s = DEFAULT_SETTINGS
    assert s.trimp_coefficients is TrimpCoefficients.RUNALYZE
    assert s.ewma is EwmaConstant.EXPONENTIAL
    assert s.tsb_timing is TsbTiming.PREVIOUS_DAY
    assert s.zone_model is ZoneModel.KARVONEN
    assert s.monotony_sd is MonotonySd.POPULATION
    assert s.k_ctl == pytest.approx(0.0235283, rel=R) and s.k_atl == pytest.approx(0.1331221, rel=R)
    assert ewma_k(42, "inverse") == pytest.approx(0.0238095, rel=R)
    assert ewma_k(7, "inverse") == pytest.approx(0.1428571, rel=R)
    assert ewma_k(42, "span") == pytest.approx(0.0465116, rel=R)
    assert ewma_k(7, "span") == pytest.approx(0.25, rel=R)
    assert AnalysisSettings(ewma="span").ewma is EwmaConstant.SPAN
    with pytest.raises(ValueError):
        ewma_k(0, "span")

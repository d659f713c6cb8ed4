"""Per-activity load: every worked example from the reference, plus the cleaning rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trainer.analysis.load import (
    DEFAULT_SRPE_SCALE,
    analyze_activity,
    clean_hr,
    edwards_from_hr,
    edwards_trimp,
    fit_srpe_scale,
    gc_zonal_points_from_hr,
    hr_tss,
    hr_tss_if2,
    lucia_from_hr,
    lucia_trimp,
    session_rpe,
    trimp_average_hr,
    trimp_reference,
    trimp_samples,
    zone_points,
)
from trainer.analysis.physiology import (
    AnalysisSettings,
    Physiology,
    Sex,
    TrimpCoefficients,
    trimp_coefficients,
)

R = 1e-4


def steady(minutes: float, bpm: float) -> tuple[np.ndarray, np.ndarray]:
    n = int(minutes * 60)
    return np.arange(n, dtype=float), np.full(n, bpm)


def intervals_130_170() -> tuple[np.ndarray, np.ndarray]:
    hr = np.r_[np.full(1800, 130.0), np.full(1800, 170.0)]
    return np.arange(hr.size, dtype=float), hr


# ---------------------------------------------------------------- reference §1


@pytest.mark.parametrize(
    ("sex", "coeffs", "expected"),
    [
        (Sex.MALE, TrimpCoefficients.MORTON, 108.0954),
        (Sex.FEMALE, TrimpCoefficients.MORTON, 121.4991),
        (Sex.FEMALE, TrimpCoefficients.GOLDENCHEETAH, 90.4179),
        (Sex.FEMALE, TrimpCoefficients.RUNALYZE, 116.0989),
    ],
)
def test_trimp_60_min_at_150(sex: Sex, coeffs: TrimpCoefficients, expected: float) -> None:
    a, b = trimp_coefficients(sex, coeffs)
    assert trimp_average_hr(150, 60, 50, 190, a, b) == pytest.approx(expected, rel=R)
    _, hr = steady(60, 150)
    assert trimp_samples(hr, np.ones_like(hr), 50, 190, a, b) == pytest.approx(expected, rel=R)


def test_runalyze_coefficients_equalize_the_per_minute_maximum() -> None:
    # The reference quotes 0.64*e^1.92 as 4.3696; it is 4.36541 (e^1.92 = 6.82096).  The
    # property that matters - the same maximum for every sex - holds to the published digits.
    peaks = [a * math.exp(b) for a, b in (trimp_coefficients(s, TrimpCoefficients.RUNALYZE) for s in Sex)]
    assert peaks == pytest.approx([0.64 * math.exp(1.92)] * 3, rel=1e-6)
    assert peaks[0] == pytest.approx(4.36541, rel=R)


def test_interval_session_per_sample_vs_average_hr() -> None:
    phys = Physiology(Sex.MALE, hr_rest=50, hr_max=190, lthr=170)
    t, hr = intervals_130_170()
    res = analyze_activity(t, hr, phys)
    assert res.trimp == pytest.approx(118.1915, rel=R)
    assert res.trimp_avg == pytest.approx(108.0954, rel=R)
    assert res.avg_hr == pytest.approx(150.0)
    assert res.hr_tss == pytest.approx(69.2592, rel=R)
    assert res.load == res.hr_tss
    assert res.load_source == "hr"


def test_trimp_rest_40_max_200() -> None:
    t, hr = steady(30, 130)
    res = analyze_activity(t, hr, Physiology(Sex.MALE, hr_rest=40, hr_max=200))
    assert res.trimp == pytest.approx(31.8025, rel=R)


def test_trimp_below_rest_is_zero() -> None:
    assert trimp_average_hr(45, 60, 50, 190, 0.64, 1.92) == 0.0
    assert trimp_samples(np.full(10, 40.0), np.ones(10), 50, 190, 0.64, 1.92) == 0.0


def test_zone_weighted_trimps() -> None:
    assert edwards_trimp([10, 20, 15, 10, 5]) == pytest.approx(160, rel=R)
    assert lucia_trimp([40, 15, 5]) == pytest.approx(85, rel=R)
    assert zone_points([10, 20, 15, 10, 5], [0.9, 1.1, 1.2, 2.0, 5.0]) == pytest.approx(94.0, rel=R)


def test_zone_trimps_from_samples() -> None:
    # HRmax 200: 10 min below 50 %, then 10/20/15/10/5 min in Edwards zones 1..5
    hr = np.concatenate(
        [np.full(m * 60, v) for m, v in [(10, 90), (10, 110), (20, 130), (15, 150), (10, 170), (5, 195)]]
    )
    dt = np.ones_like(hr)
    assert edwards_from_hr(hr, dt, 200) == pytest.approx(160, rel=R)
    hr = np.concatenate([np.full(40 * 60, 140.0), np.full(15 * 60, 160.0), np.full(5 * 60, 180.0)])
    assert lucia_from_hr(hr, np.ones_like(hr), 150, 175) == pytest.approx(85, rel=R)
    # LTHR 100 makes %LTHR == bpm: zones start at 0/68/83/94/105
    hr = np.concatenate([np.full(m * 60, v) for m, v in [(10, 60), (20, 70), (15, 90), (10, 100), (5, 110)]])
    assert gc_zonal_points_from_hr(hr, np.ones_like(hr), 100) == pytest.approx(94.0, rel=R)


# ---------------------------------------------------------------- reference §2


def test_hr_tss_examples() -> None:
    ref = trimp_reference(170, 50, 190, 0.64, 1.92)
    assert ref == pytest.approx(170.6511, rel=R)
    assert hr_tss(trimp_average_hr(150, 60, 50, 190, 0.64, 1.92), ref) == pytest.approx(63.3429, rel=R)
    assert hr_tss_if2(150, 60, 170) == pytest.approx(77.8547, rel=R)
    assert hr_tss(50.0, ref * 0.5) == pytest.approx(100 * 50 / (ref * 0.5))
    assert hr_tss(10.0, 0.0) == 0.0


def test_one_hour_at_lthr_is_100_for_any_coefficient_set() -> None:
    t, hr = steady(60, 165)
    for coeffs in TrimpCoefficients:
        for sex in Sex:
            res = analyze_activity(
                t,
                hr,
                Physiology(sex, 55, 185, lthr=165),
                settings=AnalysisSettings(trimp_coefficients=coeffs),
            )
            assert res.hr_tss == pytest.approx(100.0, rel=1e-9)


def test_activity_hr_tss_and_if2() -> None:
    t, hr = steady(60, 150)
    res = analyze_activity(t, hr, Physiology(Sex.MALE, 50, 190, lthr=170))
    assert res.hr_tss == pytest.approx(63.3429, rel=R)
    assert res.hr_tss_if2 == pytest.approx(77.8547, rel=R)
    assert not res.lthr_estimated


def test_lthr_estimated_at_85_percent_of_reserve() -> None:
    t, hr = steady(60, 169)
    res = analyze_activity(t, hr, Physiology(Sex.MALE, 50, 190))
    assert res.lthr_estimated
    assert res.lthr_used == pytest.approx(50 + 0.85 * 140)
    assert res.hr_tss == pytest.approx(
        100 * trimp_average_hr(169, 60, 50, 190, 0.64, 1.92) / trimp_reference(169, 50, 190, 0.64, 1.92),
        rel=1e-9,
    )


def test_session_rpe() -> None:
    assert session_rpe(7, 45) == pytest.approx(315, rel=R)
    with pytest.raises(ValueError):
        session_rpe(-1, 10)


def test_srpe_load_when_no_hr() -> None:
    res = analyze_activity(None, None, Physiology(), rpe=7, duration_s=45 * 60)
    assert res.srpe == pytest.approx(315)
    assert res.load == pytest.approx(315 * DEFAULT_SRPE_SCALE)
    assert res.load_source == "srpe"
    assert res.trimp is None and res.hr_tss is None
    k = AnalysisSettings(srpe_scale=0.2)
    assert analyze_activity(None, None, Physiology(), rpe=7, duration_s=2700, settings=k).load == pytest.approx(63)


def test_nothing_known_gives_zero_load() -> None:
    res = analyze_activity(None, None, Physiology())
    assert res.load == 0.0 and res.load_source == "none"
    for bad_rpe in (-1.0, 11.0, float("nan")):
        res = analyze_activity(None, None, Physiology(), rpe=bad_rpe, duration_s=600)
        assert res.srpe is None and res.load_source == "none"
    t = np.arange(600.0)
    res = analyze_activity(t, np.full(600, np.nan), Physiology())
    assert res.load == 0.0 and res.hr_valid_fraction == 0.0
    assert res.duration_s == pytest.approx(600)


def test_sparse_hr_prefers_rpe_but_falls_back_to_partial_hr() -> None:
    t = np.arange(3600.0)
    hr = np.full(3600, 150.0)
    hr[:2700] = 0.0  # strap only worked for the last 15 min
    phys = Physiology(Sex.MALE, 50, 190, lthr=170)
    with_rpe = analyze_activity(t, hr, phys, rpe=5)
    assert with_rpe.load_source == "srpe"
    assert with_rpe.hr_valid_fraction == pytest.approx(0.25)
    without = analyze_activity(t, hr, phys)
    assert without.load_source == "hr"
    assert without.load == pytest.approx(63.3429 / 4, rel=1e-3)


def test_fit_srpe_scale() -> None:
    s = np.array([100.0, 200, 300, 400, 500])
    assert fit_srpe_scale(0.25 * s, s) == pytest.approx(0.25)
    assert fit_srpe_scale([1, 2], [3, 4]) is None
    h, s = [10, 20, 30, np.nan, 50, 60, 70], [40, 80, 120, 160, 200, 0, 280]
    assert fit_srpe_scale(h, s) == pytest.approx(0.25)  # NaN and zero-sRPE pairs ignored
    assert fit_srpe_scale(h, s, min_sessions=6) is None


# ---------------------------------------------------------------- cleaning


def test_out_of_range_samples_are_dropped() -> None:
    t = np.arange(10.0)
    hr = np.array([150, 150, 0, 300, np.nan, 150, 150, 24, 251, 150], dtype=float)
    c = clean_hr(t, hr)
    assert c.hr.tolist() == [150.0] * 5
    assert c.valid_fraction == pytest.approx(0.5)
    # dropped samples are covered by the previous valid one (gap of 4 s < 30 s)
    assert c.dt_s.tolist() == [1.0, 4.0, 1.0, 3.0, 1.0]
    assert c.seconds == pytest.approx(10.0)


def test_long_gap_is_not_time_at_last_hr() -> None:
    t = np.r_[np.arange(100.0), np.arange(200.0, 300.0)]  # 100 s pause
    c = clean_hr(t, np.full(200, 140.0))
    assert c.seconds == pytest.approx(200.0)
    c = clean_hr(t, np.full(200, 140.0), AnalysisSettings(max_gap_s=120))
    assert c.seconds == pytest.approx(300.0)


def test_single_sample_spikes_replaced_by_neighbour_median() -> None:
    t = np.arange(7.0)
    hr = np.array([120, 121, 190, 122, 123, 60, 124], dtype=float)
    c = clean_hr(t, hr)
    assert c.spikes_replaced == 2
    assert c.hr.tolist() == [120, 121, 121.5, 122, 123, 123.5, 124]


def test_steps_and_two_sample_plateaus_are_not_spikes() -> None:
    hr = np.array([120, 121, 160, 161, 162, 163, 190, 191, 120], dtype=float)
    c = clean_hr(np.arange(hr.size, dtype=float), hr)
    assert c.spikes_replaced == 0
    assert c.hr.tolist() == hr.tolist()


def test_unsorted_time_is_sorted_and_nan_time_dropped() -> None:
    t = np.array([2.0, 0.0, 1.0, np.nan, 3.0])
    hr = np.array([132.0, 130.0, 131.0, 150.0, 133.0])
    c = clean_hr(t, hr)
    assert c.hr.tolist() == [130, 131, 132, 133]
    assert c.index.tolist() == [1, 2, 0, 4]


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError):
        clean_hr(np.arange(3.0), np.arange(4.0))


# ---------------------------------------------------------------- zones and decoupling


def test_time_in_karvonen_zones() -> None:
    phys = Physiology(Sex.MALE, 50, 190)
    hr = np.r_[np.full(60, 100.0), np.full(120, 140.0), np.full(180, 180.0)]
    res = analyze_activity(np.arange(hr.size, dtype=float), hr, phys)
    assert res.zone_names == ["Z1", "Z2", "Z3", "Z4", "Z5"]
    assert res.zone_seconds == [60.0, 120.0, 0.0, 0.0, 180.0]


def test_time_in_friel_zones_with_lthr_model() -> None:
    phys = Physiology(Sex.MALE, 50, 190, lthr=170)
    hr = np.r_[np.full(10, 140.0), np.full(20, 165.0), np.full(30, 182.0)]  # Z1, Z4, Z5c
    res = analyze_activity(np.arange(60.0), hr, phys, settings=AnalysisSettings(zone_model="lthr"))
    assert len(res.zone_seconds) == 7
    assert res.zone_seconds[0] == 10 and res.zone_seconds[3] == 20 and res.zone_seconds[6] == 30


def test_decoupling_speed_and_power() -> None:
    n = 3600
    t = np.arange(float(n))
    hr = np.r_[np.full(n // 2, 140.0), np.full(n // 2, 150.0)]
    speed = np.full(n, 3.0)
    phys = Physiology(Sex.MALE, 50, 190)
    res = analyze_activity(t, hr, phys, speed=speed)
    assert res.decoupling_pct == pytest.approx((1 - 140 / 150) * 100, rel=1e-9)
    # stops are excluded from speed:HR
    speed2 = speed.copy()
    speed2[1000:1100] = 0.0
    # 3,500 moving s: the first half (1,750 s) now ends 50 s into the 150-bpm part
    first_hr = (1700 * 140 + 50 * 150) / 1750
    assert analyze_activity(t, hr, phys, speed=speed2).decoupling_pct == pytest.approx(
        (1 - first_hr / 150) * 100, rel=1e-9
    )
    power = np.r_[np.full(n // 2, 200.0), np.full(n // 2, 190.0)]
    res = analyze_activity(t, np.full(n, 140.0), phys, power=power, speed=speed)
    assert res.decoupling_pct == pytest.approx(5.0, rel=1e-9)
    short = analyze_activity(t[:300], hr[:300], phys, speed=speed[:300])
    assert short.decoupling_pct is None


def test_result_is_json_ready() -> None:
    t, hr = intervals_130_170()
    res = analyze_activity(t, hr, Physiology(), speed=np.full(t.size, 3.0), rpe=6)
    json.dumps(res.to_dict(), allow_nan=False)

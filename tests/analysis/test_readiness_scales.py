"""Self-reports on the app's own scales (soreness 1-10, stress 0-100) score like the 1-5 scale
and are quoted back on the scale the athlete used."""

from __future__ import annotations

from trainer.analysis.readiness import ReadinessSettings, score_readiness

TEN = ReadinessSettings(soreness_max=10.0, stress_max=100.0)


def test_five_point_scale_unchanged() -> None:
    r = score_readiness(None, None, sleep_h=8, soreness=4, stress=5)
    assert r.score == 85.0 and r.reasons == ("High muscle soreness: 4/5", "High stress: 5/5")


def test_other_scales_map_to_five_points_and_quote_the_entered_value() -> None:
    r = score_readiness(None, None, sleep_h=8, soreness=8, stress=100, settings=TEN)
    assert r.score == 85.0  # 8/10 = 4/5 -> 5, 100/100 = 5/5 -> 10
    assert r.reasons == ("High muscle soreness: 8/10", "High stress: 100/100")
    calm = score_readiness(None, None, sleep_h=8, soreness=7, stress=79, settings=TEN)
    assert calm.score == 100.0 and not calm.soreness_flag and not calm.stress_flag
    assert "soreness" not in calm.missing and "stress" not in calm.missing


def test_out_of_scale_values_count_as_not_reported() -> None:
    r = score_readiness(None, None, soreness=11, stress=0, settings=TEN)
    assert {"soreness", "stress"} <= set(r.missing)

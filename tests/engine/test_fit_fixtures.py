"""The real FIT fixtures through the whole per-activity analysis: parse -> analyze_activity.

Every recording with heart rate must give a positive load, zone seconds that add up to the HR time,
per-sample TRIMP >= average-HR TRIMP (the curve is convex), and plausible numbers overall.
"""

from __future__ import annotations

import numpy as np
import pytest
from trainer_plugins.fileimport import ImportFileError

from tests.engine.fit_files import FIT, legs
from trainer.analysis.load import ActivityLoad, analyze_activity
from trainer.engine.physiology import physiology_for
from trainer.normalized import ImportedActivity
from trainer.profile import UserSettings

ATHLETE = UserSettings(sex="male", hr_max=190, hr_rest=50, lthr=170)


def analyze(leg: ImportedActivity, settings: UserSettings = ATHLETE) -> ActivityLoad:
    s = leg.streams
    assert s is not None and s.heart_rate is not None
    return analyze_activity(
        s.time_s,
        s.heart_rate,
        physiology_for(settings),
        speed=s.speed_m_s,
        power=s.power_w,
        duration_s=leg.activity.moving_time_s,
        sport="bike" if "ride" in leg.activity.sport else "run",
    )


def _with_hr() -> list[tuple[str, int]]:
    out = []
    for path in sorted(FIT.glob("*.fit")):
        try:
            parsed = legs(path.name)
        except ImportFileError:
            continue  # corrupt / not an activity: the import tests cover those
        out += [
            (path.name, i)
            for i, leg in enumerate(parsed)
            if leg.streams is not None
            and leg.streams.heart_rate is not None
            and np.isfinite(leg.streams.heart_rate).any()
        ]
    return out


RECORDINGS = _with_hr()


def test_the_fixtures_cover_real_recordings() -> None:
    names = {n for n, _ in RECORDINGS}
    assert len(RECORDINGS) >= 15 and len(names) >= 12  # run, ride, swim, rowing, multisport legs ...


@pytest.mark.parametrize(("name", "leg"), RECORDINGS, ids=[f"{n}#{i}" for n, i in RECORDINGS])
def test_fixture_analysis_is_sane(name: str, leg: int) -> None:
    imported = legs(name)[leg]
    result = analyze(imported)
    hr = imported.streams.heart_rate  # type: ignore[union-attr]
    assert result.hr_seconds > 0 and result.load > 0 and result.load_source in ("hr", "srpe")
    assert sum(result.zone_seconds) == pytest.approx(result.hr_seconds, rel=1e-9)
    assert len(result.zone_seconds) == len(result.zone_names) == 5
    assert result.trimp is not None and result.trimp_avg is not None
    assert result.trimp >= result.trimp_avg - 1e-9
    assert np.nanmin(hr) - 1e-6 <= result.avg_hr <= np.nanmax(hr) + 1e-6  # type: ignore[operator]
    # Plausible: at most ~1 h at LTHR per hour recorded, times the hardest sustainable factor.
    hours = result.hr_seconds / 3600
    assert result.hr_tss is not None and result.hr_tss < 250 * max(hours, 0.02)
    assert result.hr_seconds <= (imported.streams.time_s[-1] + 60)  # type: ignore[union-attr]
    assert 0 < result.hr_valid_fraction <= 1
    assert result.lthr_used == 170 and not result.lthr_estimated


def test_a_known_run_against_the_reference_formula() -> None:
    """fenix 2 run, 47 min: hrTSS = 100 * TRIMP / TRIMP_ref with the reference's male constants."""
    leg = legs("activity-small-fenix2-run.fit")[0]
    result = analyze(leg)
    a, b = 0.64, 1.92
    ref = 60 * (120 / 140) * a * np.exp(b * 120 / 140)  # x_LT = (170 - 50) / (190 - 50)
    assert result.hr_tss == pytest.approx(100 * result.trimp / ref, rel=1e-9)
    # The average-HR form from the reference (GC) bounds it from below, within a few percent here.
    minutes = result.hr_seconds / 60
    x = (result.avg_hr - 50) / 140
    assert result.trimp_avg == pytest.approx(minutes * x * a * np.exp(b * x), rel=1e-9)
    assert result.trimp_avg <= result.trimp <= 1.1 * result.trimp_avg


def test_settings_change_the_load_the_way_physiology_says() -> None:
    """A higher LTHR makes the same session relatively easier (lower hrTSS)."""
    leg = legs("activity-small-fenix2-run.fit")[0]
    easy = analyze(leg, UserSettings(sex="male", hr_max=190, hr_rest=50, lthr=180))
    hard = analyze(leg, UserSettings(sex="male", hr_max=190, hr_rest=50, lthr=160))
    assert easy.load < analyze(leg).load < hard.load

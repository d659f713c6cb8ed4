"""The real FIT fixtures, parsed once per test session (parsing them all takes seconds)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from trainer_plugins.fileimport import parse_activity_file

from trainer.normalized import ImportedActivity

FIT = Path(__file__).resolve().parents[1] / "fixtures" / "fit"


@cache
def legs(name: str) -> tuple[ImportedActivity, ...]:
    return tuple(parse_activity_file(FIT / name))

"""config.example.toml documents every setting, with the default the program really uses.

The example file is the operator's reference: a setting added to Settings but not to the file is a
setting nobody can discover, and a default that drifted tells them something false.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from trainer.config import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"
# A commented-out assignment at the start of a line: "# name = value".
_ASSIGNMENT = re.compile(r"^# ?([a-z_][a-z0-9_]*) = (.+)$")


def documented() -> dict[str, str]:
    """Top-level settings in the example (before the first table), name -> the TOML text of the value."""
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^# ?\[", line):
            break
        match = _ASSIGNMENT.match(line)
        if match:
            found[match[1]] = match[2]
    return found


def test_every_setting_is_in_the_example() -> None:
    missing = sorted(set(Settings.model_fields) - set(documented()))
    assert not missing, f"settings missing from config.example.toml: {missing}"


def test_the_example_names_only_real_settings() -> None:
    unknown = sorted(set(documented()) - set(Settings.model_fields))
    assert not unknown, f"config.example.toml documents settings that do not exist: {unknown}"


def test_every_setting_is_explained() -> None:
    """Each setting (or group of adjacent settings) has a comment above it, not just the assignment."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if _ASSIGNMENT.match(line):
            j = i - 1
            while j >= 0 and _ASSIGNMENT.match(lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("# ") and len(lines[j]) > 10, f"no explanation above: {line}"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_documented_default_is_the_real_default(name: str) -> None:
    field = Settings.model_fields[name]
    if field.default is None:
        return  # e.g. secret_key: the example shows the form of a value, there is no default to show
    shown = tomllib.loads(f"value = {documented()[name]}")["value"]
    real = Settings.model_construct().model_dump(mode="json")[name]
    assert shown == real, f"config.example.toml says {name} = {shown!r}, the program uses {real!r}"


def test_uncommented_example_is_a_valid_config(tmp_path: Path) -> None:
    """Uncommenting every line of the example gives a file the program accepts (TOML syntax, names, types)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    body = "\n".join(
        line[2:] if _ASSIGNMENT.match(line) or re.match(r"^# ?\[", line) else ""
        for line in text.splitlines()
        # secret_key's example is prose; `plugins = {}` would clash with the [plugins.strava] table below it.
        if not line.startswith(("# secret_key", "# plugins ="))
    )
    path = tmp_path / "trainer.toml"
    path.write_text(body, encoding="utf-8")
    from trainer.config import load_settings

    settings = load_settings(path)
    assert settings.plugins["strava"]["client_id"] == "12345"

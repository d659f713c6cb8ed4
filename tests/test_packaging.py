"""The wheel holds every package: pyproject.toml lists packages explicitly, so a new folder must be added there.

Without this test a package missing from the list works in the editable checkout (where imports
resolve from the source tree) and fails only after `pip install .`, on a user's machine.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the import name it installs as.
TOP_LEVEL = {"trainer": "trainer", "cli": "trainer_cli", "plugins": "trainer_plugins"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def packages_on_disk() -> set[str]:
    found: set[str] = set()
    for folder, name in TOP_LEVEL.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if any(part in ("__pycache__", "node_modules") or part.startswith(".") for part in relative.parts):
                continue
            found.add(".".join([name, *relative.parts]))
    return found


def test_every_package_is_listed() -> None:
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    missing = sorted(packages_on_disk() - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_exists() -> None:
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    stale = sorted(listed - packages_on_disk())
    assert not stale, f"pyproject.toml lists packages that have no folder with __init__.py: {stale}"


def test_cli_and_plugins_install_under_trainer_names() -> None:
    config = pyproject()
    assert config["tool"]["setuptools"]["package-dir"] == {"trainer_cli": "cli", "trainer_plugins": "plugins"}
    assert config["project"]["scripts"]["trainer"] == "trainer_cli.main:main"


def test_migrations_are_package_data() -> None:
    """Every migration file is matched by the package-data globs (else a wheel ships no schema)."""
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["trainer"]
    base = ROOT / "trainer"
    shipped = {path for pattern in patterns for path in base.glob(pattern)}
    migrations = set((base / "db" / "migrations").rglob("*.sql"))
    assert migrations and migrations <= shipped, sorted(str(p) for p in migrations - shipped)

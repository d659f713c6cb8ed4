"""A third-party plugin works with no change to trainer: pip-install its distribution, and trainer
discovers it through the entry point group, lists it, and imports its files through the CLI and
the app's upload endpoint. Its broken siblings are reported with the reason and skipped.

The package is installed with pip into a private target folder that is put on the path of this
test (and of the `trainer` subprocess), so other tests never see it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from trainer_cli.main import app
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET, make_settings
from tests.helpers import register
from tests.plugins.conftest import write_config
from trainer.app import create_app
from trainer.plugin_host import CoreHost
from trainer.plugins import discover
from trainer.services import SERVICES

PACKAGE = Path(__file__).resolve().parent.parent / "thirdparty_plugin"
CSV = "# csvlog v1\n# start=2024-05-19T06:30:00Z name=Treadmill intervals\nseconds,heart_rate\n" + "".join(
    f"{t},{120 + (t // 60) % 30}\n" for t in range(0, 1800, 2)
)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install` of the plugin's own distribution (from a copy: building writes into the tree)."""
    work = tmp_path_factory.mktemp("thirdparty")
    source = work / "src"
    shutil.copytree(PACKAGE, source)
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return target


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("trainer_csvlog")]:
        del sys.modules[name]


def test_discovered_and_broken_siblings_skipped(installed: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", plugins={"csvlog": {"sport": "treadmill_run"}})
    registry = discover(settings.plugins, CoreHost(settings, TEST_SECRET))
    report = {info.name: info for info in registry.report}
    assert report["csvlog"].enabled and report["csvlog"].capabilities == ["import"]
    assert report["csvlog"].distribution == "trainer-csvlog" and report["csvlog"].version == "0.3.0"
    assert registry.get("csvlog").settings.sport == "treadmill_run"  # its own settings model
    assert "No module named 'trainer_csvlog_missing_dependency'" in report["csvlog_broken"].error
    assert "plugin API 99" in report["csvlog_future"].error
    assert {"csvlog_broken", "csvlog_future"}.isdisjoint(registry.plugins)
    assert {"strava", "garmin", "files"} <= {i.name for i in registry.report}  # the others are untouched


def test_listed_by_the_installed_command(site: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "TRAINER_SECRET_KEY": TEST_SECRET,
        "TRAINER_DATA_DIR": str(tmp_path),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from trainer_cli.main import main; main()", "plugins", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "import" in rows["csvlog"] and "yes" in rows["csvlog"] and "trainer-csvlog" in rows["csvlog"]
    assert "ModuleNotFoundError" in rows["csvlog_broken"] and "no" in rows["csvlog_broken"]
    assert "webhooks, source, oauth," in rows["strava"]


def test_imports_through_the_cli_and_the_upload_endpoint(installed: Path, tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "intervals.csv"
    log.write_text(CSV)
    config = write_config(
        tmp_path / "trainer.toml", {"database_url": db_url, "secret_key": TEST_SECRET, "data_dir": str(tmp_path)}
    )
    asyncio.run(_user(db_url))
    result = CliRunner().invoke(app, ["--config", str(config), "import", "--user", "runner@example.com", str(log)])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "1 files: 1 imported (1 activities)" in result.output

    async def through_the_app() -> tuple[int, dict, list]:
        async with TestClient(TestServer(create_app(make_settings(tmp_path, db_url)))) as client:
            auth = await register(client, "app@example.com")
            form = aiohttp.FormData()
            form.add_field("file", CSV.replace("06:30", "18:00").encode(), filename="evening.csv")
            response = await client.post(
                "/api/v1/activities/upload", data=form, headers={"Authorization": f"Bearer {auth['accessToken']}"}
            )
            rows = await client.server.app[SERVICES].db.fetch(
                "SELECT source, name, duration_s, training_load FROM activities ORDER BY start_time"
            )
            return response.status, await response.json(), rows

    status, body, rows = asyncio.run(through_the_app())
    assert status == 201, body
    assert [(r["source"], r["name"], r["duration_s"]) for r in rows] == [
        ("csvlog", "Treadmill intervals", 1798.0),
        ("csvlog", "Treadmill intervals", 1798.0),
    ]
    assert all(r["training_load"] > 0 for r in rows)  # the core computed the load from its HR stream


async def _user(url: str) -> None:
    from trainer.db import create_database
    from trainer.store import users

    database = create_database(url)
    await database.open()
    try:
        await users.create(database, email="runner@example.com", password_hash="x")
    finally:
        await database.close()

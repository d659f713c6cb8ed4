"""`trainer doctor`: each check finds the problem it is for, says how to fix it, and fails the exit status."""

from __future__ import annotations

import asyncio
import os
from collections import namedtuple
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from trainer_cli.main import app
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET
from trainer import doctor
from trainer.config import Settings, load_settings
from trainer.db import create_database

runner = CliRunner()


def write_config(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "trainer.toml"
    data_dir = tmp_path / "data"
    path.write_text(f'data_dir = "{data_dir}"\ndatabase_url = "{db_url}"\n{extra}', encoding="utf-8")
    return path


def findings_of(settings: Settings) -> dict[str, doctor.Finding]:
    found = asyncio.run(doctor.diagnose(lambda: settings, "test"))
    return {f.check: f for f in found}


def test_healthy_deployment_passes_on_both_databases(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, f'secret_key = "{TEST_SECRET}"\n')
    result = runner.invoke(app, ["--config", str(config), "doctor"])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
    assert "schema current" in result.output
    if db_url.startswith("postgresql"):
        assert "the database server" in result.output  # the clock was compared with PostgreSQL's


def test_invalid_config_fails_with_the_setting_named(tmp_path: Path) -> None:
    config = tmp_path / "trainer.toml"
    config.write_text("port = 0\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "doctor"])
    assert result.exit_code == 1
    assert "port" in result.output and "FAIL" in result.output


@pytest.mark.parametrize("backend", ["sqlite"])
def test_secret_file_readable_by_others_fails_with_chmod_hint(tmp_path: Path, db_url: str) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", database_url=db_url)
    secret = settings.data_dir / "secret_key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("x" * 64)
    os.chmod(secret, 0o644)
    finding = findings_of(settings)["secret key"]
    assert finding.status == "fail"
    assert "0644" in finding.detail and f"chmod 600 {secret}" in finding.hint
    assert "x" * 10 not in finding.detail + finding.hint  # the secret itself is never shown
    os.chmod(secret, 0o600)
    assert findings_of(settings)["secret key"].status == "ok"


async def _add_newer_migration(url: str) -> None:
    db = create_database(url)
    await db.open()
    try:
        await db.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'future', 'x', 0)"
        )
    finally:
        await db.close()


def test_database_newer_than_program_fails(tmp_path: Path, db_url: str) -> None:
    asyncio.run(_add_newer_migration(db_url))
    finding = findings_of(load_settings(None, data_dir=tmp_path, database_url=db_url))["migrations"]
    assert finding.status == "fail"
    assert "newer than this program" in finding.detail
    assert "install the trainer version" in finding.hint


def test_pending_migrations_fail_only_without_auto_migrate(tmp_path: Path, empty_db_url: str) -> None:
    if empty_db_url.startswith("sqlite"):
        Path(empty_db_url.removeprefix("sqlite:///")).touch()
    manual = findings_of(load_settings(None, data_dir=tmp_path, database_url=empty_db_url, auto_migrate=False))
    assert manual["migrations"].status == "fail"
    assert "pending" in manual["migrations"].detail and "trainer migrate" in manual["migrations"].hint
    auto = findings_of(load_settings(None, data_dir=tmp_path, database_url=empty_db_url))
    assert auto["migrations"].status == "warn"


def test_unreachable_postgres_fails_with_hint(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    finding = findings_of(settings)["database"]
    assert finding.status == "fail"
    assert "database_url" in finding.hint


def test_clock_skew_against_database_server() -> None:
    from trainer import clock

    assert doctor.check_clock(clock.now_s() - 0.5).status == "ok"
    assert doctor.check_clock(clock.now_s() - 5).status == "warn"
    skewed = doctor.check_clock(clock.now_s() + 120)
    assert skewed.status == "fail" and "NTP" in skewed.hint
    with clock.frozen(86_400.0):  # a host booted at 1970 with no RTC
        assert doctor.check_clock(None).status == "fail"


def test_redis_queue_is_pinged(tmp_path: Path) -> None:
    up = load_settings(None, data_dir=tmp_path, queue_url="redis://127.0.0.1:6379/0")
    assert doctor.check_queue(up).status == "ok"
    down = load_settings(None, data_dir=tmp_path, queue_url="redis://:hunter2hunter2@127.0.0.1:1/0")
    finding = doctor.check_queue(down)
    assert finding.status == "fail" and "queue_url" in finding.hint
    assert "hunter2" not in finding.detail


def test_damaged_sqlite_queue_fails(tmp_path: Path) -> None:
    queue = tmp_path / "queue.db"
    queue.write_bytes(b"this is not a database" * 100)
    finding = doctor.check_queue(load_settings(None, data_dir=tmp_path, queue_url=f"sqlite:///{queue}"))
    assert finding.status == "fail" and "cannot be opened" in finding.detail
    queue.unlink()
    assert doctor.check_queue(load_settings(None, data_dir=tmp_path, queue_url=f"sqlite:///{queue}")).status == "ok"


def test_broken_plugin_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="broken", value="trainer_no_such_module:Plugin", group="trainer.plugins")
    monkeypatch.setattr("trainer.plugins.entry_points", lambda group: [broken])
    finding = doctor.check_plugins(load_settings(None, data_dir=tmp_path))
    assert finding.status == "fail"
    assert "broken" in finding.detail and "ModuleNotFoundError" in finding.detail
    assert "uninstall" in finding.hint


def test_settings_for_unknown_plugin_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trainer.plugins.entry_points", lambda group: [])
    settings = load_settings(None, data_dir=tmp_path, plugins={"nosuch": {"enabled": True}})
    finding = doctor.check_plugins(settings)
    assert finding.status == "fail" and "plugins.nosuch" in finding.detail


def test_low_disk_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(100 << 30, 99 << 30, 100 << 20))
    assert doctor.check_disk(tmp_path).status == "fail"
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(100 << 30, 99 << 30, 1 << 30))
    assert doctor.check_disk(tmp_path).status == "warn"

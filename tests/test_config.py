"""Settings: where each value comes from, how a bad one is reported, and how secrets are kept."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Literal, get_origin

import pytest
from trainer_cli.main import app
from typer.testing import CliRunner

from trainer.config import Settings, ensure_secret_key, load_settings, masked
from trainer.errors import ConfigError

runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- precedence: defaults < TOML < environment ----------------------------------------------------


def test_defaults_need_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.resolved_database_url == "sqlite:///trainer-data/trainer.db"
    assert settings.is_sqlite
    assert settings.registration == "invite"


def test_explicit_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.toml", 'port = 9001\nregistration = "open"\n')
    settings = load_settings(path)
    assert settings.port == 9001
    assert settings.registration == "open"
    assert settings.host == "127.0.0.1"  # untouched keys keep their defaults


def test_trainer_config_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_CONFIG", str(write(tmp_path / "env.toml", "port = 9002\n")))
    assert load_settings().port == 9002


def test_explicit_file_beats_trainer_config_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_CONFIG", str(write(tmp_path / "env.toml", "port = 9002\n")))
    assert load_settings(write(tmp_path / "cli.toml", "port = 9003\n")).port == 9003


def test_trainer_toml_in_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "trainer.toml", "port = 9004\n")
    assert load_settings().port == 9004


def test_trainer_config_variable_beats_working_directory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "trainer.toml", "port = 9004\n")
    monkeypatch.setenv("TRAINER_CONFIG", str(write(tmp_path / "env.toml", "port = 9005\n")))
    assert load_settings().port == 9005


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "t.toml", 'port = 9001\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("TRAINER_PORT", "9010")
    settings = load_settings(path)
    assert settings.port == 9010
    assert settings.host == "0.0.0.0"


def test_nested_plugin_settings_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "t.toml", '[plugins.strava]\nclient_id = "from-file"\nclient_secret = "s"\n')
    monkeypatch.setenv("TRAINER_PLUGINS__GARMIN__CONSUMER_KEY", "from-env")
    settings = load_settings(path)
    assert settings.plugins["strava"] == {"client_id": "from-file", "client_secret": "s"}
    assert settings.plugins["garmin"] == {"consumer_key": "from-env"}


def test_list_setting_from_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_overrides_passed_by_code_beat_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI options such as `serve --port` arrive as overrides and win over file and environment."""
    monkeypatch.setenv("TRAINER_PORT", "9010")
    assert load_settings(write(tmp_path / "t.toml", "port = 9001\n"), port=9020).port == 9020


# -- invalid settings: one line naming the setting -------------------------------------------------

# One invalid environment value per setting that can be invalid; the message must name the setting.
INVALID_ENV = {
    "port": "70000",
    "max_body_bytes": "10",
    "database_url": "mysql://localhost/trainer",
    "queue_url": "amqp://localhost",
    "cors_origins": "https://not-json.example",
    "trust_forwarded_for": "perhaps",
    "shutdown_timeout_s": "-1",
    "auto_migrate": "sometimes",
    "db_pool_size": "0",
    "access_token_ttl_s": "5",
    "refresh_token_ttl_days": "0",
    "registration": "maybe",
    "invite_ttl_days": "0",
    "password_min_length": "4",
    "argon2_memory_kib": "1",
    "argon2_time_cost": "0",
    "argon2_parallelism": "0",
    "login_max_failures": "0",
    "login_lockout_max_s": "0",
    "login_max_failures_per_address": "0",
    "login_address_window_s": "0",
    "tombstone_retention_days": "0",
    "sync_max_push_records": "0",
    "sync_max_push_bytes": "1",
    "log_level": "verbose",
    "log_format": "xml",
    "plugins": "not-a-table",
}


def _type_invalid(name: str) -> str | None:
    """An environment value that cannot parse as the setting's type; None for free text (str, paths, secrets)."""
    annotation = Settings.model_fields[name].annotation
    if annotation is bool:
        return "perhaps"
    if annotation in (int, float):
        return "not-a-number"
    if get_origin(annotation) is Literal:
        return "no-such-choice"
    if get_origin(annotation) in (list, dict):
        return "{not json"
    return None


TYPED = sorted(name for name in Settings.model_fields if _type_invalid(name) is not None)


@pytest.mark.parametrize("name", TYPED)
def test_every_typed_setting_reports_a_wrong_type_in_one_line(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Derived from the model, so a setting added later is covered without touching this file."""
    monkeypatch.setenv("TRAINER_" + name.upper(), _type_invalid(name) or "")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "\n" not in caught.value.message
    assert f"invalid setting '{name}' (TRAINER_{name.upper()}): " in caught.value.message


@pytest.mark.parametrize("name", sorted(INVALID_ENV))
def test_invalid_setting_is_one_line_naming_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_" + name.upper(), INVALID_ENV[name])
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "\n" not in message
    assert f"'{name}'" in message
    assert f"TRAINER_{name.upper()}" in message


@pytest.mark.parametrize("name", sorted(INVALID_ENV))
def test_invalid_setting_through_the_cli_exits_2_with_one_line(name: str) -> None:
    result = runner.invoke(app, ["config", "show"], env={"TRAINER_" + name.upper(): INVALID_ENV[name]})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid setting '{name}' (TRAINER_{name.upper()}): ")
    assert result.stdout == ""


def test_invalid_value_in_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "port = 0\n")
    with pytest.raises(ConfigError, match=r"'port' \(in .*t\.toml\)"):
        load_settings(path)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "prot = 9000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.message == f"unknown setting 'prot' in {path}"


def test_unknown_key_in_file_through_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "[server]\nport = 1\n")
    result = runner.invoke(app, ["--config", str(path), "config", "show"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: unknown setting 'server' in {path}"]


def test_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "config", "show"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_several_problems_report_the_first_and_count_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_PORT", "0")
    monkeypatch.setenv("TRAINER_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match=r"\(and 1 more\)$"):
        load_settings()


# -- the secret key -------------------------------------------------------------------------------


def test_secret_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data")
    first = ensure_secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert ensure_secret_key(settings) == first
    assert ensure_secret_key(load_settings(None, data_dir=tmp_path / "data")) == first


def test_configured_secret_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    key = "k" * 40
    settings = load_settings(None, data_dir=tmp_path / "data", secret_key=key)
    assert ensure_secret_key(settings) == key
    assert not (tmp_path / "data" / "secret_key").exists()


def test_short_secret_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="'secret_key'"):
        ensure_secret_key(load_settings(None, data_dir=tmp_path))


def test_short_secret_key_stops_serve_with_exit_2(tmp_path: Path) -> None:
    env = {"TRAINER_SECRET_KEY": "too-short", "TRAINER_DATA_DIR": str(tmp_path)}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = runner.invoke(app, ["serve"], env=env)
    finally:
        # serve configures the root logger for its own process; give pytest's handlers back.
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "secret_key" in result.stderr


def test_truncated_secret_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        ensure_secret_key(load_settings(None, data_dir=tmp_path))


# -- secrets never shown --------------------------------------------------------------------------


def test_masked_hides_every_secret() -> None:
    settings = load_settings(
        None,
        secret_key="s" * 40,
        database_url="postgresql://trainer:hunter2-db@db.example:5432/trainer",
        queue_url="redis://:hunter2-redis@cache.example:6379/0",
        plugins={"strava": {"client_id": "123", "client_secret": "hunter2-strava", "webhook_token": "hunter2-tok"}},
    )
    shown = json.dumps(masked(settings))
    assert "hunter2" not in shown
    assert "s" * 40 not in shown
    doc = masked(settings)
    assert doc["database_url"] == "postgresql://trainer:********@db.example:5432/trainer"
    assert doc["plugins"]["strava"]["client_id"] == "123"  # not a secret: stays readable


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.toml",
        'database_url = "postgresql://trainer:pw-db-123@localhost/trainer"\n'
        '[plugins.strava]\nclient_id = "777"\nclient_secret = "pw-strava-456"\n',
    )
    env = {"TRAINER_SECRET_KEY": "pw-secret-" + "x" * 40, "COLUMNS": "200"}
    result = runner.invoke(app, ["--config", str(path), "config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "pw-" not in result.stdout
    assert f"# file: {path}" in result.stdout
    doc = json.loads(result.stdout.split("\n", 1)[1])
    assert doc["database_url"] == "postgresql://trainer:********@localhost/trainer"
    assert doc["plugins"]["strava"] == {"client_id": "777", "client_secret": "********"}
    assert doc["secret_key"] not in (None, "")


def test_config_show_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "# file: (none)" in result.stdout
    doc = json.loads(result.stdout.split("\n", 1)[1])
    assert doc["database_url (effective)"] == "sqlite:///trainer-data/trainer.db"
    assert os.environ.get("TRAINER_CONFIG") is None

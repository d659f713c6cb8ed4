"""Settings: one model, read from defaults < TOML file < TRAINER_* environment variables.

The file is `--config PATH`, else $TRAINER_CONFIG, else ./trainer.toml when it exists. Nested
sections use `__` in environment names (TRAINER_PLUGINS__STRAVA__CLIENT_ID). Every setting is
listed and explained in config.example.toml; tests/test_config.py fails when one is missing there.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from trainer.errors import ConfigError

ENV_PREFIX = "TRAINER_"
DEFAULT_CONFIG_FILE = Path("trainer.toml")
SECRET_KEY_FILE = "secret_key"


class Settings(BaseSettings):
    """Every knob of a trainer deployment. Zero config gives a working single-user server."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # -- where things live
    data_dir: Path = Path("trainer-data")
    database_url: str = ""
    queue_url: str = ""

    # -- HTTP server
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str = ""
    max_body_bytes: int = Field(1 << 20, ge=1024)
    upload_max_bytes: int = Field(64 << 20, ge=1024)
    cors_origins: list[str] = []
    trust_forwarded_for: bool = False
    shutdown_timeout_s: float = Field(30.0, ge=0)
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"

    # -- database
    auto_migrate: bool = True
    db_pool_size: int = Field(10, ge=1, le=200)

    # -- secrets and tokens
    secret_key: SecretStr | None = None
    jwt_issuer: str = "trainer"
    jwt_audience: str = "trainer-app"
    access_token_ttl_s: int = Field(900, ge=30, le=86400)
    refresh_token_ttl_days: int = Field(60, ge=1, le=3650)

    # -- accounts
    registration: Literal["open", "invite", "closed"] = "invite"
    invite_ttl_days: int = Field(14, ge=1)
    password_min_length: int = Field(10, ge=8, le=128)
    argon2_memory_kib: int = Field(19456, ge=8)
    argon2_time_cost: int = Field(2, ge=1)
    argon2_parallelism: int = Field(1, ge=1)
    login_max_failures: int = Field(5, ge=1)
    login_lockout_max_s: int = Field(900, ge=1)
    login_max_failures_per_address: int = Field(50, ge=1)
    login_address_window_s: int = Field(900, ge=1)

    # -- sync
    tombstone_retention_days: int = Field(90, ge=1)
    sync_max_push_records: int = Field(5000, ge=1)
    sync_max_push_bytes: int = Field(8 << 20, ge=1024)

    # -- webhooks and their processing queue (trainer/ingest)
    webhook_path_token: SecretStr | None = None
    ingest_workers: int = Field(8, ge=1, le=256)
    ingest_max_attempts: int = Field(8, ge=1, le=100)
    ingest_retry_base_s: float = Field(30.0, gt=0)
    ingest_retry_max_s: float = Field(21600.0, gt=0)
    ingest_lease_s: int = Field(300, ge=10)
    ingest_stale_s: int = Field(60, ge=1)
    ingest_keep_days: int = Field(14, ge=1)

    # -- logging
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    # -- metrics (GET /metrics, Prometheus text format)
    metrics_token: SecretStr | None = None

    # -- plugins: one table per plugin, validated by that plugin's own settings model
    plugins: dict[str, dict[str, Any]] = {}

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("queue_url")
    @classmethod
    def _known_queue(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "sqlite:///", "memory://")):
            raise ValueError("must be empty (embedded SQLite queue), redis://..., sqlite:///path or memory://")
        return value

    @field_validator("webhook_path_token")
    @classmethod
    def _usable_path_token(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value() if value is not None else "off"
        if text != "off" and not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", text):
            raise ValueError('must be 16-128 characters of A-Z a-z 0-9 _ - (or "off")')
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database actually used: the embedded SQLite file in data_dir unless one is configured."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'trainer.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite:")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _config_file_in_use
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


_config_file_in_use: Path | None = None


def config_file(explicit: Path | str | None = None) -> Path | None:
    """The TOML file to read: explicit, else $TRAINER_CONFIG, else ./trainer.toml if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the settings, or raise ConfigError with one line naming the bad setting."""
    global _config_file_in_use
    toml_path = config_file(path)
    if toml_path is not None:
        _check_toml(toml_path)
    _config_file_in_use = toml_path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, toml_path)) from None
    except SettingsError as exc:
        # A list or table setting given in an environment variable that is not JSON.
        raise ConfigError(_describe_unparsable(exc)) from None
    finally:
        _config_file_in_use = None


def _check_toml(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _describe(exc: ValidationError, toml_path: Path | None) -> str:
    """One line for the first problem: the setting's name, its env var, and what is wrong."""
    error = exc.errors()[0]
    name = ".".join(str(p) for p in error["loc"]) or "settings"
    env_name = ENV_PREFIX + "__".join(str(p) for p in error["loc"]).upper()
    origin = env_name if env_name in os.environ or toml_path is None else f"in {toml_path}"
    if error["type"] == "extra_forbidden":
        where = f" in {toml_path}" if toml_path else ""
        return f"unknown setting '{name}'{where}"
    message = error["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid setting '{name}' ({origin}): {message}{more}"


_UNPARSABLE_FIELD = re.compile(r'field "([^"]+)"')


def _describe_unparsable(exc: SettingsError) -> str:
    """One line for a complex (list/table) value pydantic-settings could not decode from the environment."""
    match = _UNPARSABLE_FIELD.search(str(exc))
    name = match[1] if match else "settings"
    example = '["a", "b"] or {"k": "v"}'
    return f"invalid setting '{name}' ({ENV_PREFIX}{name.upper()}): must be JSON, e.g. {example}"


def ensure_secret_key(settings: Settings) -> str:
    """The server secret: configured, or generated once into data_dir/secret_key with mode 0600.

    Created with O_EXCL so two processes starting together agree on one key.
    """
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if len(value) < 32:
            raise ConfigError("invalid setting 'secret_key' (TRAINER_SECRET_KEY): must be at least 32 characters")
        return value
    path = settings.data_dir / SECRET_KEY_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if len(value) < 32:
            raise ConfigError(f"secret key file {path} is too short; delete it to generate a new one") from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


SECRET_WORDS = ("secret", "password", "token", "key")


def masked(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with every secret replaced, for `trainer config show` and logs."""
    return _mask(settings.model_dump(mode="json"))


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str) and value and any(key.lower().endswith(word) for word in SECRET_WORDS):
        return "********"
    if key in ("database_url", "queue_url") and isinstance(value, str) and "@" in value:
        return _mask_url_password(value)
    return value


def _mask_url_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _pw = creds.partition(":")
    return f"{scheme}://{user}{':********' if colon else ''}@{host}"

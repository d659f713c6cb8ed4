"""[plugins.garmin] settings. Vendor URLs are settings so tests (and proxies) can point elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from trainer.plugins import PluginSettings


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


class GarminSettings(PluginSettings):
    """Garmin Connect Developer Program credentials (client_id is Garmin's "consumer key").

    `enabled` defaults to whether a client_id is set. Ping callbacks are fetched only from
    `api_base`'s scheme, host and port (https://apis.garmin.com in production).
    """

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    api_base: str = "https://apis.garmin.com"
    authorize_url: str = "https://connect.garmin.com/oauth2Confirm"
    token_url: str = "https://diauth.garmin.com/di-oauth2-service/oauth/token"
    activity_window_days: int = Field(30, ge=1, le=30)
    health_window_days: int = Field(90, ge=1, le=90)

    _urls = field_validator("api_base", "authorize_url", "token_url")(_check_url)

    @model_validator(mode="before")
    @classmethod
    def _enabled_when_configured(cls, data: Any) -> Any:
        if isinstance(data, dict) and "enabled" not in data:
            data = {**data, "enabled": bool(data.get("client_id"))}
        return data

    @model_validator(mode="after")
    def _credentials(self) -> GarminSettings:
        if self.enabled and not (self.client_id and self.client_secret.get_secret_value()):
            raise ValueError("client_id and client_secret are required when Garmin is enabled")
        return self

"""[plugins.garmin] settings. Vendor URLs are settings so tests (and proxies) can point elsewhere."""

from __future__ import annotations

from pydantic import Field, field_validator

from trainer.plugins import OAuthClientSettings, http_url


class GarminSettings(OAuthClientSettings):
    """Garmin Connect Developer Program credentials (client_id is Garmin's "consumer key").

    `enabled` defaults to whether a client_id is set. Ping callbacks are fetched only from
    `api_base`'s scheme, host and port (https://apis.garmin.com in production).
    """

    api_base: str = "https://apis.garmin.com"
    authorize_url: str = "https://connect.garmin.com/oauth2Confirm"
    token_url: str = "https://diauth.garmin.com/di-oauth2-service/oauth/token"
    activity_window_days: int = Field(30, ge=1, le=30)
    health_window_days: int = Field(90, ge=1, le=90)

    _urls = field_validator("api_base", "authorize_url", "token_url")(http_url)

"""[plugins.strava] settings. Vendor URLs are settings so tests (and proxies) can point elsewhere."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from trainer.plugins import OAuthClientSettings, http_url


class StravaSettings(OAuthClientSettings):
    """Strava API application credentials (https://www.strava.com/settings/api) and tuning.

    `enabled` defaults to whether a client_id is set, so an unconfigured server simply has no
    Strava. `subscription_id` is what `trainer plugins strava subscribe` prints: webhook events
    for any other subscription are refused.
    """

    verify_token: SecretStr = SecretStr("")
    subscription_id: int | None = None
    api_base: str = "https://www.strava.com/api/v3"
    oauth_base: str = "https://www.strava.com/oauth"
    scope: str = "read,activity:read_all"
    per_page: int = Field(100, ge=1, le=200)
    headroom: float = Field(0.05, ge=0.0, lt=1.0)
    """Share of every quota window never used (other apps of the same Strava application, retries)."""
    backfill_reserve: float = Field(0.5, ge=0.0, lt=1.0)
    """Share of every quota window a backfill leaves to webhook processing."""
    max_wait_s: float = Field(15.0, ge=0.0)
    """Wait this long at most for a quota window to reset; beyond it, retry later."""

    _bases = field_validator("api_base", "oauth_base")(http_url)

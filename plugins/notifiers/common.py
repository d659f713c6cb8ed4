"""Small pieces every bundled notifier shares: base URL settings and reading a provider's answer."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
from pydantic import field_validator

from trainer import clock
from trainer.plugins import Delivery, PluginSettings

TRANSIENT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
"""Network failures worth retrying: refused or reset connections, timeouts, broken responses."""


class BaseURLSettings(PluginSettings):
    """Settings of a notifier that talks to one service; tests and self-hosters point `base_url` elsewhere."""

    base_url: str

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - clock.now_s())
    except (TypeError, ValueError):
        return None


def by_status(status: int, provider: str, retry_after: str | None = None) -> Delivery | None:
    """The outcome HTTP statuses decide alone: throttling and server errors are worth a retry."""
    if status == 429 or status >= 500:
        return Delivery("retry", f"{provider} answered HTTP {status}", retry_after_s(retry_after))
    if 200 <= status < 300:
        return None
    return Delivery("failed", f"{provider} refused the message (HTTP {status})")

"""Calls to Strava's API with the athlete's own token, inside the application's rate limits.

Every request: usable tokens first (refreshed through the host, which serializes refreshes per
athlete), a place in the shared 15-minute and daily windows, and afterwards the window usage Strava
reports in its headers. A 401 gets one forced refresh and one retry; a 429 or 5xx is RetryLater.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from trainer import clock, json_values
from trainer.plugins import Account, PermanentFailure, Plugin, PluginHost, RetryLater, TokenRevoked

from .settings import StravaSettings

log = logging.getLogger("trainer_plugins.strava")

QUARTER_S = 15 * 60
SERVER_ERROR_RETRY_S = 60.0


def window_resets(now_s: float | None = None) -> dict[str, float]:
    """When the current 15-minute window (:00, :15, :30, :45 UTC) and the day (00:00 UTC) end."""
    now = clock.now_s() if now_s is None else now_s
    quarter = (int(now) // QUARTER_S + 1) * QUARTER_S
    today = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"15min": float(quarter), "daily": (today + timedelta(days=1)).timestamp()}


def _pair(value: str | None) -> tuple[int, int] | None:
    try:
        short, long = (int(part) for part in (value or "").split(","))
    except ValueError:
        return None
    return short, long


async def _json(response: aiohttp.ClientResponse) -> Any:
    """The decoded body (None when empty, like aiohttp's `json()`).

    A 900-sample streams answer is ~100 kB of numbers: trainer.json_values decodes it with orjson,
    several times faster than the standard library (which was a tenth of a worker's CPU), and reads
    it exactly as the standard library would.
    """
    body = await response.read()
    if not body.strip():
        return None
    return json_values.loads(body)


class StravaAPI:
    def __init__(self, plugin: Plugin, settings: StravaSettings, host: PluginHost) -> None:
        self.plugin = plugin
        self.settings = settings
        self.host = host

    @property
    def http(self) -> Any:
        return self.host.http(self.plugin)

    def _windows(self) -> dict[str, float]:
        resets = window_resets()
        return {f"{group}-{span}": at for group in ("overall", "read") for span, at in resets.items()}

    async def _take_slot(self, reserve: float) -> None:
        limits = self.host.rate_limits(self.plugin)
        while True:
            wait = await limits.acquire(self._windows(), reserve=max(reserve, self.settings.headroom))
            if wait <= 0:
                return
            if wait > self.settings.max_wait_s:
                raise RetryLater("Strava rate limit nearly used up", retry_after=wait)
            await asyncio.sleep(wait)

    async def _observe(self, headers: Any) -> dict[str, tuple[int, int]]:
        """Record the usage Strava reports; returns {window: (usage, limit)} as read."""
        resets = window_resets()
        limits = self.host.rate_limits(self.plugin)
        seen: dict[str, tuple[int, int]] = {}
        for group, prefix in (("overall", "X-RateLimit"), ("read", "X-ReadRateLimit")):
            limit = _pair(headers.get(f"{prefix}-Limit"))
            usage = _pair(headers.get(f"{prefix}-Usage"))
            if limit is None or usage is None:
                continue
            for index, span in enumerate(("15min", "daily")):
                name = f"{group}-{span}"
                await limits.observe(name, limit=limit[index], usage=usage[index], resets_at=resets[span])
                seen[name] = (usage[index], limit[index])
        return seen

    @staticmethod
    def _retry_after(seen: dict[str, tuple[int, int]]) -> float:
        """Until the window that is full resets: the day if a daily one is, else the quarter hour."""
        resets = window_resets()
        now = clock.now_s()
        daily_full = any(span.endswith("daily") and usage >= limit for span, (usage, limit) in seen.items())
        return max((resets["daily"] if daily_full else resets["15min"]) - now, 1.0)

    async def get(
        self, account: Account, path: str, params: dict[str, Any] | None = None, *, reserve: float = 0.0
    ) -> Any:
        """GET `path` as the athlete; the decoded JSON, or None when Strava says 404."""
        tokens = await self.host.fresh_tokens(self.plugin, account)
        url = self.settings.api_base + path
        for attempt in (1, 2):
            await self._take_slot(reserve)
            try:
                async with self.http.request(
                    "GET", url, params=params, headers={"Authorization": f"Bearer {tokens.access_token}"}
                ) as response:
                    seen = await self._observe(response.headers)
                    status = response.status
                    if status == 401 and attempt == 1:
                        tokens = await self.host.fresh_tokens(self.plugin, account, force=True)
                        continue
                    if status == 401:
                        raise TokenRevoked("Strava refuses freshly refreshed tokens")
                    if status == 404:
                        return None
                    if status == 429:
                        raise RetryLater("Strava rate limit exceeded", retry_after=self._retry_after(seen))
                    if status >= 500:
                        raise RetryLater(f"Strava answered {status}", retry_after=SERVER_ERROR_RETRY_S)
                    if status >= 400:
                        raise PermanentFailure(f"Strava answered {status} to GET {path}")
                    return await _json(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise RetryLater(
                    f"Strava unreachable ({type(exc).__name__})", retry_after=SERVER_ERROR_RETRY_S
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST to the OAuth token endpoint; TokenRevoked when Strava refuses the grant."""
        form = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
            **form,
        }
        try:
            async with self.http.request("POST", self.settings.oauth_base + "/token", data=form) as response:
                if response.status in (400, 401, 403):
                    raise TokenRevoked(f"Strava refused the {form.get('grant_type')} grant ({response.status})")
                if response.status >= 300:
                    raise RetryLater(
                        f"Strava token endpoint answered {response.status}", retry_after=SERVER_ERROR_RETRY_S
                    )
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"Strava unreachable ({type(exc).__name__})", retry_after=SERVER_ERROR_RETRY_S) from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise RetryLater("Strava token endpoint sent no access token", retry_after=SERVER_ERROR_RETRY_S)
        return body

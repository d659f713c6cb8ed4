"""Calls to Garmin's API with the user's bearer token (refreshed through the host, serialized per
user), and to its OAuth 2 token endpoint."""

from __future__ import annotations

from typing import Any

import aiohttp

from trainer.plugins import Account, PermanentFailure, Plugin, PluginHost, RetryLater, TokenRevoked

from .settings import GarminSettings

RETRY_S = 60.0


def _retry_after(headers: Any, default: float) -> float:
    try:
        return max(float(headers.get("Retry-After", default)), 1.0)
    except ValueError:
        return default


class GarminAPI:
    def __init__(self, plugin: Plugin, settings: GarminSettings, host: PluginHost) -> None:
        self.plugin = plugin
        self.settings = settings
        self.host = host

    @property
    def http(self) -> Any:
        return self.host.http(self.plugin)

    async def call(self, account: Account, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body or None) for any status below 400 and 404/409/410; errors mapped:
        401 -> one forced refresh and retry, 429/5xx/network -> RetryLater, others PermanentFailure."""
        tokens = await self.host.fresh_tokens(self.plugin, account)
        for attempt in (1, 2):
            try:
                async with self.http.request(
                    method, url, headers={"Authorization": f"Bearer {tokens.access_token}"}, **kwargs
                ) as response:
                    status = response.status
                    if status == 401 and attempt == 1:
                        tokens = await self.host.fresh_tokens(self.plugin, account, force=True)
                        continue
                    if status == 401:
                        raise TokenRevoked("Garmin refuses freshly refreshed tokens")
                    if status == 429 or status >= 500:
                        raise RetryLater(
                            f"Garmin answered {status}", retry_after=_retry_after(response.headers, RETRY_S)
                        )
                    if status >= 400 and status not in (404, 409, 410):
                        raise PermanentFailure(f"Garmin answered {status} to {method} {url.split('?')[0]}")
                    body = await response.read()
                    return status, (await response.json(content_type=None)) if body.strip() else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise RetryLater(f"Garmin unreachable ({type(exc).__name__})", retry_after=RETRY_S) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def token_request(self, form: dict[str, str]) -> dict[str, Any]:
        form = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
            **form,
        }
        try:
            async with self.http.request("POST", self.settings.token_url, data=form) as response:
                if response.status in (400, 401, 403):
                    raise TokenRevoked(f"Garmin refused the {form.get('grant_type')} grant ({response.status})")
                if response.status >= 300:
                    raise RetryLater(f"Garmin token endpoint answered {response.status}", retry_after=RETRY_S)
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"Garmin unreachable ({type(exc).__name__})", retry_after=RETRY_S) from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise RetryLater("Garmin token endpoint sent no access token", retry_after=RETRY_S)
        return body

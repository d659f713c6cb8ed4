"""Strava's push subscription (one per application): create, list, delete.

Creating one is special: while the POST is in flight, Strava calls the callback URL and expects the
challenge back within 2 s. So it is run by the CLI, a separate process, never inside the server's
event loop; the running server answers the check (StravaPlugin.verify_webhook).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from trainer.errors import InvalidInput, Unavailable

from .settings import StravaSettings


def _credentials(settings: StravaSettings) -> dict[str, str]:
    return {"client_id": settings.client_id, "client_secret": settings.client_secret.get_secret_value()}


async def _call(http: Any, method: str, url: str, **kwargs: Any) -> Any:
    try:
        async with http.request(method, url, timeout=aiohttp.ClientTimeout(total=30), **kwargs) as response:
            body = await response.json(content_type=None) if response.status != 204 else None
            if response.status >= 400:
                raise InvalidInput(f"Strava refused: {_reason(body) or response.status}")
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"Strava cannot be reached ({type(exc).__name__})") from None


def _reason(body: Any) -> str:
    """Strava's error body: {"message": ..., "errors": [{"field": ..., "code": ...}]} -> one line."""
    if not isinstance(body, dict):
        return ""
    details = [
        f"{e.get('field', '')} {e.get('code', '')}".strip() for e in body.get("errors") or [] if isinstance(e, dict)
    ]
    return "; ".join([str(body.get("message", "")), *details]).strip("; ")


async def create(http: Any, settings: StravaSettings, callback_url: str) -> int:
    if len(callback_url) > 255:
        raise InvalidInput("Strava accepts callback URLs of at most 255 characters")
    if not settings.verify_token.get_secret_value():
        raise InvalidInput("set plugins.strava.verify_token first: Strava checks the callback with it")
    form = {
        **_credentials(settings),
        "callback_url": callback_url,
        "verify_token": settings.verify_token.get_secret_value(),
    }
    body = await _call(http, "POST", settings.api_base + "/push_subscriptions", data=form)
    if not isinstance(body, dict) or not isinstance(body.get("id"), int):
        raise Unavailable("Strava did not return a subscription id")
    return body["id"]


async def list_all(http: Any, settings: StravaSettings) -> list[dict[str, Any]]:
    body = await _call(http, "GET", settings.api_base + "/push_subscriptions", params=_credentials(settings))
    return [s for s in body or [] if isinstance(s, dict)]


async def delete(http: Any, settings: StravaSettings, subscription_id: int) -> None:
    await _call(
        http, "DELETE", f"{settings.api_base}/push_subscriptions/{subscription_id}", params=_credentials(settings)
    )

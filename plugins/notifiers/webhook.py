"""Outbound webhooks signed per Standard Webhooks: for Home Assistant, Node-RED and friends.

    [plugins.webhook]
    allowed_urls = ["http://homeassistant.local:8123/api/webhook/"]   # URL prefixes users may register
    secret = "whsec_..."            # default signing secret; a device may bring its own

A user registers a URL (their Home Assistant webhook) as the device address. Only URLs under an
`allowed_urls` prefix are reachable — otherwise any user could make the server call internal
addresses. Every message carries `webhook-id` (the same on every retry, the receiver's dedupe
key), `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` over
`id.timestamp.body`, so the receiver can prove it came from this server and is fresh.

Body: {"type": "notification.<category>", "timestamp": "<ISO 8601>", "data": {title, body, ...}}.
A receiver answering 410 Gone asks never to be called again: the device is deactivated.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr, field_validator
from trainer_plugins.notifiers.common import TRANSIENT_ERRORS, by_status, host_of

from trainer import clock
from trainer.ids import new_id
from trainer.ingest.signatures import decode_standard_secret, sign_standard
from trainer.notify.capabilities import TargetChecker
from trainer.plugins import Delivery, Notification, Notifier, Plugin, PluginSettings, Target


class WebhookSettings(PluginSettings):
    allowed_urls: list[str] = []
    secret: SecretStr | None = None

    @field_validator("allowed_urls")
    @classmethod
    def _prefixes(cls, values: list[str]) -> list[str]:
        for value in values:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return values

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_standard_secret(value.get_secret_value())
        return value


class WebhookPlugin(Plugin, Notifier, TargetChecker):
    name = "webhook"
    provider: ClassVar[str] = "webhook"
    version = "1"
    description = "Signed outbound webhooks (Standard Webhooks) for home automation and custom receivers"
    settings_model = WebhookSettings
    settings: WebhookSettings

    def allowed_hosts(self) -> set[str]:
        return {host_of(url) for url in self.settings.allowed_urls}

    def check_target(self, address: str) -> None:
        if not self._allowed(address):
            raise ValueError("this server does not send webhooks to that URL (see [plugins.webhook] allowed_urls)")

    def _allowed(self, address: str) -> bool:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            return False
        return any(_under(address, prefix) for prefix in self.settings.allowed_urls)

    async def deliver(self, target: Target, notification: Notification) -> Delivery:
        if not self._allowed(target.address):
            return Delivery("invalid_target", "URL is not under an allowed prefix")
        secret = target.secret or (self.settings.secret.get_secret_value() if self.settings.secret else None)
        if not secret:
            return Delivery("failed", "no signing secret: set [plugins.webhook] secret or register one")
        body = json.dumps(_payload(notification), separators=(",", ":")).encode()
        msg_id = "msg_" + str(notification.data.get("notificationId") or new_id())
        try:
            headers = sign_standard(secret, msg_id, body)
        except ValueError:
            return Delivery("failed", "the signing secret is not a whsec_ secret")
        headers["Content-Type"] = "application/json"
        try:
            async with self.host.http(self).request("POST", target.address, data=body, headers=headers) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except TRANSIENT_ERRORS as exc:
            return Delivery("retry", f"webhook unreachable: {type(exc).__name__}")
        if status == 410:
            return Delivery("invalid_target", "receiver answered 410 Gone")
        return by_status(status, "webhook receiver", retry_after) or Delivery("sent", f"HTTP {status}")


def _payload(notification: Notification) -> dict[str, Any]:
    return {
        "type": f"notification.{notification.category}",
        "timestamp": clock.now().isoformat().replace("+00:00", "Z"),
        "data": {
            "title": notification.title,
            "body": notification.body,
            "category": notification.category,
            **notification.data,
        },
    }


def _under(address: str, prefix: str) -> bool:
    """Same scheme, host and port, and a path at or below the prefix's (no "/api/webhookX" for "/api/webhook")."""
    a, p = urlsplit(address), urlsplit(prefix)
    if (a.scheme, (a.hostname or "").lower(), a.port) != (p.scheme, (p.hostname or "").lower(), p.port):
        return False
    if any(segment in (".", "..") for segment in unquote(a.path).split("/")):
        return False  # a client would resolve these and leave the prefix
    base = p.path if p.path.endswith("/") else p.path + "/"
    return a.path == p.path or a.path.startswith(base) or base == "/"

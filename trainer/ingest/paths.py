"""Where vendors push: /webhooks/<path token>/<plugin>[/<kind>], and the one place that says so.

Most vendors do not sign their webhooks (Strava, Garmin), so the first line of defence is a secret,
high-entropy path segment: a request that does not know it is a 404 before its body is read, and
anonymous junk never reaches a plugin's parser. The token is derived from the server secret (so
every server of a deployment agrees without configuration), can be set explicitly, or turned off
with "off" where something in front already authenticates vendors. It is compared in constant time
and never logged (see trainer/ingest/accesslog.py); `trainer webhooks urls` shows it to the operator.
"""

from __future__ import annotations

import base64
import hmac
import re

from trainer.config import Settings
from trainer.keys import derive_key

PREFIX = "/webhooks"
OFF = "off"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_PURPOSE = "webhook-path-token"


def path_token(settings: Settings, secret: str) -> str | None:
    """This deployment's path token: configured, derived from the server secret, or None when off."""
    configured = settings.webhook_path_token
    if configured is None:
        return base64.urlsafe_b64encode(derive_key(secret, _PURPOSE, 24)).decode().rstrip("=")
    value = configured.get_secret_value()
    return None if value == OFF else value


def token_matches(expected: str | None, offered: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode(), offered.encode())


def webhook_path(token: str | None, plugin: str, kind: str = "") -> str:
    """The path a vendor pushes `kind` events of `plugin` to (kind "" is the plugin's bare URL)."""
    parts = [PREFIX] + ([token] if token else []) + [plugin] + ([kind] if kind else [])
    return "/".join(parts)


def webhook_url(settings: Settings, secret: str, plugin: str, kind: str = "") -> str:
    """The full URL to register with the vendor: the public URL plus `webhook_path`."""
    base = settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
    return base + webhook_path(path_token(settings, secret), plugin, kind)

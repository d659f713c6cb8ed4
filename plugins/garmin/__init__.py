"""Garmin Health/Activity API: OAuth 2 + PKCE connect, push and ping webhooks, wellness data, backfill."""

from .plugin import GarminPlugin
from .settings import GarminSettings

__all__ = ["GarminPlugin", "GarminSettings"]

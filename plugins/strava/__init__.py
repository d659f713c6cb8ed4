"""Strava: OAuth connect, webhook events, activity + stream fetching, history backfill."""

from .plugin import StravaPlugin
from .settings import StravaSettings

__all__ = ["StravaPlugin", "StravaSettings"]

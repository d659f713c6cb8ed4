"""Strava's webhook requests: the subscription check (GET) and events (POST).

Events are not signed, so they are treated as hints: the secret path token (checked by the core),
our subscription id, a strict schema and a sane event_time keep junk out of the inbox, and the
pipeline acts only on what a re-fetch with the athlete's own token confirms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from trainer import clock
from trainer.errors import InvalidInput, Unauthenticated
from trainer.plugins import NewEvent, WebhookOutcome, WebhookRequest

from .settings import StravaSettings

_EARLIEST = 1_230_768_000  # 2009-01-01: Strava did not exist before
_FUTURE_SLACK_S = 3600
Scalar = str | bool | int | float


class StravaEvent(BaseModel):
    """One event as Strava documents it; anything else is refused, not guessed at."""

    model_config = ConfigDict(extra="ignore")

    aspect_type: Literal["create", "update", "delete"]
    event_time: StrictInt
    object_id: StrictInt = Field(gt=0)
    object_type: Literal["activity", "athlete"]
    owner_id: StrictInt = Field(gt=0)
    subscription_id: StrictInt
    updates: dict[str, Scalar] = Field(default_factory=dict, max_length=20)

    @field_validator("updates")
    @classmethod
    def _short(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        if any(len(k) > 64 or (isinstance(v, str) and len(v) > 512) for k, v in value.items()):
            raise ValueError("update values are too long")
        return value


def dedupe_key(event: StravaEvent) -> str:
    """Strava sends no event id: a replay is recognized by everything the event says.

    The event time leads the key: the inbox's unique index (plugin, dedupe key, ...) then grows at
    its end instead of at random places, so a batch of webhooks touches one of its pages, not one
    per athlete. The fields are validated integers and fixed words, so they are written as they
    are; only `updates` (free text, e.g. a new title) is hashed, and only when there are any.
    """
    key = (
        f"{event.event_time:012d}:{event.subscription_id}:{event.owner_id}:{event.object_type}:"
        f"{event.object_id}:{event.aspect_type}"
    )
    if event.updates:
        updates = json.dumps(sorted(event.updates.items()), separators=(",", ":"))
        key += ":" + hashlib.sha256(updates.encode()).hexdigest()[:40]
    return key


def verify(settings: StravaSettings, request: WebhookRequest) -> WebhookOutcome:
    if request.method == "GET":
        return _challenge(settings, request.query)
    try:
        event = StravaEvent.model_validate_json(request.body)
    except (ValueError, ValidationError):
        raise InvalidInput("not a Strava webhook event") from None
    if settings.subscription_id is None or event.subscription_id != settings.subscription_id:
        raise Unauthenticated("event for another subscription")
    if not _EARLIEST <= event.event_time <= clock.now_s() + _FUTURE_SLACK_S:
        raise InvalidInput("event_time is out of range")
    new = NewEvent(
        kind=event.object_type,
        external_user_id=str(event.owner_id),
        object_id=str(event.object_id),
        event_time=event.event_time,
        dedupe_key=dedupe_key(event),
        payload={"aspect_type": event.aspect_type, "updates": dict(event.updates)},
    )
    return WebhookOutcome(events=[new])


def _challenge(settings: StravaSettings, query: Any) -> WebhookOutcome:
    """Strava validates the callback while `subscribe` runs: echo hub.challenge for our verify_token."""
    expected = settings.verify_token.get_secret_value()
    offered = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    if query.get("hub.mode") != "subscribe" or not expected:
        raise Unauthenticated("not a subscription check")
    if not hmac.compare_digest(expected.encode(), offered.encode()):
        raise Unauthenticated("wrong verify token")
    if not 0 < len(challenge) <= 256:
        raise InvalidInput("missing hub.challenge")
    return WebhookOutcome(response={"hub.challenge": challenge})

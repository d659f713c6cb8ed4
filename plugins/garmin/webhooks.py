"""Garmin's pushes: one summary type per configured URL, data inline (push) or a callback URL (ping).

Garmin does not sign requests. What keeps junk out: the secret path token (checked by the core), an
exact `garmin-client-id` header match, known top-level keys only, a userId on every item, and for
ping mode a callback URL that may only point at the configured API host over its scheme (https in
production) — checked here and again, by the outbound client, before anything is fetched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from trainer import clock
from trainer.errors import InvalidInput, Unauthenticated
from trainer.plugins import NewEvent, WebhookKind, WebhookOutcome, WebhookRequest

from .settings import GarminSettings

log = logging.getLogger("trainer_plugins.garmin")

MB = 1 << 20
# summary type (the URL kind and the body's key) -> inbox event kind
EVENT_KINDS: dict[str, str] = {
    "activities": "activity",
    "activityDetails": "activity_details",
    "dailies": "daily",
    "sleeps": "sleep",
    "hrv": "hrv",
    "deregistrations": "deregistration",
    "userPermissionsChange": "permissions",
}
SUMMARY_TYPES = {event: summary for summary, event in EVENT_KINDS.items()}
WEBHOOK_KINDS: dict[str, WebhookKind] = {
    kind: WebhookKind(methods=("POST",), max_body_bytes=(128 if kind == "activityDetails" else 16) * MB)
    for kind in EVENT_KINDS
}
CALLBACK_PATH = "/wellness-api/"


def callback_allowed(settings: GarminSettings, url: str) -> bool:
    """Only the configured API origin (https://apis.garmin.com), its wellness API, no credentials."""
    try:
        target, api = urlsplit(url), urlsplit(settings.api_base)
        same_origin = (target.scheme, target.hostname, target.port) == (api.scheme, api.hostname, api.port)
    except ValueError:
        return False
    return same_origin and target.username is None and target.path.startswith(CALLBACK_PATH)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def _event_time(item: dict[str, Any]) -> int:
    for key in ("startTimeInSeconds", "changeTimeInSeconds", "uploadStartTimeInSeconds"):
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 40:
            return value
    summary = item.get("summary")
    if isinstance(summary, dict):
        return _event_time(summary)
    return int(clock.now_s())


def verify(settings: GarminSettings, request: WebhookRequest) -> WebhookOutcome:
    offered = request.headers.get("garmin-client-id", "")
    if not settings.client_id or not hmac.compare_digest(offered.encode(), settings.client_id.encode()):
        raise Unauthenticated("unknown client id")
    try:
        body = json.loads(request.body)
    except ValueError:
        raise InvalidInput("body is not JSON") from None
    if not isinstance(body, dict) or not body or not set(body) <= set(EVENT_KINDS):
        raise InvalidInput("unknown summary type")
    events: list[NewEvent] = []
    for summary_type, items in body.items():
        if not isinstance(items, list):
            raise InvalidInput(f"{summary_type} must be a list")
        kind = EVENT_KINDS[summary_type]
        for item in items:
            event = _event(settings, kind, item)
            if event is not None:
                events.append(event)
    return WebhookOutcome(events=events)


def _event(settings: GarminSettings, kind: str, item: Any) -> NewEvent | None:
    if not isinstance(item, dict) or not isinstance(item.get("userId"), str) or not 0 < len(item["userId"]) <= 128:
        raise InvalidInput("summary without userId")
    user = item["userId"]
    object_id = str(item.get("summaryId") or item.get("activityId") or "")[:128]
    callback = item.get("callbackURL")
    if callback is not None:
        if not isinstance(callback, str) or not callback_allowed(settings, callback):
            log.warning("ignored a %s ping whose callback URL is not Garmin's API", kind)
            return None
        payload: dict[str, Any] = {"callback_url": callback}
        key = _digest(kind, user, callback)
    else:
        payload = {"summary": item}  # push mode: the data exists only in this request
        key = _digest(kind, user, object_id, hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest())
    return NewEvent(
        kind=kind,
        external_user_id=user,
        object_id=object_id,
        event_time=_event_time(item),
        dedupe_key=key,
        payload=payload,
    )

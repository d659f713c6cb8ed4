"""A small vendor plugin for testing the ingest machinery through the public plugin interface.

It mimics the three shapes of real vendors, each on its own kind:

    ""            Strava-like: GET subscription challenge with a verify token; POST JSON events that
                  name our subscription id; small bodies
    "activities"  Garmin-like: a client-id header, batches of summaries pushed inline, big bodies
    "signed"      a signing vendor: Standard Webhooks HMAC, dedupe on webhook-id

`process` turns an event into results as the event's payload says (`behaviour`), so tests can make
it succeed, fail transiently or permanently, crash, take time, delete, report a day or disconnect.
Calls are counted per event id in `CALLS` (per process).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from trainer.errors import InvalidInput, Unauthenticated
from trainer.ingest.signatures import verify_standard
from trainer.normalized import Activity, DailySummary, ImportedActivity, Sport
from trainer.plugins import (
    Account,
    ActivitySource,
    DeleteActivity,
    Disconnect,
    InboxEvent,
    NewEvent,
    PermanentFailure,
    Plugin,
    PluginSettings,
    RetryLater,
    SourceResult,
    TokensChanged,
    TokenSet,
    UpsertActivity,
    UpsertDaily,
    WebhookKind,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRequest,
)

NAME = "testsrc"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALLS: Counter[str] = Counter()


class TestSourceSettings(PluginSettings):
    subscription_id: int = 120475
    verify_token: str = "verify-me"
    client_id: str = "test-client-id"
    signing_secret: str = SIGNING_SECRET


class TestSource(Plugin, WebhookReceiver, ActivitySource):
    name = NAME
    settings_model = TestSourceSettings
    webhook_kinds = {
        "": WebhookKind(methods=("GET", "POST"), max_body_bytes=4096),
        "activities": WebhookKind(max_body_bytes=12 << 20),
        "signed": WebhookKind(max_body_bytes=64 << 10),
    }
    settings: TestSourceSettings

    async def verify_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        if request.kind == "":
            return self._strava_like(request)
        if request.kind == "activities":
            return self._garmin_like(request)
        return self._signed(request)

    def _strava_like(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method == "GET":
            if request.query.get("hub.verify_token") != self.settings.verify_token:
                raise Unauthenticated("wrong verify token")
            return WebhookOutcome(response={"hub.challenge": request.query.get("hub.challenge", "")})
        doc = _json(request.body)
        if doc.get("subscription_id") != self.settings.subscription_id:
            raise Unauthenticated("not our subscription")
        try:
            owner, object_id, when = str(doc["owner_id"]), str(doc["object_id"]), int(doc["event_time"])
            aspect = str(doc["aspect_type"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("malformed event") from None
        hints = {k: doc[k] for k in ("aspect_type", "behaviour", "sleep_ms", "start") if k in doc}
        key = f"{owner}:{object_id}:{aspect}:{when}:{json.dumps(doc.get('updates', {}), sort_keys=True)}"
        return WebhookOutcome(events=[NewEvent("activity", owner, object_id, when, key, hints)])

    def _garmin_like(self, request: WebhookRequest) -> WebhookOutcome:
        if request.headers.get("test-client-id") != self.settings.client_id:
            raise Unauthenticated("wrong client id")
        doc = _json(request.body)
        events = []
        for item in doc.get("activities", []):
            try:
                user, summary, start = str(item["userId"]), str(item["summaryId"]), int(item["startTimeInSeconds"])
            except (KeyError, TypeError, ValueError):
                raise InvalidInput("malformed summary") from None
            events.append(NewEvent("activity", user, summary, start, f"{user}:{summary}:{start}", dict(item)))
        return WebhookOutcome(events=events)

    def _signed(self, request: WebhookRequest) -> WebhookOutcome:
        msg_id = verify_standard(self.settings.signing_secret, request.headers, request.body)
        doc = _json(request.body)
        return WebhookOutcome(
            events=[NewEvent("activity", str(doc["user"]), str(doc["object"]), int(doc["time"]), msg_id, {})]
        )

    async def process(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        CALLS[event.id] += 1
        payload = event.payload
        if payload.get("sleep_ms"):
            await asyncio.sleep(payload["sleep_ms"] / 1000)
        behaviour = payload.get("behaviour", "")
        if behaviour == "retry":
            raise RetryLater("vendor answered 503")
        if behaviour.startswith("retry_after:"):
            raise RetryLater("vendor answered 429", retry_after=float(behaviour.split(":", 1)[1]))
        if behaviour == "permanent":
            raise PermanentFailure("vendor says the activity does not exist")
        if behaviour == "crash":
            raise ZeroDivisionError("a bug in the plugin")
        if behaviour == "fail_once" and event.attempts == 1:
            raise RetryLater("first attempt fails")
        if behaviour == "delete" or payload.get("aspect_type") == "delete":
            return [DeleteActivity(NAME, event.object_id)]
        if behaviour == "daily":
            return [UpsertDaily(DailySummary(source=NAME, external_id=event.object_id, day=_day(event), steps=1234))]
        if behaviour == "disconnect":
            return [Disconnect("athlete revoked access", delete_data=True)]
        results: list[SourceResult] = []
        if behaviour == "tokens":
            results.append(TokensChanged(TokenSet(access_token="new-access", refresh_token="new-refresh")))
        results.append(UpsertActivity(activity_for(event)))
        return results


def activity_for(event: InboxEvent) -> ImportedActivity:
    start = event.payload.get("start", event.event_time)
    return ImportedActivity(
        activity=Activity(
            source=NAME,
            external_id=event.object_id,
            sport=Sport.RUN,
            name=f"Run {event.object_id}",
            start_time=datetime.fromtimestamp(start, tz=UTC),
            utc_offset_s=event.payload.get("utc_offset_s"),
            duration_s=1800,
            distance_m=5000,
            avg_hr_bpm=145,
        )
    )


def _day(event: InboxEvent) -> date:
    return datetime.fromtimestamp(event.event_time, tz=UTC).date()


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise InvalidInput("body is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body is not a JSON object")
    return doc

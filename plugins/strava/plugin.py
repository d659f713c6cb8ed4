"""The Strava plugin: every capability, through trainer's public plugin interface only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from trainer import clock
from trainer.errors import InvalidInput
from trainer.normalized import ImportedActivity
from trainer.plugins import (
    Account,
    ActivitySource,
    Backfiller,
    BackfillPage,
    DeleteActivity,
    Disconnect,
    InboxEvent,
    NewEvent,
    OAuthConnector,
    PermanentFailure,
    Plugin,
    PluginHost,
    SourceResult,
    TokenRevoked,
    TokenSet,
    UpsertActivity,
    WebhookKind,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRequest,
)

from . import webhooks
from .api import StravaAPI
from .normalize import SOURCE, STREAM_KEYS, activity_from_strava, streams_from_strava
from .settings import StravaSettings

log = logging.getLogger("trainer_plugins.strava")

REVOKED = "the athlete revoked trainer's access on Strava"
ACTIVITY_SCOPES = ("activity:read_all", "activity:read")


class StravaPlugin(Plugin, WebhookReceiver, ActivitySource, OAuthConnector, Backfiller):
    name = "strava"
    version = "1.0"
    description = "Strava: activities with streams, by webhook and history backfill"
    settings_model = StravaSettings
    webhook_kinds: ClassVar[dict[str, WebhookKind]] = {"": WebhookKind(methods=("GET", "POST"), max_body_bytes=4096)}
    delete_data_on_disconnect = True  # Strava's API terms: revoked access means the data goes

    settings: StravaSettings

    def __init__(self, settings: StravaSettings, host: PluginHost) -> None:  # type: ignore[override]
        super().__init__(settings, host)
        self.api = StravaAPI(self, settings, host)

    def allowed_hosts(self) -> set[str]:
        return {urlsplit(self.settings.api_base).hostname or "", urlsplit(self.settings.oauth_base).hostname or ""}

    @classmethod
    def commands(cls) -> Any:
        from .cli import app

        return app

    # -- webhooks --------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        return webhooks.verify(self.settings, request)

    # -- processing ------------------------------------------------------------------------------

    async def process(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        try:
            if event.kind == "athlete":
                return await self._athlete(event, account)
            if event.kind == "activity":
                return await self.fetch_activity(account, event.object_id)
        except TokenRevoked:
            return [Disconnect(REVOKED, delete_data=True)]
        return []

    async def _athlete(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        """A deauthorization event is believed only when Strava also refuses our refresh token."""
        updates = event.payload.get("updates") or {}
        if str(updates.get("authorized", "")).lower() != "false":
            return []
        await self.host.fresh_tokens(self, account, force=True)  # TokenRevoked -> Disconnect
        log.warning("Strava deauthorization event not confirmed: the athlete's tokens still refresh")
        return []

    async def fetch_activity(self, account: Account, activity_id: str, *, reserve: float = 0.0) -> list[SourceResult]:
        """The activity as Strava has it now: upsert it, or delete it when Strava says 404.

        Whatever the event said (create, update, delete), the re-fetch decides, so a forged or
        out-of-order event cannot delete or invent anything.
        """
        if not activity_id.isdigit():
            raise PermanentFailure("Strava activity ids are numbers")
        data = await self.api.get(account, f"/activities/{activity_id}", reserve=reserve)
        if data is None:
            return [DeleteActivity(SOURCE, activity_id)]
        owner = str((data.get("athlete") or {}).get("id", "")) if isinstance(data, dict) else ""
        if owner and owner != account.external_user_id:
            raise PermanentFailure("Strava returned an activity of another athlete")
        activity = activity_from_strava(data)
        streams = None
        if not activity.manual:
            raw = await self.api.get(
                account,
                f"/activities/{activity_id}/streams",
                {"keys": STREAM_KEYS, "key_by_type": "true"},
                reserve=reserve,
            )
            streams = None if raw is None else streams_from_strava(raw)
        return [UpsertActivity(ImportedActivity(activity=activity, streams=streams))]

    # -- OAuth -----------------------------------------------------------------------------------

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        query = {
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "approval_prompt": "auto",
            "scope": self.settings.scope,
            "state": state,
        }
        return f"{self.settings.oauth_base}/authorize?{urlencode(query)}"

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None, callback: Mapping[str, str]
    ) -> TokenSet:
        granted = callback.get("scope", "")
        if not any(scope in granted.split(",") for scope in ACTIVITY_SCOPES):
            raise InvalidInput(
                "Strava did not share your activities (the box was unticked); connect again and allow it"
            )
        try:
            body = await self.api.token_request({"grant_type": "authorization_code", "code": code})
        except TokenRevoked:
            raise InvalidInput("Strava refused the authorization (it may have expired); connect again") from None
        tokens = _tokens(body, scope=granted)
        tokens.external_user_id = str((body.get("athlete") or {}).get("id", ""))
        return tokens

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise TokenRevoked("no refresh token stored")
        body = await self.api.token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
        new = _tokens(body, scope=tokens.scope)
        new.external_user_id = tokens.external_user_id
        return new

    async def deauthorize(self, tokens: TokenSet) -> None:
        url = self.settings.oauth_base + "/deauthorize"
        async with self.host.http(self).request("POST", url, data={"access_token": tokens.access_token}) as response:
            if response.status >= 500:
                raise RuntimeError(f"Strava deauthorize answered {response.status}")

    # -- history ---------------------------------------------------------------------------------

    async def backfill(
        self, account: Account, *, since: datetime, checkpoint: str | None
    ) -> AsyncIterator[BackfillPage]:
        """Newest first, with a `before` cursor: each page's oldest start is the next page's bound.

        The cursor is that start + 1 s, so activities sharing the boundary second are not skipped
        (the one seen twice has the same dedupe key). Events carry no data: each is processed like
        a webhook, re-fetching the activity and its streams.
        """
        after = int(since.timestamp())
        started = int(clock.now_s()) + 1
        before = int(checkpoint) if checkpoint else started
        per_page = self.settings.per_page
        while True:
            params = {"before": before, "after": after, "per_page": per_page, "page": 1}
            page = await self.api.get(account, "/athlete/activities", params, reserve=self.settings.backfill_reserve)
            items = [a for a in page or [] if isinstance(a, dict) and "id" in a and "start_date" in a]
            starts = [int(activity_from_strava(a).start_time.timestamp()) for a in items]
            events = [
                NewEvent(
                    kind="activity",
                    external_user_id=account.external_user_id,
                    object_id=str(a["id"]),
                    event_time=start,
                    dedupe_key=f"backfill:{a['id']}",
                    payload={"aspect_type": "create", "backfill": True},
                )
                for a, start in zip(items, starts, strict=True)
            ]
            oldest = min(starts, default=after)
            cursor = oldest + 1 if oldest + 1 < before else oldest
            done = len(items) < per_page or cursor <= after
            covered = (started - max(cursor, after)) / max(started - after, 1)
            note = f"back to {clock.ms_to_datetime(oldest * 1000).date().isoformat()}" if items else "no more"
            yield BackfillPage(events, str(cursor), done, note=note, progress=min(max(covered, 0.0), 1.0))
            if done:
                return
            before = cursor


def _tokens(body: dict[str, Any], *, scope: str) -> TokenSet:
    expires_at = body.get("expires_at")
    if not isinstance(expires_at, int):
        expires_in = body.get("expires_in")
        expires_at = int(clock.now_s()) + int(expires_in) if isinstance(expires_in, int) else None
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=expires_at,
        scope=scope,
    )

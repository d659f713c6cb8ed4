"""The Garmin plugin: every capability, through trainer's public plugin interface only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from pydantic import ValidationError

from trainer import clock
from trainer.errors import InvalidInput
from trainer.normalized import DailySummary, ImportedActivity
from trainer.plugins import (
    Account,
    ActivitySource,
    Backfiller,
    BackfillPage,
    Disconnect,
    InboxEvent,
    OAuthConnector,
    PermanentFailure,
    Plugin,
    PluginHost,
    SourceResult,
    TokenRevoked,
    TokenSet,
    UpsertActivity,
    UpsertDaily,
    WebhookKind,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRequest,
)

from . import normalize, webhooks
from .api import GarminAPI
from .settings import GarminSettings

log = logging.getLogger("trainer_plugins.garmin")

DAY_S = 86_400
DEREGISTERED = "the user removed trainer's access in Garmin Connect"
EXPORT_PERMISSIONS = {"ACTIVITY_EXPORT", "HEALTH_EXPORT"}
# Backfill: which summary types, and the longest window Garmin accepts for each (settings).
BACKFILL_TYPES = ("activities", "activityDetails", "dailies", "sleeps", "hrv")
_HEALTH = {"dailies", "sleeps", "hrv"}
_DAILY: dict[str, Callable[[dict[str, Any]], DailySummary]] = {
    "daily": normalize.daily,
    "sleep": normalize.sleep,
    "hrv": normalize.hrv,
}


class GarminPlugin(Plugin, WebhookReceiver, ActivitySource, OAuthConnector, Backfiller):
    name = "garmin"
    version = "1.0"
    description = "Garmin Connect: activities with samples, sleep, HRV, resting HR and stress"
    settings_model = GarminSettings
    webhook_kinds: ClassVar[dict[str, WebhookKind]] = webhooks.WEBHOOK_KINDS
    uses_pkce = True

    settings: GarminSettings

    def __init__(self, settings: GarminSettings, host: PluginHost) -> None:  # type: ignore[override]
        super().__init__(settings, host)
        self.api = GarminAPI(self, settings, host)

    def allowed_hosts(self) -> set[str]:
        return {urlsplit(self.settings.api_base).hostname or "", urlsplit(self.settings.token_url).hostname or ""}

    def _url(self, path: str) -> str:
        return self.settings.api_base + path

    # -- webhooks --------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        return webhooks.verify(self.settings, request)

    # -- processing ------------------------------------------------------------------------------

    async def process(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        try:
            return await self._process(event, account)
        except TokenRevoked:
            return [Disconnect(DEREGISTERED)]

    async def _process(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        if event.kind == "deregistration":
            return [Disconnect(DEREGISTERED)]
        if event.kind == "permissions":
            permissions = (event.payload.get("summary") or {}).get("permissions")
            if isinstance(permissions, list) and not EXPORT_PERMISSIONS & set(permissions):
                return [Disconnect("the user withdrew every data permission in Garmin Connect")]
            return []
        if event.kind not in webhooks.SUMMARY_TYPES:
            return []
        if "summary" in event.payload:
            summaries = [event.payload["summary"]]
        else:
            summaries = await self._fetch_callback(account, str(event.payload.get("callback_url", "")), event.kind)
        results: list[SourceResult] = []
        for summary in summaries:
            if not isinstance(summary, dict) or str(summary.get("userId")) != account.external_user_id:
                log.warning("skipped a Garmin %s summary of another user", event.kind)
                continue
            result = self._normalize(event.kind, summary)
            if result is not None:
                results.append(result)
        return results

    def _normalize(self, kind: str, summary: dict[str, Any]) -> SourceResult | None:
        try:
            if kind in _DAILY:
                return UpsertDaily(_DAILY[kind](summary))
            imported: ImportedActivity | None
            if kind == "activity_details":
                imported = normalize.activity_details(summary)
            else:
                imported = normalize.activity(summary)
        except ValidationError as exc:
            raise PermanentFailure(f"Garmin {kind} summary is not usable: {exc.errors()[0]['msg']}") from None
        return None if imported is None else UpsertActivity(imported)

    async def _fetch_callback(self, account: Account, url: str, kind: str) -> list[Any]:
        """Ping mode: fetch the data Garmin announced, from Garmin only (checked before and by the
        outbound client), with the user's token; an expired callback is nothing to do."""
        if not webhooks.callback_allowed(self.settings, url):
            raise PermanentFailure("callback URL is not Garmin's API")
        status, body = await self.api.call(account, "GET", url)
        if status in (404, 410) or body is None:
            return []
        if isinstance(body, dict):
            body = body.get(webhooks.SUMMARY_TYPES[kind], [])
        return body if isinstance(body, list) else []

    # -- OAuth 2 with PKCE -------------------------------------------------------------------------

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "code_challenge": code_challenge or "",
            "code_challenge_method": "S256",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self.settings.authorize_url}?{urlencode(query)}"

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None, callback: Mapping[str, str]
    ) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        try:
            tokens = _tokens(await self.api.token_request(form))
        except TokenRevoked:
            raise InvalidInput("Garmin refused the authorization (it may have expired); connect again") from None
        account = Account(user_id="", plugin=self.name, external_user_id="", tokens=tokens)
        _, who = await self._as_new_user(account, "/wellness-api/rest/user/id")
        user_id = who.get("userId") if isinstance(who, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInput("Garmin did not say which account was connected; try again")
        _, permissions = await self._as_new_user(account, "/wellness-api/rest/user/permissions")
        if isinstance(permissions, list) and not EXPORT_PERMISSIONS & set(permissions):
            raise InvalidInput("Garmin shared no activity or health data (the boxes were unticked); connect again")
        tokens.external_user_id = user_id
        return tokens

    async def _as_new_user(self, account: Account, path: str) -> tuple[int, Any]:
        """A call with tokens that are not stored yet (no refresh possible: they are brand new)."""
        headers = {"Authorization": f"Bearer {account.tokens.access_token}"}
        async with self.host.http(self).request("GET", self._url(path), headers=headers) as response:
            if response.status >= 400:
                raise InvalidInput(f"Garmin answered {response.status} while connecting; try again")
            return response.status, await response.json(content_type=None)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise TokenRevoked("no refresh token stored")
        new = _tokens(
            await self.api.token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
        )
        new.external_user_id = tokens.external_user_id
        return new

    async def deauthorize(self, tokens: TokenSet) -> None:
        headers = {"Authorization": f"Bearer {tokens.access_token}"}
        url = self._url("/wellness-api/rest/user/registration")
        async with self.host.http(self).request("DELETE", url, headers=headers) as response:
            if response.status >= 500:
                raise RuntimeError(f"Garmin deregistration answered {response.status}")

    # -- history -----------------------------------------------------------------------------------

    async def backfill(
        self, account: Account, *, since: datetime, checkpoint: str | None
    ) -> AsyncIterator[BackfillPage]:
        """Ask Garmin to re-send each summary type, window by window (30 days for activities, 90 for
        health data: Garmin's maxima). Garmin answers 202 and delivers later through the webhooks,
        so pages carry no events; the checkpoint is "<type>:<window start>"."""
        start = int(since.timestamp())
        end = int(clock.now_s())
        windows = [
            (t, s, min(s + self._window(t), end)) for t in BACKFILL_TYPES for s in range(start, end, self._window(t))
        ]
        done_upto = _position(windows, checkpoint)
        for index in range(done_upto, len(windows)):
            summary_type, lo, hi = windows[index]
            params = {"summaryStartTimeInSeconds": lo, "summaryEndTimeInSeconds": hi}
            status, _ = await self.api.call(
                account, "GET", self._url(f"/wellness-api/rest/backfill/{summary_type}"), params=params
            )
            first = clock.ms_to_datetime(lo * 1000).date().isoformat()
            last = clock.ms_to_datetime(hi * 1000).date().isoformat()
            note = f"{summary_type} {first}..{last}" + (" already requested" if status == 409 else " requested")
            yield BackfillPage(
                [], f"{summary_type}:{lo}", index + 1 == len(windows), note=note, progress=(index + 1) / len(windows)
            )
        if not windows:
            yield BackfillPage([], "", True, note="nothing to request")

    def _window(self, summary_type: str) -> int:
        days = self.settings.health_window_days if summary_type in _HEALTH else self.settings.activity_window_days
        return days * DAY_S


def _position(windows: list[tuple[str, int, int]], checkpoint: str | None) -> int:
    """Index of the first window after the checkpoint's (0 when there is none or it is unknown)."""
    if not checkpoint:
        return 0
    for index, (summary_type, lo, _) in enumerate(windows):
        if checkpoint == f"{summary_type}:{lo}":
            return index + 1
    return 0


def _tokens(body: dict[str, Any]) -> TokenSet:
    expires_in = body.get("expires_in")
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=int(clock.now_s()) + int(expires_in) if isinstance(expires_in, int) else None,
        scope=str(body.get("scope") or ""),
    )

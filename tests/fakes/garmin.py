"""A local Garmin Health/Activity API: OAuth 2 with PKCE (consent + token endpoint with refresh
rotation), user id and permissions, deregistration, ping callbacks, and the backfill API.

Summary shapes follow Garmin's documentation as quoted in /work/shared/reference/vendors.md. The
builders (`activity`, `activity_details`, `daily`, `sleep`, `hrv`, ...) return one summary; `push`
wraps summaries into the body Garmin POSTs in push mode, and `ping` stores them behind a callback
URL and returns the ping body instead (fetching the callback needs the user's bearer token).
`fail_next(...)` scripts errors (e.g. 429, 5xx) for the next API requests; `delay_s` slows them.

    fake = await FakeGarmin().start()
    user = fake.add_user()
    body = fake.push("activities", [fake.activity(user)])     # POST this to /webhooks/.../garmin/activities
    headers = fake.headers()                                   # garmin-client-id
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import math
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.server import FakeServer
from trainer import clock

CLIENT_ID = "fake-garmin-consumer-key"
CLIENT_SECRET = "fake-garmin-client-secret"
ACCESS_TTL_S = 86_400
MAX_WINDOW_S = {"activities": 30 * 86_400, "activityDetails": 30 * 86_400}
HEALTH_WINDOW_S = 90 * 86_400


@dataclass
class Grant:
    user_id: str
    expires_at: int
    challenge: str = ""
    redirect_uri: str = ""


@dataclass
class User:
    id: str
    permissions: list[str] = field(default_factory=lambda: ["ACTIVITY_EXPORT", "HEALTH_EXPORT", "WORKOUT_IMPORT"])
    registered: bool = True


class FakeGarmin(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, User] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.codes: dict[str, Grant] = {}
        self.callbacks: dict[str, list[dict[str, Any]]] = {}  # callback token -> summaries
        self.backfills: list[tuple[str, str, int, int]] = []  # (user, type, start, end) accepted
        self.requests: list[tuple[str, str]] = []
        self.token_grants: Counter[str] = Counter()
        self.delay_s = 0.0
        self.next_login: str | None = None
        self._ids = itertools.count(5_001_968_355)

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        """`[plugins.garmin]` pointing at this fake."""
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_base": self.url,
            "authorize_url": f"{self.url}/oauth2Confirm",
            "token_url": f"{self.url}/di-oauth2-service/oauth/token",
            **overrides,
        }

    def headers(self) -> dict[str, str]:
        """What Garmin sends with every push."""
        return {"garmin-client-id": CLIENT_ID, "Content-Type": "application/json"}

    # -- users and tokens -------------------------------------------------------------------------

    def add_user(self) -> str:
        user_id = secrets.token_hex(16)
        self.users[user_id] = User(user_id)
        return user_id

    def issue_tokens(self, user_id: str, *, expires_in: int = ACCESS_TTL_S) -> dict[str, Any]:
        expires_at = int(clock.now_s()) + expires_in
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = Grant(user_id, expires_at)
        self.refresh[refresh] = Grant(user_id, expires_at + 90 * 86_400)
        return {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": expires_in,
            "refresh_token_expires_in": 7_775_999,
            "scope": "PARTNER_WRITE PARTNER_READ CONNECT_READ CONNECT_WRITE",
            "jti": secrets.token_hex(8),
        }

    def expire_tokens(self) -> None:
        for grant in self.access.values():
            grant.expires_at = 0

    # -- summaries (shapes as Garmin pushes them) ---------------------------------------------------

    def activity(self, user_id: str, *, start: datetime | None = None, **fields: Any) -> dict[str, Any]:
        start_s = int((start or datetime(2024, 5, 19, 6, 30, tzinfo=UTC)).timestamp())
        activity_id = fields.pop("activityId", next(self._ids))
        return {
            "userId": user_id,
            "summaryId": str(activity_id),
            "activityId": activity_id,
            "activityName": "Ljubljana RUNNING",
            "activityType": "RUNNING",
            "startTimeInSeconds": start_s,
            "startTimeOffsetInSeconds": 7200,
            "durationInSeconds": 3600,
            "distanceInMeters": 10_020.5,
            "averageSpeedInMetersPerSecond": 2.83,
            "maxSpeedInMetersPerSecond": 4.6,
            "averageHeartRateInBeatsPerMinute": 147,
            "maxHeartRateInBeatsPerMinute": 170,
            "averageRunCadenceInStepsPerMinute": 168.0,
            "activeKilocalories": 705,
            "totalElevationGainInMeters": 85.0,
            "deviceName": "Garmin Forerunner 965",
            "manual": False,
            **fields,
        }

    def activity_details(self, summary: dict[str, Any], *, samples: int = 600) -> dict[str, Any]:
        """The details document of an activity summary: same activityId, 1 Hz samples."""
        start = summary["startTimeInSeconds"]
        rows = []
        distance = 0.0
        for i in range(samples):
            speed = 2.8 + 0.3 * math.sin(i / 50)
            distance += speed
            rows.append(
                {
                    "startTimeInSeconds": start + i,
                    "latitudeInDegree": 46.05 + i * 2e-5,
                    "longitudeInDegree": 14.50 + i * 1e-5,
                    "elevationInMeters": 295.0 + 5 * math.sin(i / 200),
                    "airTemperatureCelcius": 19.0,
                    "heartRate": int(118 + 30 * (1 - math.exp(-i / 200))),
                    "speedMetersPerSecond": round(speed, 3),
                    "stepsPerMinute": 168,
                    "totalDistanceInMeters": round(distance, 2),
                    "timerDurationInSeconds": i,
                    "clockDurationInSeconds": i,
                    "movingDurationInSeconds": i,
                    "powerInWatts": None,
                }
            )
        keep = (
            "activityType",
            "startTimeInSeconds",
            "durationInSeconds",
            "averageHeartRateInBeatsPerMinute",
            "distanceInMeters",
            "activityName",
            "startTimeOffsetInSeconds",
            "deviceName",
        )
        return {
            "userId": summary["userId"],
            "summaryId": f"{summary['activityId']}-detail",
            "activityId": summary["activityId"],
            "summary": {k: summary[k] for k in keep if k in summary},
            "samples": rows,
            "laps": [{"startTimeInSeconds": start}],
        }

    def daily(self, user_id: str, day: date, **fields: Any) -> dict[str, Any]:
        return {
            "userId": user_id,
            "summaryId": f"x{user_id[:6]}-{day.isoformat()}",
            "calendarDate": day.isoformat(),
            "startTimeInSeconds": int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()),
            "durationInSeconds": 86_400,
            "steps": 9_305,
            "restingHeartRateInBeatsPerMinute": 48,
            "averageStressLevel": 31,
            "maxStressLevel": 88,
            "bodyBatteryChargedValue": 60,
            "bodyBatteryDrainedValue": 55,
            **fields,
        }

    def sleep(self, user_id: str, day: date, **fields: Any) -> dict[str, Any]:
        return {
            "userId": user_id,
            "summaryId": f"s{user_id[:6]}-{day.isoformat()}",
            "calendarDate": day.isoformat(),
            "startTimeInSeconds": int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 7 * 3600,
            "durationInSeconds": 27_000,
            "deepSleepDurationInSeconds": 5_400,
            "lightSleepDurationInSeconds": 14_400,
            "remSleepInSeconds": 6_300,
            "awakeDurationInSeconds": 900,
            "validation": "ENHANCED_FINAL",
            "overallSleepScore": {"value": 84, "qualifierKey": "GOOD"},
            **fields,
        }

    def hrv(self, user_id: str, day: date, **fields: Any) -> dict[str, Any]:
        return {
            "userId": user_id,
            "summaryId": f"h{user_id[:6]}-{day.isoformat()}",
            "calendarDate": day.isoformat(),
            "lastNightAvg": 62,
            "lastNight5MinHigh": 88,
            "startTimeInSeconds": int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 6 * 3600,
            "durationInSeconds": 25_000,
            "hrvValues": {"300": 58, "600": 61, "900": 66},
            **fields,
        }

    @staticmethod
    def deregistration(user_id: str) -> dict[str, Any]:
        return {"userId": user_id}

    @staticmethod
    def permissions_change(user_id: str, permissions: list[str]) -> dict[str, Any]:
        return {
            "userId": user_id,
            "summaryId": secrets.token_hex(6),
            "permissions": permissions,
            "changeTimeInSeconds": int(clock.now_s()),
        }

    @staticmethod
    def push(summary_type: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """The body of a push-mode POST."""
        return {summary_type: summaries}

    def ping(self, summary_type: str, user_id: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """The body of a ping-mode POST; the summaries wait behind its callback URL."""
        token = secrets.token_hex(12)
        self.callbacks[token] = summaries
        now = int(clock.now_s())
        query = urlencode({"uploadStartTimeInSeconds": now - 60, "uploadEndTimeInSeconds": now, "token": token})
        return {
            summary_type: [{"userId": user_id, "callbackURL": f"{self.url}/wellness-api/rest/{summary_type}?{query}"}]
        }

    # -- the app ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log])
        app.router.add_get("/oauth2Confirm", self._confirm)
        app.router.add_post("/di-oauth2-service/oauth/token", self._token)
        app.router.add_get("/wellness-api/rest/user/id", self._user_id)
        app.router.add_get("/wellness-api/rest/user/permissions", self._permissions)
        app.router.add_delete("/wellness-api/rest/user/registration", self._deregister)
        app.router.add_get("/wellness-api/rest/backfill/{type}", self._backfill)
        app.router.add_get("/wellness-api/rest/{type}", self._callback)
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    async def _confirm(self, request: web.Request) -> web.Response:
        """The consent screen, auto-approved for `next_login` (default: the newest user)."""
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="invalid request")
        user_id = self.next_login or list(self.users)[-1]
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(user_id, 0, q["code_challenge"], q.get("redirect_uri", ""))
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant_type = str(form.get("grant_type"))
        self.token_grants[grant_type] += 1
        if grant_type == "authorization_code":
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if grant is None or expected != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self.issue_tokens(grant.user_id))
        if grant_type == "refresh_token":
            grant = self.refresh.pop(str(form.get("refresh_token")), None)
            if grant is None or not self.users[grant.user_id].registered:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self.issue_tokens(grant.user_id))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    async def _authorized(self, request: web.Request) -> tuple[User | None, web.Response | None]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        scripted = self.scripted_answer()
        if scripted is not None:
            return None, scripted
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self.access.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant.expires_at <= clock.now_s() or not self.users[grant.user_id].registered:
            return None, web.json_response({"errorMessage": "Unauthorized"}, status=401)
        return self.users[grant.user_id], None

    async def _user_id(self, request: web.Request) -> web.Response:
        user, refused = await self._authorized(request)
        return refused or web.json_response({"userId": user.id})  # type: ignore[union-attr]

    async def _permissions(self, request: web.Request) -> web.Response:
        user, refused = await self._authorized(request)
        return refused or web.json_response(user.permissions)  # type: ignore[union-attr]

    async def _deregister(self, request: web.Request) -> web.Response:
        user, refused = await self._authorized(request)
        if refused is not None:
            return refused
        assert user is not None
        user.registered = False
        return web.Response(status=204)

    async def _backfill(self, request: web.Request) -> web.Response:
        user, refused = await self._authorized(request)
        if refused is not None:
            return refused
        assert user is not None
        summary_type = request.match_info["type"]
        try:
            start = int(request.query["summaryStartTimeInSeconds"])
            end = int(request.query["summaryEndTimeInSeconds"])
        except (KeyError, ValueError):
            return web.json_response({"errorMessage": "start and end are required"}, status=400)
        if end <= start or end - start > MAX_WINDOW_S.get(summary_type, HEALTH_WINDOW_S):
            return web.json_response({"errorMessage": "time range exceeds the maximum"}, status=400)
        key = (user.id, summary_type, start, end)
        if key in self.backfills:
            return web.json_response({"errorMessage": "duplicate backfill"}, status=409)
        self.backfills.append(key)
        return web.Response(status=202)

    async def _callback(self, request: web.Request) -> web.Response:
        user, refused = await self._authorized(request)
        if refused is not None:
            return refused
        assert user is not None
        summaries = self.callbacks.get(request.query.get("token", ""))
        if summaries is None:
            return web.json_response({"errorMessage": "unknown or expired callback"}, status=404)
        return web.json_response([s for s in summaries if s.get("userId") == user.id])

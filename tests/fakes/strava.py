"""A local Strava: OAuth (authorize, token with refresh rotation, deauthorize), the activity, stream
and athlete-activities endpoints, push subscriptions, and Strava's rate-limit headers.

Payload shapes follow Strava's API documentation (see /work/shared/reference/vendors.md). Tokens
behave like Strava's: access tokens expire (`expire_tokens`), a refresh returns a NEW refresh token
and kills the old one at once, and a deauthorized athlete's refresh token is refused (400).
Every API response carries `X-RateLimit-*` and `X-ReadRateLimit-*` headers for the current
15-minute/daily usage; usage above the limit answers 429. `fail_next(...)` (FakeServer) scripts
errors for the next API requests; `delay_s` makes every API answer slow.

    fake = await FakeStrava().start()
    athlete = fake.add_athlete()
    activity = fake.add_activity(athlete, sport_type="Run", samples=600)
    code = fake.authorize(athlete)             # what the consent screen would hand our callback
    tokens = fake.issue_tokens(athlete)        # or: tokens for seeding an account directly
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.server import FakeServer
from trainer import clock

CLIENT_ID = "4242"
CLIENT_SECRET = "fake-strava-client-secret"
VERIFY_TOKEN = "fake-strava-verify-token"
ACCESS_TTL_S = 6 * 3600
RATE_HEADERS = web.RequestKey("rate_headers", dict)  # the usage headers every API answer carries
_AUTH_ERROR = {
    "message": "Authorization Error",
    "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
}
_NOT_FOUND = {"message": "Record Not Found", "errors": [{"resource": "Activity", "field": "id", "code": "not found"}]}
_BAD_REFRESH = {
    "message": "Bad Request",
    "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
}


@dataclass
class Grant:
    athlete_id: int
    scope: str
    expires_at: int


@dataclass
class Usage:
    """Requests counted like Strava does: per 15-minute window and per UTC day."""

    limit: tuple[int, int] = (200, 2000)
    read_limit: tuple[int, int] = (100, 1000)
    short: int = 0
    daily: int = 0
    read_short: int = 0
    read_daily: int = 0
    window: int = -1

    def count(self, read: bool) -> None:
        window = int(clock.now_s()) // 900
        if window != self.window:
            self.window, self.short, self.read_short = window, 0, 0
        self.short += 1
        self.daily += 1
        if read:
            self.read_short += 1
            self.read_daily += 1

    def exceeded(self) -> bool:
        return (
            self.short > self.limit[0]
            or self.daily > self.limit[1]
            or self.read_short > self.read_limit[0]
            or self.read_daily > self.read_limit[1]
        )

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": f"{self.limit[0]},{self.limit[1]}",
            "X-RateLimit-Usage": f"{self.short},{self.daily}",
            "X-ReadRateLimit-Limit": f"{self.read_limit[0]},{self.read_limit[1]}",
            "X-ReadRateLimit-Usage": f"{self.read_short},{self.read_daily}",
        }


@dataclass
class Athlete:
    id: int
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)
    streams: dict[int, dict[str, Any]] = field(default_factory=dict)
    # The key_by_type answer with every stream, serialized once when the activity is added: a real
    # Strava costs our CPU nothing to serialize, and a bench sharing two cores with it should not pay.
    stream_bodies: dict[int, bytes] = field(default_factory=dict)
    authorized: bool = True


class FakeStrava(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.athletes: dict[int, Athlete] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.codes: dict[str, Grant] = {}
        self.subscriptions: dict[int, str] = {}
        self.usage = Usage()
        self.delay_s = 0.0
        self.next_login: int | None = None
        self.granted_scope: str | None = None
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.token_grants: Counter[str] = Counter()  # grant_type -> count
        self.callback_checks: list[dict[str, str]] = []  # what subscription validation GETs answered
        self._ids = itertools.count(11_600_000_001)
        self._athlete_ids = itertools.count(134_815)
        self._sub_ids = itertools.count(120_475)

    # -- settings for the plugin ------------------------------------------------------------------

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        """`[plugins.strava]` pointing at this fake."""
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "verify_token": VERIFY_TOKEN,
            "api_base": f"{self.url}/api/v3",
            "oauth_base": f"{self.url}/oauth",
            **overrides,
        }

    # -- test helpers -----------------------------------------------------------------------------

    def add_athlete(self) -> int:
        athlete_id = next(self._athlete_ids)
        self.athletes[athlete_id] = Athlete(athlete_id)
        return athlete_id

    def add_activity(
        self,
        athlete_id: int,
        *,
        start: datetime | None = None,
        sport_type: str = "Run",
        elapsed_s: int = 3600,
        distance_m: float = 10_000.0,
        samples: int = 0,
        **fields: Any,
    ) -> dict[str, Any]:
        """A detailed activity as GET /activities/{id} returns it; `samples` > 0 adds 1 Hz streams."""
        activity_id = next(self._ids)
        start = start or datetime(2024, 5, 19, 6, 30, tzinfo=UTC)
        legacy = {"TrailRun": "Run", "VirtualRun": "Run", "GravelRide": "Ride", "MountainBikeRide": "Ride"}
        data: dict[str, Any] = {
            "resource_state": 3,
            "id": activity_id,
            "external_id": f"garmin_push_{activity_id}",
            "athlete": {"id": athlete_id, "resource_state": 1},
            "name": "Morning Run" if "Run" in sport_type else f"Morning {sport_type}",
            "sport_type": sport_type,
            "type": legacy.get(sport_type, sport_type),
            "start_date": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "start_date_local": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timezone": "(GMT+01:00) Europe/Ljubljana",
            "utc_offset": 7200.0,
            "distance": distance_m,
            "moving_time": elapsed_s - 60,
            "elapsed_time": elapsed_s,
            "total_elevation_gain": 87.4,
            "average_speed": distance_m / (elapsed_s - 60),
            "max_speed": 4.9,
            "has_heartrate": True,
            "average_heartrate": 148.3,
            "max_heartrate": 171.0,
            "average_cadence": 84.2,
            "kilojoules": None,
            "calories": 712.0,
            "trainer": False,
            "commute": False,
            "manual": False,
            "private": False,
            "device_name": "Garmin Forerunner 965",
            "map": {
                "id": f"a{activity_id}",
                "summary_polyline": "ki{eFvqfiVqAWQIGEEKAYJgBVqDJ{BHa@",
                "resource_state": 3,
            },
            **fields,
        }
        athlete = self.athletes[athlete_id]
        athlete.activities[activity_id] = data
        if samples:
            athlete.streams[activity_id] = make_streams(samples, ride="Ride" in sport_type)
            athlete.stream_bodies[activity_id] = json.dumps(athlete.streams[activity_id]).encode()
        return data

    def delete_activity(self, athlete_id: int, activity_id: int) -> None:
        self.athletes[athlete_id].activities.pop(activity_id, None)
        self.athletes[athlete_id].streams.pop(activity_id, None)
        self.athletes[athlete_id].stream_bodies.pop(activity_id, None)

    def authorize(self, athlete_id: int, scope: str = "read,activity:read_all") -> str:
        """The code Strava's consent screen would send to our callback (with `scope` granted)."""
        code = secrets.token_hex(20)
        self.codes[code] = Grant(athlete_id, scope, 0)
        return code

    def issue_tokens(
        self, athlete_id: int, *, expires_in: int = ACCESS_TTL_S, scope: str = "read,activity:read_all"
    ) -> dict[str, Any]:
        """A fresh token pair, in the token endpoint's response shape."""
        expires_at = int(clock.now_s()) + expires_in
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        self.access[access] = Grant(athlete_id, scope, expires_at)
        self.refresh[refresh] = Grant(athlete_id, scope, expires_at)
        return {
            "token_type": "Bearer",
            "expires_at": expires_at,
            "expires_in": expires_in,
            "refresh_token": refresh,
            "access_token": access,
            "athlete": {"id": athlete_id, "username": f"athlete{athlete_id}", "resource_state": 2},
        }

    def expire_tokens(self) -> None:
        """Every access token now gets 401 (Strava's 6 h expiry, without waiting)."""
        for grant in self.access.values():
            grant.expires_at = 0

    def revoke(self, athlete_id: int) -> None:
        """The athlete removes the app in Strava's settings: tokens and refresh tokens die."""
        self.athletes[athlete_id].authorized = False
        self.access = {k: g for k, g in self.access.items() if g.athlete_id != athlete_id}
        self.refresh = {k: g for k, g in self.refresh.items() if g.athlete_id != athlete_id}

    def event(
        self, aspect_type: str, object_id: int, owner_id: int, *, object_type: str = "activity", **updates: str
    ) -> dict[str, Any]:
        """A webhook event body as Strava POSTs it for our first subscription."""
        return {
            "aspect_type": aspect_type,
            "event_time": int(clock.now_s()),
            "object_id": object_id,
            "object_type": object_type,
            "owner_id": owner_id,
            "subscription_id": next(iter(self.subscriptions), 120_475),
            "updates": updates,
        }

    def api_requests(self, prefix: str = "/api/v3/") -> list[tuple[str, str]]:
        return [r for r in self.requests if r[1].startswith(prefix)]

    # -- the app ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log])
        app.router.add_get("/oauth/authorize", self._authorize)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/oauth/deauthorize", self._deauthorize)
        app.router.add_get("/api/v3/activities/{id}", self._activity)
        app.router.add_get("/api/v3/activities/{id}/streams", self._streams)
        app.router.add_get("/api/v3/athlete/activities", self._athlete_activities)
        app.router.add_post("/api/v3/push_subscriptions", self._subscribe)
        app.router.add_get("/api/v3/push_subscriptions", self._subscriptions)
        app.router.add_delete("/api/v3/push_subscriptions/{id}", self._unsubscribe)
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    async def _authorize(self, request: web.Request) -> web.Response:
        """The consent screen, auto-approved for `next_login` (default: the newest athlete), granting
        `granted_scope` (default: what was asked; set it to simulate an unticked box)."""
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.json_response({"message": "Bad Request"}, status=400)
        athlete_id = self.next_login if self.next_login is not None else max(self.athletes)
        scope = self.granted_scope if self.granted_scope is not None else q.get("scope", "read")
        code = self.authorize(athlete_id, scope)
        query = urlencode({"state": q.get("state", ""), "code": code, "scope": scope})
        raise web.HTTPFound(f"{q['redirect_uri']}?{query}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response(
                {"message": "Bad Request", "errors": [{"field": "client_id", "code": "invalid"}]}, status=400
            )
        grant_type = str(form.get("grant_type"))
        self.token_grants[grant_type] += 1
        if grant_type == "authorization_code":
            grant = self.codes.pop(str(form.get("code")), None)
            if grant is None:
                return web.json_response(
                    {"message": "Bad Request", "errors": [{"field": "code", "code": "invalid"}]}, status=400
                )
            return web.json_response(self.issue_tokens(grant.athlete_id, scope=grant.scope))
        if grant_type == "refresh_token":
            grant = self.refresh.pop(str(form.get("refresh_token")), None)  # rotation: the old one dies now
            if grant is None or not self.athletes[grant.athlete_id].authorized:
                return web.json_response(_BAD_REFRESH, status=400)
            body = self.issue_tokens(grant.athlete_id, scope=grant.scope)
            body.pop("athlete")
            return web.json_response(body)
        return web.json_response({"message": "Bad Request"}, status=400)

    async def _deauthorize(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.access.get(str(form.get("access_token")))
        if grant is None:
            return web.json_response(_AUTH_ERROR, status=401)
        self.revoke(grant.athlete_id)
        return web.json_response({"access_token": form.get("access_token")})

    async def _api(self, request: web.Request, *, read: bool = True) -> tuple[Athlete | None, web.Response | None]:
        """Auth, scripted failures, slowness and rate limits shared by the API endpoints."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.usage.count(read)
        headers = self.usage.headers()
        scripted = self.scripted_answer()
        if scripted is not None:
            scripted.headers.update({k: v for k, v in headers.items() if k not in scripted.headers})
            return None, scripted
        if self.usage.exceeded():
            return None, web.json_response({"message": "Rate Limit Exceeded"}, status=429, headers=headers)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self.access.get(token) if scheme == "Bearer" else None
        if grant is None or grant.expires_at <= clock.now_s():
            return None, web.json_response(_AUTH_ERROR, status=401, headers=headers)
        request[RATE_HEADERS] = headers
        return self.athletes[grant.athlete_id], None

    async def _activity(self, request: web.Request) -> web.Response:
        athlete, refused = await self._api(request)
        if refused is not None:
            return refused
        assert athlete is not None
        data = athlete.activities.get(int(request.match_info["id"]))
        if data is None:
            return web.json_response(_NOT_FOUND, status=404, headers=request[RATE_HEADERS])
        return web.json_response(data, headers=request[RATE_HEADERS])

    async def _streams(self, request: web.Request) -> web.Response:
        athlete, refused = await self._api(request)
        if refused is not None:
            return refused
        assert athlete is not None
        activity_id = int(request.match_info["id"])
        if activity_id not in athlete.activities:
            return web.json_response(_NOT_FOUND, status=404, headers=request[RATE_HEADERS])
        streams = athlete.streams.get(activity_id, {})
        keys = request.query.get("keys", "").split(",")
        wanted = {k: v for k, v in streams.items() if k in keys or k in ("distance",)}
        body = athlete.stream_bodies.get(activity_id)
        if request.query.get("key_by_type") == "true" and body is not None and len(wanted) == len(streams):
            return web.Response(
                body=body, content_type="application/json", charset="utf-8", headers=request[RATE_HEADERS]
            )
        if request.query.get("key_by_type") == "true":
            return web.json_response(wanted, headers=request[RATE_HEADERS])
        return web.json_response([{"type": k, **v} for k, v in wanted.items()], headers=request[RATE_HEADERS])

    async def _athlete_activities(self, request: web.Request) -> web.Response:
        athlete, refused = await self._api(request)
        if refused is not None:
            return refused
        assert athlete is not None
        q = request.query
        before = int(q.get("before", 1 << 40))
        after = int(q.get("after", 0))
        per_page = min(int(q.get("per_page", 30)), 200)
        page = int(q.get("page", 1))

        def start(a: dict[str, Any]) -> int:
            return int(datetime.fromisoformat(a["start_date"].replace("Z", "+00:00")).timestamp())

        chosen = sorted((a for a in athlete.activities.values() if after < start(a) < before), key=start, reverse=True)
        summaries = [
            {k: v for k, v in a.items() if k not in ("calories", "device_name")} | {"resource_state": 2} for a in chosen
        ]
        return web.json_response(summaries[(page - 1) * per_page : page * per_page], headers=request[RATE_HEADERS])

    async def _subscribe(self, request: web.Request) -> web.Response:
        """Like Strava: validate the callback with a GET (2 s budget) while this request is open."""
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"message": "Authorization Error"}, status=401)
        if self.subscriptions:
            return web.json_response(
                {
                    "message": "Bad Request",
                    "errors": [{"resource": "PushSubscription", "field": "", "code": "already exists"}],
                },
                status=400,
            )
        callback = str(form.get("callback_url"))
        challenge = secrets.token_hex(8)
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": str(form.get("verify_token")),
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(callback, params=params) as response,
            ):
                body = await response.json(content_type=None) if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            body = None
        self.callback_checks.append({"callback_url": callback, "answered": str(body)})
        if not isinstance(body, dict) or body.get("hub.challenge") != challenge:
            error = {
                "resource": "PushSubscription",
                "field": "callback url",
                "code": "GET to callback URL does not return 200",
            }
            return web.json_response({"message": "Bad Request", "errors": [error]}, status=400)
        sub_id = next(self._sub_ids)
        self.subscriptions[sub_id] = callback
        return web.json_response({"id": sub_id}, status=201)

    async def _subscriptions(self, request: web.Request) -> web.Response:
        if request.query.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"message": "Authorization Error"}, status=401)
        return web.json_response(
            [
                {"id": i, "resource_state": 2, "application_id": int(CLIENT_ID), "callback_url": url}
                for i, url in self.subscriptions.items()
            ]
        )

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        if request.query.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"message": "Authorization Error"}, status=401)
        if self.subscriptions.pop(int(request.match_info["id"]), None) is None:
            return web.json_response({"message": "Resource Not Found"}, status=404)
        return web.Response(status=204)


def make_streams(n: int, *, ride: bool = False) -> dict[str, dict[str, Any]]:
    """Plausible 1 Hz streams in Strava's key_by_type shape (all of equal length)."""
    time = list(range(n))
    speed = [round(3.1 + 0.4 * math.sin(i / 60), 3) for i in range(n)]
    distance = list(itertools.accumulate(speed))
    series: dict[str, list[Any]] = {
        "time": time,
        "distance": [round(d, 1) for d in distance],
        "latlng": [[round(46.05 + i * 2e-5, 6), round(14.50 + i * 1e-5, 6)] for i in range(n)],
        "altitude": [round(295 + 10 * math.sin(i / 300), 1) for i in range(n)],
        "velocity_smooth": speed,
        "heartrate": [int(120 + 30 * (1 - math.exp(-i / 300))) for i in range(n)],
        "cadence": [88 if ride else 86] * n,
        "temp": [21] * n,
    }
    if ride:
        series["watts"] = [int(180 + 40 * math.sin(i / 45)) for i in range(n)]
    return {
        k: {"data": v, "series_type": "distance", "original_size": n, "resolution": "high"} for k, v in series.items()
    }

"""A local Expo push service: /--/api/v2/push/send and /--/api/v2/push/getReceipts.

Answers in Expo's shapes: one ticket per message (`{"status": "ok", "id": ...}` or an error with
`details.error`), request-level errors as `{"errors": [{"code": ...}]}`, receipts keyed by ticket id.
Tests decide which tokens are unregistered (at send time or only in the receipt) and can queue
HTTP failures (429 with Retry-After, 5xx) for the next requests.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

MAX_MESSAGES = 100
_TOKEN = re.compile(r"^Expo(nent)?PushToken\[[^\]]+\]$")


class FakeExpo(FakeServer):
    def __init__(self, *, access_token: str | None = None) -> None:
        super().__init__()
        self.access_token = access_token
        self.send_requests: list[list[dict[str, Any]]] = []  # each accepted request's messages
        self.receipt_requests: list[list[str]] = []
        self.unregistered: set[str] = set()  # tokens whose ticket says DeviceNotRegistered
        self.gone_later: set[str] = set()  # tokens accepted now whose receipt says DeviceNotRegistered
        self.rate_limited_tokens: set[str] = set()  # tokens whose ticket says MessageRateExceeded
        self.receipts_ready = True
        self.delay_s = 0.0  # answer send requests this late (a provider that hangs)
        self._receipts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message of every accepted send request, in order."""
        return [m for request in self.send_requests for m in request]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/--/api/v2/push/send", self._send)
        app.router.add_post("/--/api/v2/push/getReceipts", self._get_receipts)
        return app

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.access_token and request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "The bearer token is invalid."}]}, status=401
            )
        return self.scripted_answer()

    async def _send(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        refused = self._refused(request)
        if refused is not None:
            return refused
        payload = await request.json()
        messages = payload if isinstance(payload, list) else [payload]
        if len(messages) > MAX_MESSAGES:
            return web.json_response(
                {
                    "errors": [
                        {"code": "PUSH_TOO_MANY_NOTIFICATIONS", "message": "You are trying to send more than 100."}
                    ]
                },
                status=400,
            )
        if not all(isinstance(m, dict) and isinstance(m.get("to"), str) for m in messages):
            return web.json_response(
                {"errors": [{"code": "VALIDATION_ERROR", "message": '"to" is required'}]}, status=400
            )
        self.send_requests.append(messages)
        return web.json_response({"data": [self._ticket(m["to"]) for m in messages]})

    def _ticket(self, token: str) -> dict[str, Any]:
        if token in self.unregistered or not _TOKEN.match(token):
            return _error(token, "DeviceNotRegistered")
        if token in self.rate_limited_tokens:
            return _error(token, "MessageRateExceeded")
        ticket = f"ticket-{next(self._ids):04d}"
        gone = token in self.gone_later
        self._receipts[ticket] = _error(token, "DeviceNotRegistered") if gone else {"status": "ok"}
        return {"status": "ok", "id": ticket}

    async def _get_receipts(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        ids = (await request.json())["ids"]
        self.receipt_requests.append(ids)
        if not self.receipts_ready:
            return web.json_response({"data": {}})
        return web.json_response({"data": {i: self._receipts[i] for i in ids if i in self._receipts}})


def _error(token: str, code: str) -> dict[str, Any]:
    # Expo's real messages quote the token; the plugin must not pass them on.
    return {
        "status": "error",
        "message": f'"{token}" is not a registered push notification recipient',
        "details": {"error": code},
    }

"""Expo push notifications: the path to the React Native app on iOS and Android.

    [plugins.expo]
    base_url = "https://exp.host"      # a proxy or a test server
    access_token = "..."               # only with Expo's "enhanced push security" turned on

Messages go out in requests of at most 100 (Expo's limit). Each accepted message gets a ticket;
about 15 minutes later its receipt says whether Apple or Google took it. A device the app was
removed from shows up as DeviceNotRegistered, in the ticket or in the receipt, and the core stops
sending to it. Expo's error messages quote the push token, so only the error code is passed on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr
from trainer_plugins.notifiers.common import TRANSIENT_ERRORS, BaseURLSettings, by_status, host_of

from trainer.notify.capabilities import BatchNotifier, ReceiptChecker, TargetChecker, Ticketed
from trainer.plugins import Delivery, Notification, Notifier, Plugin, Target

SEND_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
MAX_MESSAGES_PER_REQUEST = 100
MAX_RECEIPTS_PER_REQUEST = 1000
_TOKEN = re.compile(r"^Expo(nent)?PushToken\[[^\[\]\s]{1,200}\]$")

# Expo's per-message error codes (ticket and receipt `details.error`).
_GONE = {"DeviceNotRegistered"}
_LATER = {"MessageRateExceeded"}


class ExpoSettings(BaseURLSettings):
    base_url: str = "https://exp.host"
    access_token: SecretStr | None = None
    sound: str | None = Field("default", description="iOS sound; null for silent notifications")
    priority: Literal["default", "normal", "high"] = "high"
    channel_id: str | None = Field(None, description="Android notification channel the app created")


class ExpoPlugin(Plugin, Notifier, BatchNotifier, ReceiptChecker, TargetChecker):
    name = "expo"
    provider: ClassVar[str] = "expo"
    version = "1"
    description = "Push notifications to the mobile app through Expo's push service"
    settings_model = ExpoSettings
    settings: ExpoSettings

    def allowed_hosts(self) -> set[str]:
        return {host_of(self.settings.base_url)}

    def check_target(self, address: str) -> None:
        if not _TOKEN.match(address):
            raise ValueError("not an Expo push token (expected ExponentPushToken[...])")

    async def deliver(self, target: Target, notification: Notification) -> Delivery:
        return (await self.deliver_many([(target, notification)]))[0]

    async def deliver_many(self, items: Sequence[tuple[Target, Notification]]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(items)
        sendable: list[tuple[int, dict[str, Any]]] = []
        for index, (target, notification) in enumerate(items):
            if _TOKEN.match(target.address):
                sendable.append((index, self._message(target, notification)))
            else:
                results[index] = Delivery("invalid_target", "not an Expo push token")
        for start in range(0, len(sendable), MAX_MESSAGES_PER_REQUEST):
            chunk = sendable[start : start + MAX_MESSAGES_PER_REQUEST]
            for (index, _), outcome in zip(chunk, await self._send([m for _, m in chunk]), strict=True):
                results[index] = outcome
        return [r if r is not None else Delivery("failed", "not sent") for r in results]

    def _message(self, target: Target, notification: Notification) -> dict[str, Any]:
        message: dict[str, Any] = {
            "to": target.address,
            "title": notification.title,
            "body": notification.body,
            "data": {**notification.data, "category": notification.category},
            "priority": self.settings.priority,
        }
        if self.settings.sound:
            message["sound"] = self.settings.sound
        if self.settings.channel_id:
            message["channelId"] = self.settings.channel_id
        return message

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        if self.settings.access_token is not None:
            headers["Authorization"] = "Bearer " + self.settings.access_token.get_secret_value()
        return headers

    async def _post(self, path: str, payload: Any) -> tuple[int, str | None, Any]:
        """(status, Retry-After, JSON body or None when it is not JSON)."""
        http = self.host.http(self)
        async with http.request("POST", self.settings.base_url + path, json=payload, headers=self._headers()) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return resp.status, resp.headers.get("Retry-After"), body

    async def _send(self, messages: list[dict[str, Any]]) -> list[Delivery]:
        try:
            status, retry_after, body = await self._post(SEND_PATH, messages)
        except TRANSIENT_ERRORS as exc:
            return [Delivery("retry", f"expo unreachable: {type(exc).__name__}")] * len(messages)
        verdict = by_status(status, "expo", retry_after)
        if verdict is not None:
            if verdict.status == "failed":
                verdict = Delivery("failed", f"{verdict.detail}: {_request_error(body)}")
            return [verdict] * len(messages)
        tickets = body.get("data") if isinstance(body, dict) else None
        if not isinstance(tickets, list) or len(tickets) != len(messages):
            return [Delivery("retry", "expo answered without one ticket per message")] * len(messages)
        return [_outcome(ticket, sent=True) for ticket in tickets]

    async def check_receipts(self, tickets: Sequence[str]) -> dict[str, Delivery]:
        answers: dict[str, Delivery] = {}
        for start in range(0, len(tickets), MAX_RECEIPTS_PER_REQUEST):
            ids = list(tickets[start : start + MAX_RECEIPTS_PER_REQUEST])
            try:
                status, _, body = await self._post(RECEIPTS_PATH, {"ids": ids})
            except TRANSIENT_ERRORS:
                continue  # unanswered tickets are simply asked again later
            receipts = body.get("data") if status == 200 and isinstance(body, dict) else None
            if isinstance(receipts, dict):
                for ticket in ids:
                    if isinstance(receipts.get(ticket), dict):
                        answers[ticket] = _outcome(receipts[ticket], sent=False)
        return answers


def _outcome(answer: Any, *, sent: bool) -> Delivery:
    """A ticket (sent=True: accepted for delivery) or a receipt (delivered) as a Delivery."""
    if not isinstance(answer, dict):
        return Delivery("retry", "expo answered with an unreadable ticket")
    if answer.get("status") == "ok":
        ticket = answer.get("id")
        if sent and isinstance(ticket, str) and ticket:
            return Ticketed("sent", "accepted by expo", ticket=ticket)
        return Delivery("sent", "accepted by expo" if sent else "delivered")
    details = answer.get("details")
    code = details.get("error") if isinstance(details, dict) else None
    code = code if isinstance(code, str) and code.isidentifier() else "unknown error"
    if code in _GONE:
        return Delivery("invalid_target", code)
    if code in _LATER:
        return Delivery("retry", code)
    return Delivery("failed", f"expo: {code}")


def _request_error(body: Any) -> str:
    """The code of a request-level error (`{"errors": [{"code": ...}]}`), never its message."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        if isinstance(code, str) and code.replace("_", "").isalnum():
            return code
    return "no error code"

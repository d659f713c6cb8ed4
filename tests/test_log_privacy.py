"""No email, token, password or health value reaches the logs, whatever the level or format.

The whole account-and-sync flow runs with every logger at DEBUG; each record is rendered as the JSON
formatter renders it (message, extra fields, exception text), so a secret passed as `extra` or in
an exception message is caught too.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import PASSWORD, call, data, login, register
from trainer import logs

EMAIL = "private.person@example.org"
NEW_PASSWORD = "another long password 42"
HEALTH_NOTE = "left knee pain after the long run"
RESTING_HR = 43.25
HRV = 97.75


class Capture:
    """The process's real log configuration (`trainer serve` with log_level = "debug", log_format = "json"),
    its output written to memory."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


@pytest.fixture
def captured() -> Iterator[Capture]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    capture = Capture()
    logs.configure("debug", "json")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(capture.stream)
    try:
        yield capture
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


async def test_account_and_sync_flow_logs_no_personal_data(client: TestClient, captured: Capture) -> None:
    auth = await register(client, EMAIL)
    session = await login(client, EMAIL, deviceId="phone-1")
    status, body = await call(client, "auth.login", {"email": EMAIL, "password": "wrong password!"})
    assert status == 401  # failed logins are logged; what they log must not name the account
    status, body = await call(client, "auth.refresh", {"refreshToken": session["refreshToken"]})
    assert status == 200
    refreshed = data(body)
    status, body = await call(client, "auth.refresh", {"refreshToken": session["refreshToken"]})
    assert status == 401  # reuse detection logs a warning
    status, body = await call(
        client,
        "user.updateSettings",
        {"hrMax": 191, "hrRest": 43, "displayName": "Private Person"},
        token=auth["accessToken"],
    )
    assert status == 200, body

    token = auth["accessToken"]
    status, body = await call(client, "sync.pullChanges", {"lastPulledAt": None}, token=token, method="GET")
    assert status == 200, body
    pulled_at = data(body)["timestamp"]
    day = {
        "id": "daily-1",
        "day": "2026-05-01",
        "resting_hr": RESTING_HR,
        "hrv_rmssd_ms": HRV,
        "sleep_s": 27000,
        "notes": HEALTH_NOTE,
    }
    changes = {"daily_metrics": {"created": [day], "updated": [], "deleted": []}}
    status, body = await call(client, "sync.pushChanges", {"changes": changes, "lastPulledAt": pulled_at}, token=token)
    assert status == 200, body
    status, body = await call(client, "sync.pullChanges", {"lastPulledAt": None}, token=token, method="GET")
    assert status == 200 and HEALTH_NOTE in json.dumps(body)  # the data went through the server
    status, body = await call(
        client, "auth.changePassword", {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}, token=token
    )
    assert status == 200, body

    assert logging.getLogger("trainer").getEffectiveLevel() == logging.DEBUG
    assert any("/trpc/sync.pushChanges" in line for line in captured.lines)  # access log lines are in
    text = "\n".join(captured.lines)
    secrets = {
        "email": EMAIL,
        "email local part": "private.person",
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "wrong password": "wrong password!",
        "access token": auth["accessToken"],
        "refreshed access token": refreshed["accessToken"],
        "refresh token": session["refreshToken"],
        "new refresh token": refreshed["refreshToken"],
        "health note": HEALTH_NOTE,
        "resting heart rate": str(RESTING_HR),
        "HRV": str(HRV),
        "display name": "Private Person",
    }
    leaked = {what: value for what, value in secrets.items() if value in text}
    assert not leaked, f"in the logs: {sorted(leaked)}"

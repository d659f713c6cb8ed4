"""The Expo notifier's reading of Expo's answers, against the fake (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.expo import FakeExpo
from tests.fakes.ntfy import FakeNtfy
from tests.notify.conftest import make_registry
from trainer.notify.capabilities import Ticketed
from trainer.plugins import Notification, Target

GOOD = "ExponentPushToken[good-good-good-good-00]"
HELLO = Notification("Hi", "there", "plan_adapted", {"notificationId": "n1"})


def expo_target(token: str = GOOD) -> Target:
    return Target("expo", token)


async def plugin_for(tmp_path: Path, expo: FakeExpo, ntfy: FakeNtfy, **expo_settings: object):
    settings = {"base_url": expo_settings.get("base_url") or expo.url, **expo_settings}
    config = {"expo": settings, "ntfy": {"base_url": ntfy.url}, "webhook": {}}
    async for registry in make_registry(tmp_path, config):
        yield registry.plugins["expo"]


@pytest.fixture
async def plugin(tmp_path: Path, expo: FakeExpo, ntfy: FakeNtfy):
    async for found in plugin_for(tmp_path, expo, ntfy):
        yield found


async def test_the_message_has_expos_shape(plugin, expo: FakeExpo):
    [result] = await plugin.deliver_many([(expo_target(), HELLO)])
    assert isinstance(result, Ticketed) and result.status == "sent" and result.ticket == "ticket-0001"
    assert expo.messages == [
        {
            "to": GOOD,
            "title": "Hi",
            "body": "there",
            "data": {"notificationId": "n1", "category": "plan_adapted"},
            "priority": "high",
            "sound": "default",
        }
    ]


async def test_malformed_tokens_are_never_sent(plugin, expo: FakeExpo):
    results = await plugin.deliver_many([(expo_target("fcm:abc"), HELLO), (expo_target(), HELLO)])
    assert [r.status for r in results] == ["invalid_target", "sent"]
    assert [m["to"] for m in expo.messages] == [GOOD]


async def test_per_message_errors_map_to_outcomes(plugin, expo: FakeExpo):
    gone, busy = "ExponentPushToken[gone-gone-gone-gone-00]", "ExponentPushToken[busy-busy-busy-busy-00]"
    expo.unregistered.add(gone)
    expo.rate_limited_tokens.add(busy)
    results = await plugin.deliver_many(
        [(expo_target(gone), HELLO), (expo_target(busy), HELLO), (expo_target(), HELLO)]
    )
    assert [(r.status, r.detail) for r in results] == [
        ("invalid_target", "DeviceNotRegistered"),
        ("retry", "MessageRateExceeded"),
        ("sent", "accepted by expo"),
    ]
    assert all(gone not in r.detail for r in results)  # Expo's prose quotes the token; it is not passed on


async def test_request_errors_fail_the_batch_with_the_code_only(plugin, expo: FakeExpo):
    expo.fail_next(400, {"errors": [{"code": "PUSH_TOO_MANY_EXPERIENCE_IDS", "message": f"{GOOD} and others"}]})
    [result] = await plugin.deliver_many([(expo_target(), HELLO)])
    assert (result.status, result.detail) == (
        "failed",
        "expo refused the message (HTTP 400): PUSH_TOO_MANY_EXPERIENCE_IDS",
    )


async def test_unreachable_expo_is_a_retry(tmp_path: Path, expo: FakeExpo, ntfy: FakeNtfy):
    url = expo.url
    await expo.close()
    async for plugin in plugin_for(tmp_path, expo, ntfy, base_url=url):
        [result] = await plugin.deliver_many([(expo_target(), HELLO)])
        assert result.status == "retry" and result.detail.startswith("expo unreachable")


async def test_access_token_is_sent_when_configured(tmp_path: Path, ntfy: FakeNtfy):
    expo = FakeExpo(access_token="expo-secret")
    await expo.start()
    try:
        async for plugin in plugin_for(tmp_path, expo, ntfy, access_token="expo-secret"):
            [result] = await plugin.deliver_many([(expo_target(), HELLO)])
            assert result.status == "sent"
            receipts = await plugin.check_receipts([result.ticket, "ticket-unknown"])
            assert {k: v.status for k, v in receipts.items()} == {result.ticket: "sent"}
        async for plugin in plugin_for(tmp_path, expo, ntfy):  # without the token: refused, no retry storm
            [result] = await plugin.deliver_many([(expo_target(), HELLO)])
            assert (result.status, result.detail) == ("failed", "expo refused the message (HTTP 401): UNAUTHORIZED")
    finally:
        await expo.close()


async def test_only_the_configured_host_is_reachable(plugin):
    assert plugin.allowed_hosts() == {"127.0.0.1"}

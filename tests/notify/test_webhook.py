"""Signed outbound webhooks (Standard Webhooks) to a local receiver, through the runner, on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fakes.expo import FakeExpo
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.server import FakeServer
from tests.notify.conftest import WEBHOOK_SECRET, add_device, make_registry, new_user, notifier_config
from trainer import clock
from trainer.db import Database
from trainer.notify.outbox import enqueue
from trainer.notify.policy import Policy
from trainer.notify.runner import deliver_due
from trainer.plugins import Registry
from trainer.store import devices

T0 = 1_750_000_000.0


class Receiver(FakeServer):
    """Home Assistant's side: records what arrives at /api/webhook/<id>."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[dict[str, str], bytes]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/webhook/{hook}", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        scripted = self.scripted_answer()
        if scripted is not None:
            return scripted
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    fake = Receiver()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def hooks_registry(tmp_path: Path, expo: FakeExpo, ntfy: FakeNtfy, receiver: Receiver) -> AsyncIterator[Registry]:
    config = notifier_config(
        expo, ntfy, webhook={"allowed_urls": [f"{receiver.url}/api/webhook/"], "secret": WEBHOOK_SECRET}
    )
    async for registry in make_registry(tmp_path, config):
        yield registry


def expected_signature(msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


async def plan_changed(db: Database, user_id: str) -> str | None:
    async with db.transaction() as tx:
        return await enqueue(tx, user_id, "plan_adapted", "plan_adapted", {"changed": 1}, "plan:1")


async def test_messages_are_signed_and_keep_their_id_across_retries(
    db: Database, hooks_registry: Registry, receiver: Receiver
):
    receiver.fail_next(503)
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, f"{receiver.url}/api/webhook/alice-ha", provider="webhook")
        nid = await plan_changed(db, alice)
        assert (await deliver_due(db, hooks_registry, policy=Policy(jitter=0.0))).retried == 1
    with clock.frozen(T0 + 30):
        assert (await deliver_due(db, hooks_registry)).sent == 1

    [(headers, body)] = receiver.received
    assert headers["webhook-id"] == f"msg_{nid}"
    assert headers["webhook-timestamp"] == str(int(T0 + 30))  # signed afresh when retried
    assert headers["webhook-signature"] == expected_signature(headers["webhook-id"], headers["webhook-timestamp"], body)
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["type"] == "notification.plan_adapted"
    assert doc["timestamp"] == "2025-06-15T15:07:10Z"
    assert (doc["data"]["title"], doc["data"]["body"]) == ("Plan Adapted", "1 workout changed")


async def test_gone_receivers_are_deactivated(db: Database, hooks_registry: Registry, receiver: Receiver):
    receiver.fail_next(410)
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, f"{receiver.url}/api/webhook/alice-ha", provider="webhook")
    await plan_changed(db, alice)
    assert (await deliver_due(db, hooks_registry)).invalid_targets == 1
    [device] = await devices.list_for_user(db, alice)
    assert (device.active, device.inactive_reason) == (False, "receiver answered 410 Gone")


async def test_urls_outside_the_allowed_prefixes_are_never_called(
    db: Database, hooks_registry: Registry, receiver: Receiver
):
    plugin = hooks_registry.plugins["webhook"]
    allowed = f"{receiver.url}/api/webhook/alice"
    plugin.check_target(allowed)
    for address in (
        f"{receiver.url}/api/webhooks-admin",
        f"{receiver.url}/api/webhook/../../admin",
        f"{receiver.url}/api/webhook/%2e%2e/admin",
        receiver.url.replace("127.0.0.1", "localhost") + "/api/webhook/x",
        "http://169.254.169.254/api/webhook/x",
        "file:///etc/passwd",
    ):
        with pytest.raises(ValueError):
            plugin.check_target(address)
    alice = await new_user(db, "alice@example.com")
    # Registered before the operator narrowed the list: refused at delivery, and the device stops.
    await add_device(db, alice, f"{receiver.url}/api/webhook/../../admin", provider="webhook")
    await plan_changed(db, alice)
    assert (await deliver_due(db, hooks_registry)).invalid_targets == 1
    assert receiver.received == []

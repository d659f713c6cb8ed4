"""ntfy delivery through the runner and the fake ntfy server, on both databases."""

from __future__ import annotations

from tests.fakes.ntfy import FakeNtfy
from tests.notify.conftest import add_device, new_user
from trainer import clock
from trainer.db import Database
from trainer.notify import sealing
from trainer.notify.outbox import enqueue
from trainer.notify.policy import Policy
from trainer.notify.runner import deliver_due
from trainer.plugins import Registry

T0 = 1_750_000_000.0


async def lost(db: Database, user_id: str, vendor: str, key: str) -> None:
    async with db.transaction() as tx:
        await enqueue(tx, user_id, "connection_lost", "vendor_connection_lost", {"vendor": vendor}, key)


async def test_publishes_title_priority_and_tags_to_the_topic(db: Database, registry: Registry, ntfy: FakeNtfy):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, "alice-training", provider="ntfy")
    await lost(db, alice, "Strava", "lost:1")
    assert (await deliver_due(db, registry)).sent == 1
    [published] = ntfy.published
    assert published.topic == "alice-training"
    assert published.title == "Strava Disconnected"
    assert published.message == "Reconnect Strava in the app to keep your activities syncing."
    assert (published.priority, published.tags, published.authorization) == ("4", "electric_plug", None)


async def test_non_ascii_titles_arrive_intact(db: Database, registry: Registry, ntfy: FakeNtfy):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, "alice-training", provider="ntfy")
    await lost(db, alice, "Zwïft Ünïted", "lost:1")
    await deliver_due(db, registry)
    assert ntfy.published[0].title == "Zwïft Ünïted Disconnected"


async def test_a_devices_own_token_opens_a_protected_topic(db: Database, registry: Registry, ntfy: FakeNtfy):
    ntfy.protected["private-topic"] = "tk_alice"
    alice = await new_user(db, "alice@example.com")
    device = await add_device(db, alice, "private-topic", provider="ntfy")
    key = sealing.key_for(registry.plugins["ntfy"])
    sealed = sealing.seal(key, "tk_alice", bound_to="ntfy:private-topic")
    await db.execute("UPDATE devices SET secret_sealed = $2 WHERE id = $1", device, sealed)
    await lost(db, alice, "Strava", "lost:1")
    assert (await deliver_due(db, registry)).sent == 1
    assert ntfy.published[0].authorization == "Bearer tk_alice"


async def test_a_refused_topic_fails_without_retrying(db: Database, registry: Registry, ntfy: FakeNtfy):
    ntfy.protected["private-topic"] = "tk_alice"
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, "private-topic", provider="ntfy")
    await lost(db, alice, "Strava", "lost:1")
    report = await deliver_due(db, registry)
    assert (report.failed, report.retried, report.next_due) == (1, 0, None)
    reason = await db.fetchval("SELECT reason FROM notifications")
    assert reason == "ntfy refused the message (HTTP 403)"
    assert [d for d in await db.fetch("SELECT active FROM devices")] == [{"active": True}]  # not the device's fault


async def test_throttling_is_retried(db: Database, registry: Registry, ntfy: FakeNtfy):
    ntfy.fail_next(429, {"code": 42901, "http": 429, "error": "limit reached"}, {"Retry-After": "10"})
    ntfy.fail_next(503)
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, "alice-training", provider="ntfy")
        await lost(db, alice, "Strava", "lost:1")
        first = await deliver_due(db, registry, policy=Policy(jitter=0.0))
    assert first.retried == 1 and first.next_due == int((T0 + 30) * 1000)  # backoff base beats Retry-After 10
    with clock.frozen(T0 + 30):
        second = await deliver_due(db, registry, policy=Policy(jitter=0.0))
    assert second.retried == 1 and second.next_due == int((T0 + 30 + 60) * 1000)
    with clock.frozen(T0 + 90):
        assert (await deliver_due(db, registry)).sent == 1
    assert len(ntfy.published) == 1

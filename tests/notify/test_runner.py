"""The delivery runner against the fake Expo server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.fakes.expo import FakeExpo
from tests.notify.conftest import add_device, new_user
from trainer import clock
from trainer.db import Database, create_database
from trainer.notify import deliveries
from trainer.notify.outbox import claim_due, enqueue
from trainer.notify.policy import Policy
from trainer.notify.runner import deliver_due
from trainer.plugins import Registry
from trainer.store import devices

TOKEN_A = "ExponentPushToken[aaaaaaaaaaaaaaaaaaaaaa]"
TOKEN_B = "ExponentPushToken[bbbbbbbbbbbbbbbbbbbbbb]"
NO_JITTER = Policy(jitter=0.0)
T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC, 17:06:40 in Berlin


def local(text: str, zone: str = "Europe/Berlin") -> float:
    """Seconds since the epoch of a local wall-clock time such as "2025-06-15 23:30"."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


async def analyzed(db: Database, user_id: str, key: str = "act-1", **params: object) -> str | None:
    values = {"sport": "run", "distance_m": 10234.0, "load": 96.2, "readiness": 74, **params}
    async with db.transaction() as tx:
        return await enqueue(tx, user_id, "activity_analyzed", "activity_analyzed", values, f"analyzed:{key}")


async def status_of(db: Database, notification_id: str) -> str:
    return await db.fetchval("SELECT status FROM notifications WHERE id = $1", notification_id)


async def device_state(db: Database, user_id: str) -> list[tuple[bool, str | None]]:
    """(active, why not) of the user's devices, in token order."""
    found = sorted(await devices.list_for_user(db, user_id), key=lambda d: d.token)
    return [(d.active, d.inactive_reason) for d in found]


async def test_delivers_rendered_text_to_the_users_token_once(db: Database, registry: Registry, expo: FakeExpo):
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        bob = await new_user(db, "bob@example.com")
        await add_device(db, alice, TOKEN_A)
        await add_device(db, bob, TOKEN_B)
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry)
        again = await deliver_due(db, registry)

    assert (report.claimed, report.sent, again.claimed) == (1, 1, 0)
    [message] = expo.messages
    assert message["to"] == TOKEN_A
    assert (message["title"], message["body"]) == ("New Run Analyzed", "10.2 km, load 96, readiness 74")
    assert message["data"]["notificationId"] == nid
    assert message["data"]["params"]["distance_m"] == 10234.0
    assert await status_of(db, nid) == "sent"
    assert report.next_due is None


async def test_text_follows_the_users_units_at_delivery_time(db: Database, registry: Registry, expo: FakeExpo):
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com", units="imperial")
        await add_device(db, alice, TOKEN_A)
        await analyzed(db, alice, sport="trail_run", readiness=None)
        await deliver_due(db, registry)
    assert (expo.messages[0]["title"], expo.messages[0]["body"]) == ("New Trail Run Analyzed", "6.4 mi, load 96")


async def test_outbox_row_commits_or_rolls_back_with_its_cause(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN_A)

    class Crash(Exception):
        pass

    try:
        async with db.transaction() as tx:
            await enqueue(tx, alice, "activity_analyzed", "activity_analyzed", {"sport": "run"}, "analyzed:x")
            raise Crash
    except Crash:
        pass
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0

    first = await analyzed(db, alice, key="x")
    replay = await analyzed(db, alice, key="x")  # the pipeline ran twice for the same activity
    assert first is not None and replay is None
    await deliver_due(db, registry)
    assert len(expo.messages) == 1


async def test_messages_go_out_in_requests_of_at_most_100(db: Database, registry: Registry, expo: FakeExpo):
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        tokens = [f"ExponentPushToken[device{i:02d}xxxxxxxxxxxxxx]" for i in range(20)]
        for token in tokens:
            await add_device(db, alice, token)
        for i in range(8):
            await analyzed(db, alice, key=str(i))
        report = await deliver_due(db, registry)

    assert report.sent == 160
    assert [len(r) for r in expo.send_requests] == [100, 60]
    pairs = Counter((m["data"]["notificationId"], m["to"]) for m in expo.messages)
    assert len(pairs) == 160 and set(pairs.values()) == {1}


async def test_device_not_registered_in_ticket_deactivates_the_device(db: Database, registry: Registry, expo: FakeExpo):
    expo.unregistered.add(TOKEN_B)
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, TOKEN_A)
        await add_device(db, alice, TOKEN_B)
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry)
        await analyzed(db, alice, key="second")
        await deliver_due(db, registry)

    assert (report.sent, report.invalid_targets) == (1, 1)
    assert await status_of(db, nid) == "sent"
    assert await device_state(db, alice) == [(True, None), (False, "DeviceNotRegistered")]
    # The second message reaches only the live device; the message text never carries Expo's prose.
    assert [sorted(m["to"] for m in request) for request in expo.send_requests] == [[TOKEN_A, TOKEN_B], [TOKEN_A]]
    detail = await db.fetchval("SELECT detail FROM deliveries WHERE status = 'invalid_target'")
    assert detail == "DeviceNotRegistered"


async def test_receipts_report_gone_devices_later(db: Database, registry: Registry, expo: FakeExpo):
    expo.gone_later.add(TOKEN_B)
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, TOKEN_A)
        await add_device(db, alice, TOKEN_B)
        await analyzed(db, alice)
        first = await deliver_due(db, registry)
    assert first.sent == 2 and expo.receipt_requests == []  # receipts are not ready for 15 minutes

    expo.receipts_ready = False
    with clock.frozen(T0 + 15 * 60):
        assert (await deliver_due(db, registry)).receipts == 0
    assert await device_state(db, alice) == [(True, None), (True, None)]

    expo.receipts_ready = True
    with clock.frozen(T0 + 30 * 60):
        report = await deliver_due(db, registry)
    assert report.receipts == 2
    assert len(expo.receipt_requests) == 2 and sorted(expo.receipt_requests[-1]) == ["ticket-0001", "ticket-0002"]
    assert await device_state(db, alice) == [(True, None), (False, "DeviceNotRegistered")]
    rows = await db.fetch("SELECT status, ticket FROM deliveries ORDER BY status")
    assert [(r["status"], r["ticket"]) for r in rows] == [("invalid_target", None), ("sent", None)]

    with clock.frozen(T0 + 60 * 60):
        assert (await deliver_due(db, registry)).receipts == 0
    assert len(expo.receipt_requests) == 2  # settled tickets are not asked about again


async def test_throttled_request_is_retried_after_retry_after(db: Database, registry: Registry, expo: FakeExpo):
    expo.fail_next(429, {"errors": [{"code": "TOO_MANY_REQUESTS"}]}, {"Retry-After": "120"})
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, TOKEN_A)
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry, policy=NO_JITTER)
    assert (report.sent, report.retried, report.next_due) == (0, 1, int((T0 + 120) * 1000))
    assert expo.messages == []

    with clock.frozen(T0 + 60):
        assert (await deliver_due(db, registry)).claimed == 0
    with clock.frozen(T0 + 121):
        report = await deliver_due(db, registry)
    assert report.sent == 1
    assert [m["to"] for m in expo.messages] == [TOKEN_A]
    assert await status_of(db, nid) == "sent"
    assert await db.fetchval("SELECT attempts FROM deliveries") == 2


async def test_server_errors_back_off_exponentially_then_give_up(db: Database, registry: Registry, expo: FakeExpo):
    policy = Policy(jitter=0.0, max_attempts=3, backoff_base_s=30)
    expo.fail_next(502, times=5)
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, TOKEN_A)
        nid = await analyzed(db, alice)
    due = []
    at = T0
    for _ in range(3):
        with clock.frozen(at):
            report = await deliver_due(db, registry, policy=policy)
        due.append(report.next_due)
        at = (report.next_due or 0) / 1000
    assert due[:2] == [int((T0 + 30) * 1000), int((T0 + 30 + 60) * 1000)]
    assert due[2] is None and report.failed == 1
    assert await status_of(db, nid) == "failed"
    reason = await db.fetchval("SELECT reason FROM notifications WHERE id = $1", nid)
    assert reason == "gave up after 3 attempts: expo answered HTTP 502"
    assert expo.messages == []


async def test_quiet_hours_defer_until_they_end(db: Database, registry: Registry, expo: FakeExpo):
    night = local("2025-06-15 23:30")
    alice = await new_user(
        db, "alice@example.com", timezone="Europe/Berlin", quietHoursStart="22:00", quietHoursEnd="07:00"
    )
    await add_device(db, alice, TOKEN_A)
    with clock.frozen(night):
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry)
    assert report.deferred == 1 and report.next_due == int(local("2025-06-16 07:00") * 1000)
    with clock.frozen(local("2025-06-16 06:59")):
        assert (await deliver_due(db, registry)).claimed == 0
    assert expo.messages == []
    with clock.frozen(local("2025-06-16 07:00")):
        assert (await deliver_due(db, registry)).sent == 1
    assert len(expo.messages) == 1 and await status_of(db, nid) == "sent"


async def test_quiet_hours_drop(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(
        db,
        "alice@example.com",
        timezone="America/New_York",
        quietHoursStart="21:00",
        quietHoursEnd="06:30",
        quietHoursMode="drop",
    )
    await add_device(db, alice, TOKEN_A)
    with clock.frozen(local("2025-06-15 05:00", "America/New_York")):
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry)
    with clock.frozen(local("2025-06-15 12:00", "America/New_York")):
        later = await deliver_due(db, registry)
    assert (report.dropped, later.claimed) == (1, 0)
    assert expo.messages == [] and await status_of(db, nid) == "dropped"


async def test_outside_quiet_hours_messages_go_at_once(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(
        db, "alice@example.com", timezone="Europe/Berlin", quietHoursStart="22:00", quietHoursEnd="07:00"
    )
    await add_device(db, alice, TOKEN_A)
    with clock.frozen(local("2025-06-15 21:59")):
        await analyzed(db, alice)
        assert (await deliver_due(db, registry)).sent == 1


async def test_user_preferences_are_read_at_delivery_time(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com", mutedNotifications=["low_readiness"])
    bob = await new_user(db, "bob@example.com", notifications=False)
    await add_device(db, alice, TOKEN_A)
    await add_device(db, bob, TOKEN_B)
    async with db.transaction() as tx:
        await enqueue(tx, alice, "low_readiness", "low_readiness", {"readiness": 31}, "ready:1")
        await enqueue(tx, alice, "plan_adapted", "plan_adapted", {"changed": 2, "reason": "low readiness"}, "plan:1")
        await enqueue(tx, bob, "plan_adapted", "plan_adapted", {"changed": 1}, "plan:2")
    report = await deliver_due(db, registry)
    assert (report.sent, report.skipped) == (1, 2)
    [message] = expo.messages
    assert (message["to"], message["title"], message["body"]) == (
        TOKEN_A,
        "Plan Adapted",
        "2 workouts changed: low readiness",
    )


async def test_users_without_devices_are_skipped(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    nid = await analyzed(db, alice)
    report = await deliver_due(db, registry)
    assert report.claimed == 1 and expo.messages == []
    assert await status_of(db, nid) == "skipped"


async def test_old_messages_expire_unsent(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN_A)
    with clock.frozen(T0):
        nid = await analyzed(db, alice)
    with clock.frozen(T0 + 25 * 3600):
        report = await deliver_due(db, registry)
    assert report.expired == 1 and expo.messages == []
    assert await status_of(db, nid) == "expired"


async def test_a_token_taken_over_by_another_user_gets_none_of_the_old_owners_messages(
    db: Database, registry: Registry, expo: FakeExpo
):
    alice = await new_user(db, "alice@example.com")
    bob = await new_user(db, "bob@example.com")
    await add_device(db, alice, TOKEN_A)
    await analyzed(db, alice)
    await add_device(db, bob, TOKEN_A)  # the phone now signs in as bob
    await deliver_due(db, registry)
    assert expo.messages == []
    await analyzed(db, bob, key="bob-1")
    await deliver_due(db, registry)
    assert [(m["to"], m["data"]["params"]["sport"]) for m in expo.messages] == [(TOKEN_A, "run")]
    assert await db.fetchval("SELECT count(*) FROM devices") == 1


async def test_concurrent_runners_send_each_message_once(db_url: str, db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN_A)
    await add_device(db, alice, TOKEN_B)
    for i in range(30):
        await analyzed(db, alice, key=str(i))
    others = [create_database(db_url, pool_size=3) for _ in range(2)]
    for other in others:
        await other.open()
    try:
        small = Policy(batch=7)  # several rounds each, so the runners interleave
        for _ in range(6):
            await asyncio.gather(*(deliver_due(d, registry, policy=small) for d in [db, *others]))
    finally:
        for other in others:
            await other.close()
    sent = Counter((m["data"]["notificationId"], m["to"]) for m in expo.messages)
    assert len(sent) == 60 and set(sent.values()) == {1}
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE status = 'sent'") == 30


async def test_a_dead_runners_claim_runs_out_and_a_late_runner_cannot_overwrite(
    db: Database, registry: Registry, expo: FakeExpo
):
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        device = await add_device(db, alice, TOKEN_A)
        nid = await analyzed(db, alice)
        now = clock.now_ms()
        # A runner claims the message and its delivery, then dies before sending.
        assert len(await claim_due(db, now=now, lease_ms=300_000, token="dead", limit=10)) == 1
        await deliveries.expand(db, [(nid, device)], now)
        [lost] = await deliveries.claim(db, [nid], now=now, lease_ms=300_000, token="dead")
        assert (await deliver_due(db, registry)).claimed == 0
    with clock.frozen(T0 + 301):
        assert (await deliver_due(db, registry)).sent == 1
        async with db.transaction() as tx:
            assert not await deliveries.record(tx, deliveries.Result(lost, "failed", "late"), "dead", clock.now_ms())
    assert len(expo.messages) == 1 and await status_of(db, nid) == "sent"


async def test_a_backlog_drains_in_one_run(db: Database, registry: Registry, expo: FakeExpo):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN_A)
    for i in range(10):
        await analyzed(db, alice, key=str(i))
    report = await deliver_due(db, registry, policy=Policy(batch=3))
    assert (report.claimed, report.sent) == (10, 10)


async def test_a_provider_that_hangs_is_given_up_on_and_retried(db: Database, registry: Registry, expo: FakeExpo):
    expo.delay_s = 2.0
    with clock.frozen(T0):
        alice = await new_user(db, "alice@example.com")
        await add_device(db, alice, TOKEN_A)
        nid = await analyzed(db, alice)
        report = await deliver_due(db, registry, policy=Policy(send_timeout_s=0.2, jitter=0.0))
    assert report.retried == 1
    assert await db.fetchval("SELECT detail FROM deliveries") == "notifier error: TimeoutError"
    expo.delay_s = 0.0
    with clock.frozen(T0 + 30):
        assert (await deliver_due(db, registry)).sent == 1
    assert await status_of(db, nid) == "sent"


async def test_rows_it_cannot_render_fail_and_unreadable_settings_fall_back_to_defaults(
    db: Database, registry: Registry, expo: FakeExpo
):
    alice = await new_user(db, "alice@example.com")
    await add_device(db, alice, TOKEN_A)
    await db.execute("UPDATE users SET settings = $2 WHERE id = $1", alice, {"timezone": "Mars/Olympus"})
    nid = await analyzed(db, alice)
    await db.execute("UPDATE notifications SET template_key = 'from_the_future' WHERE id = $1", nid)
    await analyzed(db, alice, key="second")
    report = await deliver_due(db, registry)
    assert (report.failed, report.sent) == (1, 1)
    assert await status_of(db, nid) == "failed"
    assert [m["title"] for m in expo.messages] == ["New Run Analyzed"]

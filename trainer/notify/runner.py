"""The delivery runner: turns due outbox rows into provider calls and records what happened.

`deliver_due` is safe to run anywhere and any number of times at once (a periodic queue task, a
task rung after a commit, a CLI command): every row it sends was claimed atomically first, so
running it twice never sends a message twice. It holds no database transaction while it talks to
a provider, so a slow provider never blocks writers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields

from pydantic import ValidationError

from trainer import clock
from trainer.db import Database
from trainer.errors import NotFound
from trainer.ids import new_id
from trainer.notify import deliveries, outbox, prefs, sealing, templates
from trainer.notify.capabilities import BatchNotifier, ReceiptChecker, Ticketed
from trainer.notify.deliveries import Attempt, Result
from trainer.notify.outbox import Claimed
from trainer.notify.policy import DEFAULT_POLICY, Policy
from trainer.plugins import Delivery, Notification, Notifier, Registry, Target
from trainer.profile import UserSettings
from trainer.store import devices, users
from trainer.store.devices import Device

log = logging.getLogger("trainer.notify")


@dataclass
class RunReport:
    """What one run did, for logs, metrics and tests."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    invalid_targets: int = 0
    deferred: int = 0
    dropped: int = 0
    skipped: int = 0
    expired: int = 0
    receipts: int = 0
    next_due: int | None = None  # ms; when the earliest pending notification is due

    def as_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def notifiers_of(registry: Registry) -> dict[str, Notifier]:
    return {n.provider: n for n in registry.with_capability(Notifier)}


async def deliver_due(
    db: Database, registry: Registry, *, now: int | None = None, policy: Policy = DEFAULT_POLICY
) -> RunReport:
    """Send every notification that is due at `now` (ms; default the clock), then check due receipts.

    Works in rounds of `policy.batch` notifications while full rounds keep coming (a backlog after
    an outage drains in one run), up to `policy.max_rounds`; the rest waits for the next run.
    """
    now = clock.now_ms() if now is None else now
    report = RunReport()
    notifiers = notifiers_of(registry)
    for _ in range(policy.max_rounds):
        claimed = await _round(db, notifiers, now, policy, report)
        if claimed < policy.batch:
            break
    report.receipts = await check_receipts(db, registry, now=now, policy=policy)
    report.next_due = await outbox.next_due(db)
    if report.claimed or report.receipts:
        log.info("notifications delivered", extra={"notify": report.as_dict()})
    return report


async def _round(db: Database, notifiers: dict[str, Notifier], now: int, policy: Policy, report: RunReport) -> int:
    """Claim one batch, send it, settle it; returns how many notifications were claimed."""
    token = new_id()
    lease_ms = int(policy.lease_s * 1000)
    claimed = await outbox.claim_due(db, now=now, lease_ms=lease_ms, token=token, limit=policy.batch)
    report.claimed += len(claimed)
    ready = await _apply_preferences(db, claimed, token, now, report)
    if ready:
        await _expand(db, ready, notifiers, now)
        attempts = await deliveries.claim(db, [n.id for n, _ in ready], now=now, lease_ms=lease_ms, token=token)
        results = await _send_all(db, ready, attempts, notifiers, now, policy)
        await _record(db, results, token, now, policy, report)
        await _settle(db, [n for n, _ in ready], token, now)
    return len(claimed)


async def _apply_preferences(
    db: Database, claimed: list[Claimed], token: str, now: int, report: RunReport
) -> list[tuple[Claimed, UserSettings]]:
    """Settle what the user's settings rule out; return what may be sent now."""
    ready: list[tuple[Claimed, UserSettings]] = []
    cache: dict[str, UserSettings | None] = {}
    for n in claimed:
        if now >= n.expires_at:
            await deliveries.abandon(db, n.id, "expired", now)
            await outbox.finish(db, n.id, token, "expired", "not delivered in time", now)
            report.expired += 1
            continue
        if n.template_key not in templates.TEMPLATES:  # written by a newer or older trainer
            await outbox.finish(db, n.id, token, "failed", f"unknown template {n.template_key}", now)
            report.failed += 1
            continue
        if n.user_id not in cache:
            cache[n.user_id] = await _settings_of(db, n.user_id)
        settings = cache[n.user_id]
        if settings is None:
            await outbox.finish(db, n.id, token, "skipped", "no such user", now)
            report.skipped += 1
            continue
        decision = prefs.decide(settings, n.category, now)
        if decision.action == "send":
            ready.append((n, settings))
        elif decision.action == "defer":
            assert decision.until_ms is not None
            await outbox.release(db, n.id, token, decision.until_ms, decision.reason)
            report.deferred += 1
        elif decision.action == "drop":
            await deliveries.abandon(db, n.id, "dropped: quiet hours", now)
            await outbox.finish(db, n.id, token, "dropped", decision.reason, now)
            report.dropped += 1
        else:
            await deliveries.abandon(db, n.id, f"skipped: {decision.reason}", now)
            await outbox.finish(db, n.id, token, "skipped", decision.reason, now)
            report.skipped += 1
    return ready


async def _settings_of(db: Database, user_id: str) -> UserSettings | None:
    try:
        user = await users.get(db, user_id)
    except NotFound:
        return None
    try:
        return UserSettings.model_validate(user.settings)
    except ValidationError:  # unreadable settings must not hold every message of the user back
        log.warning("user %s has unreadable settings; notifying with the defaults", user_id)
        return UserSettings()


async def _expand(
    db: Database, ready: list[tuple[Claimed, UserSettings]], notifiers: dict[str, Notifier], now: int
) -> None:
    """One delivery row per active device whose provider this process can reach."""
    pairs: list[tuple[str, str]] = []
    by_user: dict[str, list[Device]] = {}
    for n, _ in ready:
        if n.user_id not in by_user:
            by_user[n.user_id] = await devices.active_for_user(db, n.user_id)
        pairs.extend((n.id, d.id) for d in by_user[n.user_id] if d.provider in notifiers)
    if pairs:
        await deliveries.expand(db, pairs, now)


def _message(n: Claimed, settings: UserSettings) -> Notification:
    text = templates.render(n.template_key, n.params, settings.units)
    data = {"notificationId": n.id, "template": n.template_key, "params": n.params}
    return Notification(title=text.title, body=text.body, category=n.category, data=data)


def _target(device: Device, notifier: Notifier) -> Target:
    secret = None
    if device.secret_sealed:
        secret = sealing.unseal(
            sealing.key_for(notifier),  # type: ignore[arg-type]  # a Notifier is always a Plugin too
            device.secret_sealed,
            bound_to=f"{device.provider}:{device.token}",
        )
    return Target(provider=device.provider, address=device.token, secret=secret)


async def _send_all(
    db: Database,
    ready: list[tuple[Claimed, UserSettings]],
    attempts: list[Attempt],
    notifiers: dict[str, Notifier],
    now: int,
    policy: Policy,
) -> list[tuple[Attempt, Delivery]]:
    """Send every claimed attempt, grouped per provider; providers are called concurrently."""
    by_id = {n.id: (n, s) for n, s in ready}
    targets: dict[str, Device] = {}
    for user_id in {by_id[a.notification_id][0].user_id for a in attempts}:
        ids = [a.target_id for a in attempts if by_id[a.notification_id][0].user_id == user_id]
        targets.update(await devices.get_many(db, user_id, ids))
    messages = {n.id: _message(n, s) for n, s in ready}
    groups: dict[str, list[tuple[Attempt, Target, Notification]]] = defaultdict(list)
    outcomes: list[tuple[Attempt, Delivery]] = []
    for a in attempts:
        device = targets.get(a.target_id)
        notifier = notifiers.get(device.provider) if device else None
        if device is None or notifier is None:
            outcomes.append((a, Delivery("failed", "device or provider no longer available")))
            continue
        groups[device.provider].append((a, _target(device, notifier), messages[a.notification_id]))
    sent = await asyncio.gather(*(_send_group(notifiers[p], items, policy) for p, items in groups.items()))
    for group in sent:
        outcomes.extend(group)
    return outcomes


async def _send_group(
    notifier: Notifier, items: list[tuple[Attempt, Target, Notification]], policy: Policy
) -> list[tuple[Attempt, Delivery]]:
    pairs = [(t, n) for _, t, n in items]
    if isinstance(notifier, BatchNotifier):
        # Slices, each with its own timeout: a slow provider then costs one slice a retry, never
        # messages it already accepted in earlier slices.
        results = []
        for start in range(0, len(pairs), policy.batch_slice):
            part = pairs[start : start + policy.batch_slice]
            results.extend(await _guarded(notifier.provider, notifier.deliver_many(part), len(part), policy))
    else:
        gate = asyncio.Semaphore(policy.concurrency)

        async def one(target: Target, message: Notification) -> Delivery:
            async with gate:
                return (await _guarded(notifier.provider, _single(notifier, target, message), 1, policy))[0]

        results = list(await asyncio.gather(*(one(t, n) for t, n in pairs)))
    return [(a, r) for (a, _, _), r in zip(items, results, strict=True)]


async def _single(notifier: Notifier, target: Target, message: Notification) -> list[Delivery]:
    return [await notifier.deliver(target, message)]


async def _guarded(provider: str, call: object, count: int, policy: Policy) -> list[Delivery]:
    """A plugin's answer, or `retry` for each message when it raised, hung or answered nonsense.

    Only the exception's type is kept: its text may quote a URL or token, which must not reach
    logs or the database.
    """
    try:
        async with asyncio.timeout(policy.send_timeout_s):
            results = await call  # type: ignore[misc]
    except Exception as exc:
        log.warning("notifier %s raised %s; will retry", provider, type(exc).__name__)
        return [Delivery("retry", f"notifier error: {type(exc).__name__}")] * count
    if not isinstance(results, list) or len(results) != count or not all(isinstance(r, Delivery) for r in results):
        log.error("notifier %s answered %d message(s) with something else; will retry", provider, count)
        return [Delivery("retry", "notifier answered with the wrong number of results")] * count
    return results


def _result(attempt: Attempt, delivery: Delivery, now: int, policy: Policy) -> Result:
    if delivery.status == "sent":
        ticket = delivery.ticket if isinstance(delivery, Ticketed) and delivery.ticket else None
        due = now + int(policy.receipt_delay_s * 1000) if ticket else None
        return Result(attempt, "sent", delivery.detail, ticket=ticket, receipt_due_at=due)
    if delivery.status == "retry":
        if attempt.attempts >= policy.max_attempts:
            return Result(attempt, "failed", f"gave up after {attempt.attempts} attempts: {delivery.detail}")
        delay = policy.backoff_s(attempt.attempts, delivery.retry_after)
        return Result(attempt, "retry", delivery.detail, next_attempt_at=now + int(delay * 1000))
    return Result(attempt, delivery.status, delivery.detail)


async def _record(
    db: Database, outcomes: list[tuple[Attempt, Delivery]], token: str, now: int, policy: Policy, report: RunReport
) -> None:
    results = [_result(a, d, now, policy) for a, d in outcomes]
    kept: list[Result] = []
    async with db.transaction() as tx:
        for result in results:
            if await deliveries.record(tx, result, token, now):
                kept.append(result)
    for result in kept:
        if result.status == "sent":
            report.sent += 1
        elif result.status == "retry":
            report.retried += 1
        elif result.status == "invalid_target":
            report.invalid_targets += 1
            await devices.deactivate(db, result.attempt.target_id, result.detail or "invalid target", sent_at=now)
        else:
            report.failed += 1
    sent = sorted({r.attempt.target_id for r in kept if r.status == "sent"})
    if sent:
        await devices.mark_sent(db, sent, now)


async def _settle(db: Database, notifications: Sequence[Claimed], token: str, now: int) -> None:
    """Finish each notification whose deliveries are all settled; hand back the others, due at the
    earliest retry."""
    ids = [n.id for n in notifications]
    await deliveries.fail_unreachable(db, ids, now)
    for notification_id, rows in (await deliveries.states(db, ids)).items():
        waiting = [r for r in rows if r["status"] in deliveries.OPEN]
        if waiting:
            due = min(r["lease_until"] if r["status"] == "sending" else r["next_attempt_at"] for r in waiting)
            await outbox.release(db, notification_id, token, max(due, now + 1), "retrying")
        elif any(r["status"] == "sent" for r in rows):
            await outbox.finish(db, notification_id, token, "sent", "", now)
        elif not rows:
            await outbox.finish(db, notification_id, token, "skipped", "no devices", now)
        else:
            details = sorted({r["detail"] or r["status"] for r in rows})
            await outbox.finish(db, notification_id, token, "failed", "; ".join(details), now)


async def check_receipts(
    db: Database, registry: Registry, *, now: int | None = None, policy: Policy = DEFAULT_POLICY
) -> int:
    """Ask providers what became of messages sent with a ticket; deactivate devices they call gone.

    Returns how many tickets were settled.
    """
    now = clock.now_ms() if now is None else now
    recheck = now + int(policy.receipt_delay_s * 1000)
    pending = await deliveries.claim_receipts(db, now=now, recheck_at=recheck, limit=1000)
    notifiers = notifiers_of(registry)
    by_provider: dict[str, list[deliveries.Pending]] = defaultdict(list)
    for p in pending:
        by_provider[p.provider].append(p)
    settled = 0
    for provider, items in by_provider.items():
        checker = notifiers.get(provider)
        if not isinstance(checker, ReceiptChecker):
            for p in items:  # nobody left to ask: stop asking
                await deliveries.settle_receipt(db, p.id, status=None, detail="receipt not checked", now=now)
            continue
        answers = await _receipts(provider, checker, [p.ticket for p in items], policy)
        for p in items:
            answer = answers.get(p.ticket)
            if answer is None:
                if now - p.sent_at >= policy.receipt_give_up_s * 1000:
                    await deliveries.settle_receipt(db, p.id, status=None, detail="no receipt", now=now)
                    settled += 1
                continue
            settled += 1
            if answer.status == "sent":
                await deliveries.settle_receipt(db, p.id, status=None, detail="delivered", now=now)
            elif answer.status == "invalid_target":
                await deliveries.settle_receipt(db, p.id, status="invalid_target", detail=answer.detail, now=now)
                await devices.deactivate(db, p.target_id, answer.detail or "invalid target", sent_at=p.sent_at)
            else:
                await deliveries.settle_receipt(db, p.id, status="failed", detail=answer.detail, now=now)
    return settled


async def _receipts(provider: str, checker: ReceiptChecker, tickets: list[str], policy: Policy) -> dict[str, Delivery]:
    try:
        async with asyncio.timeout(policy.send_timeout_s):
            answers = await checker.check_receipts(tickets)
    except Exception as exc:
        log.warning("receipts from %s failed: %s; will check again", provider, type(exc).__name__)
        return {}
    return answers if isinstance(answers, dict) else {}

"""Vendor account links: tokens encrypted at rest, one trainer user per vendor account, token
refresh done once across processes, and rate-limit windows shared by every process."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import TEST_SECRET
from tests.fakes.strava import FakeStrava
from tests.plugins.conftest import CIPHER, link, new_user
from trainer import clock
from trainer.config import Settings
from trainer.db import Database
from trainer.errors import Conflict, Unavailable
from trainer.plugin_host import CoreHost
from trainer.plugins import Account, Registry, TokenRevoked, TokenSet
from trainer.rate_windows import DatabaseRateLimits
from trainer.store import accounts
from trainer.store.accounts import TokenCipher


async def test_tokens_are_encrypted_at_rest(db: Database) -> None:
    user = await new_user(db)
    tokens = TokenSet("access-SECRET-123", "refresh-SECRET-456", 2_000_000_000, "read", "134815")
    async with db.transaction() as tx:
        await accounts.save(tx, CIPHER, Account(user, "strava", "134815", tokens))
    raw = await db.fetchrow("SELECT * FROM vendor_accounts WHERE user_id = $1", user)
    assert "SECRET" not in str(raw)
    assert (await accounts.get(db, CIPHER, user, "strava")).tokens == tokens
    assert (await accounts.find_by_external(db, CIPHER, "strava", "134815")).user_id == user
    assert await accounts.find_user_id(db, "strava", "134815") == user
    with pytest.raises(Unavailable, match="server secret"):
        await accounts.get(db, TokenCipher("another-secret-of-sufficient-length-0123456"), user, "strava")

    # A ciphertext copied onto another user's row does not decrypt there.
    other = await new_user(db, "other@example.com")
    async with db.transaction() as tx:
        await accounts.save(tx, CIPHER, Account(other, "strava", "999", TokenSet("x")))
        await tx.execute("UPDATE vendor_accounts SET tokens = $1 WHERE user_id = $2", raw["tokens"], other)
    with pytest.raises(Unavailable):
        await accounts.get(db, CIPHER, other, "strava")


async def test_the_pipeline_reads_an_account_with_its_users_settings(db: Database) -> None:
    user = await new_user(db, hrMax=190, timezone="Europe/Zurich")
    tokens = TokenSet("access", "refresh", 2_000_000_000, "read", "77")
    assert await accounts.get_with_settings(db, CIPHER, user, "strava") is None
    async with db.transaction() as tx:
        await accounts.save(tx, CIPHER, Account(user, "strava", "77", tokens))
    account, settings = await accounts.get_with_settings(db, CIPHER, user, "strava")
    assert account == await accounts.get(db, CIPHER, user, "strava")
    assert account.tokens == tokens
    assert settings == {"hrMax": 190, "timezone": "Europe/Zurich"}
    assert await accounts.get_with_settings(db, CIPHER, user, "garmin") is None


async def test_one_vendor_account_belongs_to_one_user(db: Database) -> None:
    first = await new_user(db, "a@example.com")
    second = await new_user(db, "b@example.com")
    async with db.transaction() as tx:
        await accounts.save(tx, CIPHER, Account(first, "strava", "7", TokenSet("a")))
    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await accounts.save(tx, CIPHER, Account(second, "strava", "7", TokenSet("b")))
    async with db.transaction() as tx:  # reconnecting the same user replaces the tokens
        await accounts.save(tx, CIPHER, Account(first, "strava", "7", TokenSet("a2")))
    assert (await accounts.get(db, CIPHER, first, "strava")).tokens.access_token == "a2"
    assert [r["plugin"] for r in await accounts.list_for_user(db, first)] == ["strava"]
    async with db.transaction() as tx:
        assert await accounts.delete(tx, first, "strava")
    assert await accounts.get(db, CIPHER, first, "strava") is None


async def test_concurrent_refreshes_use_the_refresh_token_once(
    db: Database, registry: Registry, fake_strava: FakeStrava, vendor_settings: Settings
) -> None:
    user = await new_user(db)
    athlete = fake_strava.add_athlete()
    await link(db, "strava", user, athlete, fake_strava.issue_tokens(athlete, expires_in=60))  # about to expire
    strava = registry.get("strava")
    # Three "workers", each with its own host and its own copy of the account.
    hosts = [CoreHost(vendor_settings, TEST_SECRET, db) for _ in range(3)]
    copies = [await accounts.get(db, CIPHER, user, "strava") for _ in hosts]
    try:
        results = await asyncio.gather(*(h.fresh_tokens(strava, a) for h, a in zip(hosts, copies, strict=True)))
    finally:
        for host in hosts:
            await host.close()
    assert fake_strava.token_grants["refresh_token"] == 1
    assert len({t.access_token for t in results}) == 1
    stored = (await accounts.get(db, CIPHER, user, "strava")).tokens
    assert stored.access_token == results[0].access_token and stored.expires_at > clock.now_s() + 3600
    assert stored.external_user_id == str(athlete)
    # Not expiring any more: no further refresh.
    await registry.get("strava").host.fresh_tokens(strava, copies[0])
    assert fake_strava.token_grants["refresh_token"] == 1


async def test_a_refused_refresh_token_is_reported_and_releases_the_lease(
    db: Database, registry: Registry, fake_strava: FakeStrava
) -> None:
    user = await new_user(db)
    athlete = fake_strava.add_athlete()
    account = await link(db, "strava", user, athlete, fake_strava.issue_tokens(athlete))
    fake_strava.revoke(athlete)
    strava = registry.get("strava")
    with pytest.raises(TokenRevoked):
        await strava.host.fresh_tokens(strava, account, force=True)
    assert await db.fetchval("SELECT refresh_lease_until FROM vendor_accounts WHERE user_id = $1", user) is None


async def test_rate_windows_are_shared_between_processes(db: Database) -> None:
    one, two = DatabaseRateLimits(db, "strava"), DatabaseRateLimits(db, "strava")
    resets = clock.now_s() + 600
    assert await one.acquire({"15min": resets}) == 0.0  # nothing known yet: go
    await one.observe("15min", limit=10, usage=7, resets_at=resets)
    assert await two.acquire({"15min": resets}) == 0.0  # 8th
    assert await one.acquire({"15min": resets}) == 0.0  # 9th
    wait = await two.acquire({"15min": resets}, reserve=0.15)  # would exceed 85 % of 10
    assert 599 <= wait <= 600
    assert await one.acquire({"15min": resets}) == 0.0  # 10th, no reserve
    assert await two.acquire({"15min": resets}) > 0
    # A new window starts from zero, keeping the limit the vendor stated.
    assert await two.acquire({"15min": resets + 900}) == 0.0
    row = await db.fetchrow("SELECT limit_count, usage FROM plugin_rate_windows WHERE plugin = 'strava'")
    assert (row["limit_count"], row["usage"]) == (10, 1)


async def test_far_from_the_limit_a_process_spends_a_lease_without_touching_the_shared_row(db: Database) -> None:
    limits = DatabaseRateLimits(db, "strava")
    resets = clock.now_s() + 600
    await limits.observe("15min", limit=1000, usage=100, resets_at=resets)
    assert await limits.acquire({"15min": resets}) == 0.0
    taken = await db.fetchval("SELECT usage FROM plugin_rate_windows WHERE name = '15min'")
    assert taken == 120  # this request and a lease of 19 more, counted as used at once
    for _ in range(19):
        assert await limits.acquire({"15min": resets}) == 0.0
    assert await db.fetchval("SELECT usage FROM plugin_rate_windows WHERE name = '15min'") == 120
    assert await limits.acquire({"15min": resets}) == 0.0  # the lease is spent: a new one
    assert await db.fetchval("SELECT usage FROM plugin_rate_windows WHERE name = '15min'") == 140


async def test_near_the_limit_leases_shrink_to_single_requests_and_statements_drop_them(db: Database) -> None:
    limits, other = DatabaseRateLimits(db, "strava"), DatabaseRateLimits(db, "strava")
    resets = clock.now_s() + 600
    await limits.observe("15min", limit=100, usage=10, resets_at=resets)
    assert await limits.acquire({"15min": resets}) == 0.0  # a lease of a few requests
    leased = await db.fetchval("SELECT usage FROM plugin_rate_windows WHERE name = '15min'")
    assert 11 < leased <= 20
    await other.observe("15min", limit=100, usage=95, resets_at=resets)  # the vendor says: nearly full
    await limits.observe("15min", limit=100, usage=95, resets_at=resets)
    assert await limits.acquire({"15min": resets}) == 0.0  # the lease was dropped: counted in the row
    assert await db.fetchval("SELECT usage FROM plugin_rate_windows WHERE name = '15min'") == 96

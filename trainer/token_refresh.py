"""Refreshing a vendor account's OAuth tokens exactly once, whichever process notices first.

A refresh returns a new refresh token and kills the old one at once (Strava, Garmin). If two
workers refreshed the same account concurrently, the slower one would present a dead token, get
"invalid grant", and the user would look disconnected. So a process first takes a lease on the
account row (a short UPDATE, no transaction held open during the vendor call: SQLite has one
writer), refreshes, and stores the new tokens before anyone uses them; a process that finds the
lease taken waits for the new tokens instead.
"""

from __future__ import annotations

import asyncio
import time

from trainer import clock
from trainer.db import Database
from trainer.plugins import Account, OAuthConnector, Plugin, RetryLater, TokenRevoked, TokenSet
from trainer.store import accounts
from trainer.store.accounts import TokenCipher

REFRESH_MARGIN_S = 300
"""Tokens that expire within this many seconds are refreshed before use."""
LEASE_MS = 60_000
_POLL_S = 0.1


def expiring(tokens: TokenSet, margin_s: float = REFRESH_MARGIN_S) -> bool:
    return tokens.expires_at is not None and tokens.expires_at - margin_s <= clock.now_s()


async def fresh_tokens(
    db: Database, cipher: TokenCipher, plugin: Plugin, account: Account, *, force: bool = False
) -> TokenSet:
    """See PluginHost.fresh_tokens."""
    if not isinstance(plugin, OAuthConnector):
        return account.tokens
    if not force and not expiring(account.tokens):
        # Read with the event moments ago and good for minutes more: the database would say the
        # same (a refresh elsewhere leaves this access token valid until it expires, and a token
        # the vendor refuses comes back here with force=True).
        return account.tokens
    held = account.tokens.access_token
    deadline = time.monotonic() + LEASE_MS / 1000 + 5
    while True:
        stored = await _stored(db, cipher, account)
        if _usable(stored, held, force):
            account.tokens = stored
            return stored
        async with db.transaction() as tx:
            claimed = await accounts.claim_refresh(tx, account.user_id, account.plugin, lease_ms=LEASE_MS)
        if claimed:
            break
        if time.monotonic() > deadline:
            raise RetryLater(f"{account.plugin} tokens are being refreshed by another process", retry_after=5)
        await asyncio.sleep(_POLL_S)
    try:
        stored = await _stored(db, cipher, account)  # another process may have finished just before our claim
        if _usable(stored, held, force):
            await accounts.release_refresh(db, account.user_id, account.plugin)
            account.tokens = stored
            return stored
        new = await plugin.refresh(stored)
    except BaseException:
        await accounts.release_refresh(db, account.user_id, account.plugin)
        raise
    async with db.transaction() as tx:
        if not await accounts.save_tokens(tx, cipher, account.user_id, account.plugin, new):
            raise TokenRevoked(f"the {account.plugin} account was disconnected meanwhile")
    account.tokens = new
    return new


async def _stored(db: Database, cipher: TokenCipher, account: Account) -> TokenSet:
    found = await accounts.row_for_refresh(db, cipher, account.user_id, account.plugin)
    if found is None:
        raise TokenRevoked(f"the {account.plugin} account is no longer connected")
    return found[0]


def _usable(stored: TokenSet, held: str, force: bool) -> bool:
    """Good to use without refreshing: not expiring, and not the very token the vendor just refused."""
    if expiring(stored):
        return False
    return not force or stored.access_token != held

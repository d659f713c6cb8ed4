"""Connecting and disconnecting vendor accounts (the vendor-neutral half of OAuth).

The app cannot run an OAuth redirect flow itself without leaking its access token into a browser
URL, so it asks for a connect link (`connections.start`): a random single-use token, valid for five
minutes and bound to the app's session (signing out kills it). The browser opens
/connect/<plugin>?token=...; that step trades the token for the OAuth `state` (also random, single
use, stored only as a hash, bound to this browser by a cookie) and the PKCE verifier, and redirects
to the vendor. The callback checks all three before the plugin trades the code for tokens, which
are stored encrypted. Every step lives in the database, so any server of a deployment can serve any
step of the flow.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from trainer import clock
from trainer.after_write import recompute_from
from trainer.db import Database, Transaction
from trainer.errors import InvalidInput, NotFound, Unauthenticated
from trainer.plugins import Account, OAuthConnector, Plugin, Registry
from trainer.store import accounts, activities, sessions
from trainer.store.accounts import TokenCipher

log = logging.getLogger("trainer.connections")

CONNECT_TOKEN_TTL_MS = 5 * 60_000
STATE_TTL_MS = 15 * 60_000
EXPIRED = "this connect link has expired or was already used; start again from the app"


@dataclass(frozen=True)
class Redirect:
    """Where to send the browser, and the cookie that binds the rest of the flow to it."""

    url: str
    browser_secret: str


def connector(registry: Registry, name: str) -> Plugin:
    plugin = registry.get(name, OAuthConnector)
    if plugin is None:
        raise NotFound(f"no connectable service named {name!r} on this server")
    return plugin


def callback_url(public_url: str, plugin: str) -> str:
    return f"{public_url.rstrip('/')}/connect/{plugin}/callback"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def start(db: Database, registry: Registry, *, user_id: str, family_id: str, plugin: str) -> tuple[str, int]:
    """A single-use connect token for the browser flow and its expiry (ms)."""
    connector(registry, plugin)
    token = secrets.token_urlsafe(32)
    now = clock.now_ms()
    expires = now + CONNECT_TOKEN_TTL_MS
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM connect_sessions WHERE expires_at < $1", now)
        await tx.execute(
            """INSERT INTO connect_sessions (key_hash, stage, user_id, plugin, family_id, created_at, expires_at)
               VALUES ($1, 'start', $2, $3, $4, $5, $6)""",
            _hash(token),
            user_id,
            plugin,
            family_id,
            now,
            expires,
        )
    return token, expires


async def _take(tx: Transaction, key: str, stage: str, plugin: str) -> dict | None:
    """Consume one flow step (single use: deleted as it is read); None if unknown or expired."""
    row = await tx.fetchrow(
        """DELETE FROM connect_sessions WHERE key_hash = $1 AND stage = $2 AND plugin = $3
           RETURNING user_id, family_id, verifier, browser_hash, expires_at""",
        _hash(key),
        stage,
        plugin,
    )
    if row is None or row["expires_at"] < clock.now_ms():
        return None
    return row


async def begin(
    db: Database, registry: Registry, cipher: TokenCipher, *, plugin: str, token: str, public_url: str
) -> Redirect:
    """Trade a connect token for the vendor's authorization URL (browser step 1)."""
    oauth = connector(registry, plugin)
    assert isinstance(oauth, OAuthConnector)
    async with db.transaction() as tx:
        row = await _take(tx, token, "start", plugin)
        if row is None:
            raise Unauthenticated(EXPIRED)
        live = await sessions.session_user(tx, row["user_id"], row["family_id"])
        if live is None or live["revoked_at"] is not None or live["disabled"]:
            raise Unauthenticated("the app session that asked for this link has ended; sign in again")
        state = secrets.token_urlsafe(32)
        browser = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if oauth.uses_pkce else None
        now = clock.now_ms()
        await tx.execute(
            """INSERT INTO connect_sessions (key_hash, stage, user_id, plugin, family_id, verifier, browser_hash,
                                             created_at, expires_at)
               VALUES ($1, 'state', $2, $3, $4, $5, $6, $7, $8)""",
            _hash(state),
            row["user_id"],
            plugin,
            row["family_id"],
            None if verifier is None else cipher.encrypt_text(verifier, purpose="pkce:" + _hash(state)),
            _hash(browser),
            now,
            now + STATE_TTL_MS,
        )
    challenge = None if verifier is None else _s256(verifier)
    url = oauth.authorize_url(state=state, redirect_uri=callback_url(public_url, plugin), code_challenge=challenge)
    return Redirect(url, browser)


async def finish(
    db: Database,
    registry: Registry,
    cipher: TokenCipher,
    *,
    plugin: str,
    query: Mapping[str, str],
    browser_secret: str | None,
    public_url: str,
) -> Account:
    """Check the callback and store the new account link (browser step 2)."""
    oauth = connector(registry, plugin)
    assert isinstance(oauth, OAuthConnector)
    state = query.get("state", "")
    async with db.transaction() as tx:
        row = await _take(tx, state, "state", plugin) if state else None
    if row is None:
        raise Unauthenticated(EXPIRED)
    if not browser_secret or not hmac.compare_digest(_hash(browser_secret), row["browser_hash"] or ""):
        raise Unauthenticated("finish connecting in the browser that started it; start again from the app")
    if query.get("error"):
        raise InvalidInput("access was not granted, so nothing was connected")
    code = query.get("code", "")
    if not code:
        raise InvalidInput("the service sent no authorization code; start again from the app")
    verifier = None
    if row["verifier"] is not None:
        verifier = cipher.decrypt_text(row["verifier"], purpose="pkce:" + _hash(state))
    tokens = await oauth.exchange_code(
        code=code, redirect_uri=callback_url(public_url, plugin), code_verifier=verifier, callback=dict(query)
    )
    if not tokens.external_user_id:
        raise InvalidInput(f"{plugin} did not say which account was connected; try again")
    account = Account(row["user_id"], plugin, tokens.external_user_id, tokens)
    async with db.transaction() as tx:
        await accounts.save(tx, cipher, account)
    log.info("vendor account connected", extra={"user_id": account.user_id, "plugin": plugin})
    return account


async def disconnect(
    db: Database, registry: Registry, cipher: TokenCipher, *, user_id: str, plugin: str, tell_vendor: bool = True
) -> bool:
    """The user disconnects: tell the vendor (best effort), forget the link, and delete the data the
    vendor's terms say must go (`delete_data_on_disconnect`). False when nothing was connected."""
    account = await accounts.get(db, cipher, user_id, plugin)
    if account is None:
        return False
    oauth = registry.get(plugin, OAuthConnector)
    if tell_vendor and oauth is not None:
        try:
            await oauth.deauthorize(account.tokens)
        except Exception as exc:  # the user's wish to disconnect wins over a vendor outage
            log.warning("could not deauthorize at %s: %s", plugin, type(exc).__name__)
    delete_data = bool(getattr(oauth, "delete_data_on_disconnect", False))
    async with db.transaction() as tx:
        days = await forget(tx, user_id, plugin, delete_data=delete_data)
    await recompute_from(db, user_id, days)
    return True


async def forget(tx: Transaction, user_id: str, plugin: str, *, delete_data: bool) -> list[dt.date]:
    """Delete the account link (and, if asked, what only this source delivered); returns changed days."""
    await accounts.delete(tx, user_id, plugin)
    if delete_data:
        return await activities.delete_all_from_source(tx, user_id, plugin)
    return []


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")

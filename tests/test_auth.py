"""Accounts and sessions through the live API, on both databases: every path of auth.*.

The promises checked here are the ones the app relies on: uniform failure messages, throttling
that holds across server processes, refresh tokens that work once, and reuse that ends the session.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from trainer_cli.main import app as cli
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET, make_settings
from tests.helpers import PASSWORD, call, data, error_code, login, register
from trainer import clock
from trainer.app import create_app
from trainer.auth.service import BAD_CREDENTIALS, BAD_INVITE
from trainer.auth.tokens import AccessTokens
from trainer.config import Settings
from trainer.db import Database
from trainer.errors import Conflict
from trainer.services import SERVICES
from trainer.store import users

DAY_S = 86_400


@asynccontextmanager
async def serve(settings: Settings, db: Database | None = None) -> AsyncIterator[TestClient]:
    """Another application instance: with `db` shared, or (None) with its own connections to the same database."""
    async with TestClient(TestServer(create_app(settings, db=db))) as client:
        yield client


async def profile(client: TestClient, token: str) -> tuple[int, dict]:
    return await call(client, "user.getProfile", token=token)


async def refresh(client: TestClient, refresh_token: str) -> tuple[int, dict]:
    return await call(client, "auth.refresh", {"refreshToken": refresh_token})


async def assert_unauthorized(client: TestClient, access_token: str) -> None:
    status, body = await profile(client, access_token)
    assert (status, error_code(body)) == (401, "UNAUTHORIZED"), body


# -- registration ---------------------------------------------------------------------------------


async def test_register_open_signs_in(client: TestClient) -> None:
    result = await register(client, "runner@example.com")
    assert result["tokenType"] == "Bearer"
    assert result["user"]["email"] == "runner@example.com"
    assert result["user"]["isAdmin"] is False
    assert result["accessTokenExpiresAt"] > clock.now_ms()
    status, body = await profile(client, result["accessToken"])
    assert status == 200 and data(body)["id"] == result["user"]["id"]


async def test_register_closed_is_forbidden(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(make_settings(tmp_path, db_url, registration="closed"), db) as client:
        status, body = await call(client, "auth.register", {"email": "a@example.com", "password": PASSWORD})
    assert (status, error_code(body)) == (403, "FORBIDDEN")
    assert "registration is closed" in body["error"]["message"]
    assert await users.find_by_email(db, "a@example.com") is None


async def test_register_by_invite(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(make_settings(tmp_path, db_url, registration="invite"), db) as client:
        auth = client.app[SERVICES].auth
        code, _expires = await auth.create_invite(note="for a")

        async def attempt(email: str, invite: str | None) -> tuple[int, dict]:
            return await call(client, "auth.register", {"email": email, "password": PASSWORD, "inviteCode": invite})

        status, body = await attempt("nocode@example.com", None)
        assert (status, error_code(body)) == (403, "FORBIDDEN")
        assert "needs an invite code" in body["error"]["message"]

        status, body = await attempt("wrong@example.com", "not-a-real-code")
        assert (status, body["error"]["message"]) == (403, BAD_INVITE)

        status, body = await attempt("invited@example.com", code)
        assert status == 200, body
        assert data(body)["user"]["email"] == "invited@example.com"

        status, body = await attempt("second@example.com", code)  # single use
        assert (status, body["error"]["message"]) == (403, BAD_INVITE)

        expiring, _ = await auth.create_invite()
        with clock.shifted(15 * DAY_S):  # invite_ttl_days = 14
            status, body = await attempt("late@example.com", expiring)
        assert (status, body["error"]["message"]) == (403, BAD_INVITE)

    for refused in ("nocode", "wrong", "second", "late"):
        assert await users.find_by_email(db, f"{refused}@example.com") is None


async def test_failed_sign_up_does_not_spend_the_invite(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(make_settings(tmp_path, db_url, registration="invite"), db) as client:
        code, _ = await client.app[SERVICES].auth.create_invite()
        await users.create(db, email="taken@example.com", password_hash="x")
        attempts = [
            {"email": "taken@example.com", "password": PASSWORD, "inviteCode": code},  # email in use
            {"email": "new@example.com", "password": "short", "inviteCode": code},  # password policy
        ]
        for attempt in attempts:
            status, _ = await call(client, "auth.register", attempt)
            assert status in (400, 409)
        status, body = await call(
            client, "auth.register", {"email": "new@example.com", "password": PASSWORD, "inviteCode": code}
        )
        assert status == 200, body


async def test_emails_are_unique_case_insensitively(client: TestClient) -> None:
    await register(client, "Runner@Example.com")
    status, body = await call(client, "auth.register", {"email": "runner@EXAMPLE.com", "password": PASSWORD})
    assert (status, error_code(body)) == (409, "CONFLICT")
    result = await login(client, "RUNNER@example.COM")
    assert result["user"]["email"] == "Runner@example.com"  # EmailStr lower-cases the domain only


async def test_concurrent_sign_ups_of_one_email_conflict_cleanly(db: Database) -> None:
    """Both pass the existence check before either commits; the loser must get Conflict, not a 500."""
    if db.dialect == "sqlite":
        pytest.skip("SQLite has one writer: the second transaction starts after the first commits")
    inserted, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as tx:
            await users.create(tx, email="race@example.com", password_hash="x")
            inserted.set()
            await release.wait()

    async def second() -> None:
        await inserted.wait()
        async with db.transaction() as tx:
            racing = asyncio.ensure_future(users.create(tx, email="RACE@example.com", password_hash="y"))
            await asyncio.sleep(0.2)  # let it pass the check and block on the first one's row
            release.set()
            await racing

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], Conflict), results[1]
    assert (await users.get_by_email(db, "race@example.com")).password_hash == "x"


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "password must be at least 10 characters"), ("x" * 9, "password must be at least 10 characters")],
)
async def test_password_policy_on_register(client: TestClient, password: str, message: str) -> None:
    status, body = await call(client, "auth.register", {"email": "p@example.com", "password": password})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert body["error"]["message"] == message


async def test_overlong_password_and_bad_email_are_bad_requests(client: TestClient) -> None:
    status, body = await call(client, "auth.register", {"email": "p@example.com", "password": "x" * 1025})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert body["error"]["data"]["issues"][0]["path"] == ["password"]
    status, body = await call(client, "auth.register", {"email": "not-an-email", "password": PASSWORD})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert body["error"]["data"]["issues"][0]["path"] == ["email"]


async def test_password_of_exactly_the_minimum_length_is_accepted(client: TestClient) -> None:
    status, body = await call(client, "auth.register", {"email": "p@example.com", "password": "x" * 10})
    assert status == 200, body


# -- login ----------------------------------------------------------------------------------------


async def test_wrong_password_and_unknown_email_read_the_same(client: TestClient) -> None:
    await register(client, "known@example.com")
    wrong = await call(client, "auth.login", {"email": "known@example.com", "password": "wrong password!"})
    unknown = await call(client, "auth.login", {"email": "nobody@example.com", "password": PASSWORD})
    assert wrong == unknown
    status, body = wrong
    assert (status, error_code(body), body["error"]["message"]) == (401, "UNAUTHORIZED", BAD_CREDENTIALS)


async def test_each_login_is_its_own_session(client: TestClient) -> None:
    first = await register(client, "a@example.com")
    second = await login(client, "a@example.com", deviceId="phone-1")
    assert first["refreshToken"] != second["refreshToken"]
    claims = jwt.decode(second["accessToken"], options={"verify_signature": False})
    assert claims["did"] == "phone-1"
    assert claims["fid"] != jwt.decode(first["accessToken"], options={"verify_signature": False})["fid"]


# -- throttling -----------------------------------------------------------------------------------


async def fail_login(client: TestClient, email: str, **headers: str) -> tuple[int, dict]:
    resp = await client.post("/trpc/auth.login", json={"email": email, "password": "wrong password!"}, headers=headers)
    return resp.status, await resp.json()


async def test_account_is_locked_after_repeated_failures(tmp_path: Path, db_url: str, db: Database) -> None:
    settings = make_settings(tmp_path, db_url, login_max_failures=3, login_lockout_max_s=60)
    async with serve(settings, db) as client:
        await register(client, "target@example.com")
        for _ in range(3):
            status, body = await fail_login(client, "target@example.com")
            assert status == 401
        status, body = await call(client, "auth.login", {"email": "TARGET@example.com", "password": PASSWORD})
        assert (status, error_code(body)) == (429, "TOO_MANY_REQUESTS")  # even the right password
        assert body["error"]["data"]["retryAfter"] == 1
        with clock.shifted(2):
            await fail_login(client, "target@example.com")  # 4th failure: the lock doubles
            status, body = await call(client, "auth.login", {"email": "target@example.com", "password": PASSWORD})
            assert status == 429 and body["error"]["data"]["retryAfter"] == 2
        with clock.shifted(5):
            await login(client, "target@example.com")  # success clears the counter
            status, _ = await fail_login(client, "target@example.com")
            assert status == 401


async def test_unknown_emails_are_throttled_too(tmp_path: Path, db_url: str, db: Database) -> None:
    async with serve(make_settings(tmp_path, db_url, login_max_failures=2), db) as client:
        for _ in range(2):
            await fail_login(client, "ghost@example.com")
        status, body = await fail_login(client, "ghost@example.com")
        assert (status, error_code(body)) == (429, "TOO_MANY_REQUESTS")


async def test_address_is_limited_across_accounts(tmp_path: Path, db_url: str, db: Database) -> None:
    settings = make_settings(
        tmp_path, db_url, login_max_failures_per_address=4, login_address_window_s=60, trust_forwarded_for=True
    )
    async with serve(settings, db) as client:
        await register(client, "real@example.com")
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(4):
            status, _ = await fail_login(client, f"guess{i}@example.com", **attacker)
            assert status == 401
        resp = await client.post(
            "/trpc/auth.login", json={"email": "real@example.com", "password": PASSWORD}, headers=attacker
        )
        assert resp.status == 429
        # Another address is not affected, and the window passes.
        other = await client.post(
            "/trpc/auth.login",
            json={"email": "real@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert other.status == 200
        with clock.shifted(61):
            status, _ = await fail_login(client, "again@example.com", **attacker)
            assert status == 401


async def test_forwarded_for_is_ignored_unless_trusted(tmp_path: Path, db_url: str, db: Database) -> None:
    settings = make_settings(tmp_path, db_url, login_max_failures_per_address=2)
    async with serve(settings, db) as client:
        await fail_login(client, "a@example.com", **{"X-Forwarded-For": "203.0.113.1"})
        await fail_login(client, "b@example.com", **{"X-Forwarded-For": "203.0.113.2"})
        status, _ = await fail_login(client, "c@example.com", **{"X-Forwarded-For": "203.0.113.3"})
        assert status == 429  # all three came from the same real peer


async def test_throttle_holds_across_two_server_instances(tmp_path: Path, db_url: str, db: Database) -> None:
    settings = make_settings(tmp_path, db_url, login_max_failures=3)
    async with serve(settings, db) as first, serve(settings) as second:
        assert first.app[SERVICES].db is not second.app[SERVICES].db  # separate connections, one database
        await register(first, "shared@example.com")
        await fail_login(first, "shared@example.com")
        await fail_login(second, "shared@example.com")
        await fail_login(first, "shared@example.com")
        for client in (first, second):
            status, body = await call(client, "auth.login", {"email": "shared@example.com", "password": PASSWORD})
            assert (status, error_code(body)) == (429, "TOO_MANY_REQUESTS")


# -- refresh tokens -------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client: TestClient) -> None:
    first = await register(client, "r@example.com")
    status, body = await refresh(client, first["refreshToken"])
    assert status == 200, body
    second = data(body)
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    assert second["user"]["email"] == "r@example.com"
    assert (await profile(client, second["accessToken"]))[0] == 200
    status, body = await refresh(client, second["refreshToken"])
    assert status == 200


async def test_replayed_refresh_token_revokes_the_whole_family(client: TestClient) -> None:
    first = await register(client, "victim@example.com")
    other_device = await login(client, "victim@example.com")
    status, body = await refresh(client, first["refreshToken"])
    second = data(body)

    status, body = await refresh(client, first["refreshToken"])  # the replay
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")

    # Every token of the family stops working: the newest refresh token and both access tokens.
    status, body = await refresh(client, second["refreshToken"])
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")
    await assert_unauthorized(client, second["accessToken"])
    await assert_unauthorized(client, first["accessToken"])
    # A separate sign-in is a separate family and keeps working.
    assert (await profile(client, other_device["accessToken"]))[0] == 200
    assert (await refresh(client, other_device["refreshToken"]))[0] == 200


async def test_unknown_refresh_token(client: TestClient) -> None:
    status, body = await refresh(client, "never-issued")
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")


async def test_access_token_expires(client: TestClient) -> None:
    result = await register(client, "e@example.com")
    with clock.shifted(899):
        assert (await profile(client, result["accessToken"]))[0] == 200
    with clock.shifted(901):  # access_token_ttl_s = 900
        status, body = await profile(client, result["accessToken"])
        assert (status, body["error"]["message"]) == (401, "access token expired")
        status, body = await refresh(client, result["refreshToken"])  # the app's way out
        assert status == 200
        assert (await profile(client, data(body)["accessToken"]))[0] == 200


async def test_unused_session_expires_and_use_extends_it(client: TestClient) -> None:
    idle = await register(client, "idle@example.com")
    used = await login(client, "idle@example.com")
    with clock.shifted(40 * DAY_S):
        status, body = await refresh(client, used["refreshToken"])
        used = data(body)
    with clock.shifted(61 * DAY_S):  # refresh_token_ttl_days = 60 from the last use
        status, body = await refresh(client, idle["refreshToken"])
        assert (status, error_code(body)) == (401, "UNAUTHORIZED")
        status, body = await refresh(client, used["refreshToken"])
        assert status == 200, body


# -- forged and malformed access tokens ------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


async def test_forged_tokens_are_refused(client: TestClient) -> None:
    victim = await register(client, "victim@example.com")
    attacker = await register(client, "attacker@example.com")
    claims = _claims(victim["accessToken"])

    wrong_key = jwt.encode(claims, "some-other-secret-that-is-long-enough!", algorithm="HS256")
    raw_secret = jwt.encode(claims, TEST_SECRET, algorithm="HS256")  # the server secret itself is not the key
    unsigned = jwt.encode(claims, None, algorithm="none")
    header, _payload, signature = attacker["accessToken"].split(".")
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"  # victim's claims, attacker's signature
    other_server = AccessTokens(
        "another-server-secret-" + "x" * 20, issuer="trainer", audience="trainer-app", ttl_s=900
    )
    other_token, _ = other_server.issue(claims["sub"], claims["fid"])
    valid_key = AccessTokens(TEST_SECRET, issuer="someone-else", audience="trainer-app", ttl_s=900)
    wrong_issuer, _ = valid_key.issue(claims["sub"], claims["fid"])

    for token in (wrong_key, raw_secret, unsigned, tampered, other_token, wrong_issuer, "garbage", "a.b.c"):
        status, body = await profile(client, token)
        assert (status, error_code(body)) == (401, "UNAUTHORIZED"), token
        assert body["error"]["message"] == "invalid access token"


async def test_token_for_a_foreign_family_is_refused(client: TestClient) -> None:
    """A correctly signed token whose family belongs to another user does not authenticate anyone."""
    a = await register(client, "a@example.com")
    b = await register(client, "b@example.com")
    tokens = client.app[SERVICES].auth.tokens
    mixed, _ = tokens.issue(_claims(a["accessToken"])["sub"], _claims(b["accessToken"])["fid"])
    await assert_unauthorized(client, mixed)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_or_malformed_authorization_header(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = await client.get("/trpc/user.getProfile", headers=headers)
    body = await resp.json()
    assert (resp.status, error_code(body)) == (401, "UNAUTHORIZED")
    assert body["error"]["message"] == "missing access token"


# -- disabled accounts ----------------------------------------------------------------------------


async def test_disabled_user_is_refused_everywhere(client: TestClient, db: Database) -> None:
    result = await register(client, "d@example.com")
    await users.set_disabled(db, result["user"]["id"], True)
    status, body = await profile(client, result["accessToken"])
    assert (status, error_code(body)) == (403, "FORBIDDEN")
    status, body = await refresh(client, result["refreshToken"])
    assert (status, error_code(body)) == (403, "FORBIDDEN")
    status, body = await call(client, "auth.login", {"email": "d@example.com", "password": PASSWORD})
    assert (status, body["error"]["message"]) == (403, "this account is disabled")
    # A wrong password still reads as a wrong password: being disabled is only told to the owner.
    status, body = await call(client, "auth.login", {"email": "d@example.com", "password": "wrong password!"})
    assert (status, body["error"]["message"]) == (401, BAD_CREDENTIALS)

    await users.set_disabled(db, result["user"]["id"], False)
    assert (await refresh(client, result["refreshToken"]))[0] == 200  # refused refresh did not spend it


async def test_cli_disable_ends_sessions(client: TestClient, db_url: str, tmp_path: Path) -> None:
    result = await register(client, "cli@example.com")
    env = {"TRAINER_DATABASE_URL": db_url, "TRAINER_SECRET_KEY": TEST_SECRET, "TRAINER_DATA_DIR": str(tmp_path)}
    run = await asyncio.to_thread(CliRunner().invoke, cli, ["user", "disable", "cli@example.com"], env=env)
    assert run.exit_code == 0, run.output
    await assert_unauthorized(client, result["accessToken"])
    status, _ = await refresh(client, result["refreshToken"])
    assert status == 401

    run = await asyncio.to_thread(CliRunner().invoke, cli, ["user", "enable", "cli@example.com"], env=env)
    assert run.exit_code == 0, run.output
    await assert_unauthorized(client, result["accessToken"])  # enabling does not revive ended sessions
    await login(client, "cli@example.com")


# -- signing out and password changes --------------------------------------------------------------


async def test_logout_ends_only_this_session(client: TestClient) -> None:
    phone = await register(client, "l@example.com")
    laptop = await login(client, "l@example.com")
    status, body = await call(client, "auth.logout", token=phone["accessToken"])
    assert (status, body) == (200, {"result": {}})
    await assert_unauthorized(client, phone["accessToken"])
    assert (await refresh(client, phone["refreshToken"]))[0] == 401
    assert (await profile(client, laptop["accessToken"]))[0] == 200


async def test_logout_needs_a_session(client: TestClient) -> None:
    status, body = await call(client, "auth.logout")
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")


async def test_logout_all_ends_every_session(client: TestClient) -> None:
    sessions = [await register(client, "all@example.com")] + [await login(client, "all@example.com") for _ in range(2)]
    bystander = await register(client, "other@example.com")
    status, body = await call(client, "auth.logoutAll", token=sessions[0]["accessToken"])
    assert status == 200 and data(body) == {"sessionsEnded": 3}
    for session in sessions:
        await assert_unauthorized(client, session["accessToken"])
        assert (await refresh(client, session["refreshToken"]))[0] == 401
    assert (await profile(client, bystander["accessToken"]))[0] == 200


async def test_change_password(client: TestClient) -> None:
    here = await register(client, "c@example.com")
    elsewhere = await login(client, "c@example.com")
    new = "a new correct horse"

    async def change(current: str, new_password: str) -> tuple[int, dict]:
        return await call(
            client,
            "auth.changePassword",
            {"currentPassword": current, "newPassword": new_password},
            token=here["accessToken"],
        )

    status, body = await change("not my password", new)
    assert (status, body["error"]["message"]) == (401, "current password is incorrect")
    status, body = await change(PASSWORD, "short")
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    await login(client, "c@example.com")  # nothing changed yet

    status, body = await change(PASSWORD, new)
    assert (status, body) == (200, {"result": {}})
    assert (await profile(client, here["accessToken"]))[0] == 200  # this session stays
    assert (await refresh(client, here["refreshToken"]))[0] == 200
    await assert_unauthorized(client, elsewhere["accessToken"])  # every other one ends
    assert (await refresh(client, elsewhere["refreshToken"]))[0] == 401
    status, body = await call(client, "auth.login", {"email": "c@example.com", "password": PASSWORD})
    assert status == 401
    await login(client, "c@example.com", new)


async def test_stronger_hash_parameters_upgrade_the_hash_at_login(
    tmp_path: Path, db_url: str, db: Database, client: TestClient
) -> None:
    await register(client, "h@example.com")
    before = (await users.get_by_email(db, "h@example.com")).password_hash
    async with serve(make_settings(tmp_path, db_url, argon2_memory_kib=2048), db) as stronger:
        await login(stronger, "h@example.com")
    after = (await users.get_by_email(db, "h@example.com")).password_hash
    assert "m=1024" in before and "m=2048" in after
    await login(client, "h@example.com")  # the old parameters still verify the new hash

"""Data rights end to end on both databases: export everything, delete everything, and prove that
nothing of the user remains anywhere while another user's data stays exactly as it was."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import gpxpy
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from tests.fakes.strava import FakeStrava
from tests.helpers import PASSWORD, call, data, error_code, login, register
from trainer import clock, data_rights
from trainer.analysis.streams_codec import encode
from trainer.db import Database, catalog
from trainer.normalized import Streams
from trainer.plugins import Account, OAuthConnector, Plugin, TokenSet
from trainer.services import SERVICES
from trainer.store import accounts


class FakeVendor(Plugin, OAuthConnector):
    """Records deauthorizations instead of calling a vendor."""

    name = "fakevendor"

    revoked: list[str] = []

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        return "https://vendor.invalid/authorize"

    async def exchange_code(self, **kwargs: Any) -> TokenSet:
        raise NotImplementedError

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        return tokens

    async def deauthorize(self, tokens: TokenSet) -> None:
        FakeVendor.revoked.append(tokens.access_token)


def streams(seed: int) -> Streams:
    n = 600
    t = np.arange(n, dtype=float)
    return Streams(
        time_s=t,
        heart_rate=120 + 20 * np.sin(t / 60) + seed,
        latitude=46.05 + t * 1e-5,
        longitude=14.50 + t * 1e-5 + seed * 1e-3,
        altitude_m=300 + t / 10,
        cadence=np.full(n, 85.0),
    )


async def populate(client: TestClient, db: Database, email: str, seed: int) -> dict[str, Any]:
    """One user with rows in every kind of table: synced data, sessions, streams, vendor link, inbox,
    devices, notifications and deliveries, a throttle counter and an invite."""
    auth = await register(client, email)
    phone = await login(client, email, deviceId=f"phone-{seed}")
    await call(client, "auth.login", {"email": email, "password": "not the password"})  # a throttle row
    user_id = auth["user"]["id"]
    token = auth["accessToken"]
    status, body = await call(client, "sync.pullChanges", {"lastPulledAt": None}, token=token, method="GET")
    assert status == 200, body
    changes = {
        "activities": {
            "created": [
                {
                    "id": f"act-{seed}",
                    "start_time": 1_767_000_000_000,
                    "sport": "run",
                    "name": f"Run {seed}",
                    "duration_s": 600,
                    "notes": f"notes of {email}",
                }
            ],
            "updated": [],
            "deleted": [],
        },
        "daily_metrics": {
            "created": [{"id": f"day-{seed}", "day": "2026-05-01", "resting_hr": 40 + seed, "notes": f"slept {seed}"}],
            "updated": [],
            "deleted": [],
        },
        "training_plans": {
            "created": [{"id": f"plan-{seed}", "name": "Marathon", "goal": "sub 3"}],
            "updated": [],
            "deleted": [],
        },
        "scheduled_workouts": {
            "created": [{"id": f"wo-{seed}", "plan_id": f"plan-{seed}", "day": "2026-05-02", "title": "Easy"}],
            "updated": [],
            "deleted": [],
        },
    }
    status, body = await call(
        client, "sync.pushChanges", {"changes": changes, "lastPulledAt": data(body)["timestamp"]}, token=token
    )
    assert status == 200 and not (data(body) or {}).get("experimentalRejectedIds"), body
    # Delete one row through sync, so the user has a sync tombstone too.
    status, body = await call(client, "sync.pullChanges", {"lastPulledAt": None}, token=token, method="GET")
    gone = {"activities": {"created": [], "updated": [], "deleted": []}}
    gone["daily_metrics"] = {"created": [{"id": f"gone-{seed}", "day": "2026-05-03"}], "updated": [], "deleted": []}
    await call(client, "sync.pushChanges", {"changes": gone, "lastPulledAt": data(body)["timestamp"]}, token=token)
    status, body = await call(client, "sync.pullChanges", {"lastPulledAt": None}, token=token, method="GET")
    gone["daily_metrics"] = {"created": [], "updated": [], "deleted": [f"gone-{seed}"]}
    await call(client, "sync.pushChanges", {"changes": gone, "lastPulledAt": data(body)["timestamp"]}, token=token)

    now = clock.now_ms()
    await db.execute(
        "INSERT INTO activity_streams (activity_id, user_id, codec_version, sample_count, data)"
        " VALUES ($1, $2, 1, 600, $3)",
        f"act-{seed}",
        user_id,
        encode(streams(seed)),
    )
    cipher = accounts.TokenCipher.for_settings(client.app[SERVICES].settings)
    async with db.transaction() as tx:
        await accounts.save(
            tx, cipher, Account(user_id, "fakevendor", f"ext-{seed}", TokenSet(f"vendor-access-{seed}", f"r-{seed}"))
        )
    await db.execute(
        """INSERT INTO inbox (id, plugin, kind, user_id, external_user_id, event_time, dedupe_key, received_at,
                              next_attempt_at) VALUES ($1, 'fakevendor', 'activity', $2, $3, 0, $1, $4, $4)""",
        f"inbox-{seed}",
        user_id,
        f"ext-{seed}",
        now,
    )
    await db.execute(
        """INSERT INTO devices (id, user_id, provider, token, created_at, updated_at)
           VALUES ($1, $2, 'expo', $3, $4, $4)""",
        f"dev-{seed}",
        user_id,
        f"ExponentPushToken[{seed}]",
        now,
    )
    await db.execute(
        """INSERT INTO notifications (id, user_id, category, template_key, dedupe_key, created_at, not_before,
                                      expires_at) VALUES ($1, $2, 'activity_analyzed', 'x', $1, $3, $3, $3)""",
        f"note-{seed}",
        user_id,
        now,
    )
    await db.execute(
        """INSERT INTO deliveries (id, notification_id, target_id, next_attempt_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4, $4)""",
        f"deliv-{seed}",
        f"note-{seed}",
        f"dev-{seed}",
        now,
    )
    await db.execute(
        "INSERT INTO invites (code_hash, created_at, expires_at, created_by) VALUES ($1, $2, $2, $3)",
        f"invite-{seed}",
        now,
        user_id,
    )
    return {"id": user_id, "email": email, "token": token, "phone_refresh": phone["refreshToken"]}


async def every_row_mentioning(db: Database, needles: list[str]) -> list[str]:
    """Scan every column of every table for any of `needles` (ids, emails): what a deletion must leave none of."""
    found = []
    for table in await catalog.tables(db):
        for row in await db.fetch(f"SELECT * FROM {table}"):
            text = json.dumps({k: v for k, v in row.items() if not isinstance(v, bytes)}, default=str)
            found.extend(f"{table}: {n}" for n in needles if n in text)
    return found


async def export_bytes(db: Database, user_id: str) -> bytes:
    out = io.BytesIO()
    await data_rights.export_user(db, user_id, out)
    return out.getvalue()


def contents(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != "manifest.json"}


@pytest.fixture
def fake_vendor(client: TestClient) -> type[FakeVendor]:
    services = client.app[SERVICES]
    FakeVendor.revoked = []
    services.plugins.plugins["fakevendor"] = FakeVendor(FakeVendor.settings_model(), None)  # type: ignore[arg-type]
    return FakeVendor


async def test_export_then_delete_leaves_nothing_and_spares_others(
    client: TestClient, db: Database, fake_vendor: type[FakeVendor]
) -> None:
    alice = await populate(client, db, "alice@example.com", 1)
    bob = await populate(client, db, "bob@example.com", 2)
    bob_before = contents(await export_bytes(db, bob["id"]))

    # -- export through the API
    status, body = await call(client, "user.exportData", token=alice["token"])
    assert status == 200, body
    result = data(body)
    blob = base64.b64decode(result["zipBase64"])
    assert result["sizeBytes"] == len(blob) and result["fileName"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        files = {name: zf.read(name) for name in zf.namelist()}
    owned = data_rights.ownership
    owners = await owned(db)
    for table in [*owners.owned, "users"]:
        assert f"tables/{table}.json" in files, table
    for table in (
        "activities",
        "daily_metrics",
        "training_plans",
        "scheduled_workouts",
        "sync_tombstones",
        "refresh_families",
        "refresh_tokens",
        "activity_streams",
        "vendor_accounts",
        "inbox",
        "devices",
        "notifications",
        "deliveries",
    ):
        assert manifest["tables"][table]["rows"] >= 1, table
    users_rows = json.loads(files["tables/users.json"])
    assert users_rows[0]["email"] == "alice@example.com"
    assert users_rows[0]["password_hash"] == data_rights.REDACTED
    vendor_rows = json.loads(files["tables/vendor_accounts.json"])
    assert vendor_rows[0]["tokens"] == data_rights.REDACTED
    everything = b"".join(files.values())
    assert b"bob@example.com" not in everything and bob["id"].encode() not in everything
    assert b"vendor-access-1" not in everything  # encrypted or not, vendor tokens never leave

    (stream,) = manifest["streams"]
    rows = list(csv.DictReader(io.StringIO(files[stream["csv"]].decode())))
    assert len(rows) == 600 and float(rows[0]["heart_rate"]) == pytest.approx(121, abs=1)
    gpx = gpxpy.parse(files[stream["gpx"]].decode())
    points = gpx.tracks[0].segments[0].points
    assert len(points) == 600
    assert points[0].latitude == pytest.approx(46.05) and points[0].longitude == pytest.approx(14.501)
    assert (points[-1].time - points[0].time).total_seconds() == pytest.approx(599)

    # -- deletion needs the password
    status, body = await call(client, "user.deleteAccount", {"password": "wrong password"}, token=alice["token"])
    assert status == 401 and error_code(body) == "UNAUTHORIZED"
    assert await data_rights.remaining_rows(db, alice["id"])

    status, body = await call(client, "user.deleteAccount", {"password": PASSWORD}, token=alice["token"])
    assert status == 200, body
    assert data(body) == {
        "deleted": True,
        "vendorsDeauthorized": ["fakevendor"],
        "vendorsFailed": [],
        "wipeLocalData": True,
    }
    assert fake_vendor.revoked == ["vendor-access-1"]

    # -- every session ended; devices learn why
    status, body = await call(client, "user.getProfile", token=alice["token"])
    assert status == 401
    status, body = await call(client, "auth.refresh", {"refreshToken": alice["phone_refresh"]})
    assert status == 401
    status, body = await call(client, "user.checkDeletion", {"refreshToken": alice["phone_refresh"]})
    assert data(body)["deleted"] is True and data(body)["deletedAt"] > 0
    status, body = await call(client, "user.checkDeletion", {"refreshToken": bob["phone_refresh"]})
    assert data(body) == {"deleted": False, "deletedAt": None}

    # -- nothing of alice remains, anywhere; bob is untouched
    assert await data_rights.remaining_rows(db, alice["id"]) == {}
    assert await every_row_mentioning(db, [alice["id"], "alice@example.com", "act-1", "vendor-access"]) == []
    with pytest.raises(data_rights.NotFound):
        await export_bytes(db, alice["id"])
    assert contents(await export_bytes(db, bob["id"])) == bob_before
    status, body = await call(client, "user.getProfile", token=bob["token"])
    assert status == 200


async def test_cli_export_and_delete_revokes_strava_through_its_plugin(
    client: TestClient, db: Database, tmp_path: Path, db_url: str, fake_strava: FakeStrava
) -> None:
    """The administrator's commands, with a real bundled plugin: Strava is told to revoke access."""
    from trainer_cli.main import app
    from typer.testing import CliRunner

    carol = await populate(client, db, "carol@example.com", 3)
    athlete = fake_strava.add_athlete()
    grant = fake_strava.issue_tokens(athlete)
    tokens = TokenSet(grant["access_token"], grant["refresh_token"], grant["expires_at"], external_user_id=str(athlete))
    cipher = accounts.TokenCipher.for_settings(client.app[SERVICES].settings)
    async with db.transaction() as tx:
        await accounts.save(tx, cipher, Account(carol["id"], "strava", str(athlete), tokens))
    env = {
        "TRAINER_DATABASE_URL": db_url,
        "TRAINER_DATA_DIR": str(tmp_path / "data"),
        "TRAINER_SECRET_KEY": client.app[SERVICES].settings.secret_key.get_secret_value(),
        "TRAINER_PLUGINS": json.dumps({"strava": fake_strava.plugin_settings()}),
    }
    runner = CliRunner()
    target = tmp_path / "carol.zip"

    async def invoke(*args: str) -> Any:
        # In a thread: the CLI runs its own event loop, and the fake Strava needs this one to answer.
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    result = await invoke("user", "export", "carol@example.com", str(target))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as zf:
        assert json.loads(zf.read("manifest.json"))["user"]["email"] == "carol@example.com"
        links = json.loads(zf.read("tables/vendor_accounts.json"))
        assert {link["plugin"] for link in links} == {"fakevendor", "strava"}
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    result = await invoke("user", "delete", "carol@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "strava: access revoked" in result.output
    assert ("POST", "/oauth/deauthorize") in fake_strava.requests
    assert not fake_strava.athletes[athlete].authorized
    assert "fakevendor: could not revoke access" in result.output  # no such plugin installed for the CLI
    assert await data_rights.remaining_rows(db, carol["id"]) == {}
    result = await invoke("user", "export", "carol@example.com", str(tmp_path / "again.zip"))
    assert result.exit_code == 1 and "no user with email" in result.output

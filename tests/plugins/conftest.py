"""Fixtures for the vendor plugins: settings pointing at the fakes, the app with the real bundled
plugins (found through their entry points), plugin instances on a real host, and a pipeline that
processes what webhooks and backfills put in the inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.garmin import FakeGarmin
from tests.fakes.strava import FakeStrava
from trainer.app import create_app
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest.pipeline import Context, process_row
from trainer.normalized import Activity, ImportedActivity, Sport, Streams
from trainer.plugin_host import CoreHost
from trainer.plugins import Account, Registry, TokenSet, discover
from trainer.services import SERVICES
from trainer.store import accounts, users
from trainer.store.accounts import TokenCipher

PATH_TOKEN = "Vendor-Path-Token_0123456789"
SUBSCRIPTION_ID = 120475
CIPHER = TokenCipher(TEST_SECRET)


@pytest.fixture
def vendor_settings(tmp_path: Path, db_url: str, fake_strava: FakeStrava, fake_garmin: FakeGarmin) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        queue_url="memory://",
        webhook_path_token=PATH_TOKEN,
        plugins={
            "strava": fake_strava.plugin_settings(subscription_id=SUBSCRIPTION_ID),
            "garmin": fake_garmin.plugin_settings(),
        },
    )


@pytest.fixture
async def registry(vendor_settings: Settings, db: Database) -> AsyncIterator[Registry]:
    """The bundled plugins as the server discovers them, on a host with the test's database."""
    host = CoreHost(vendor_settings, TEST_SECRET, db)
    yield discover(vendor_settings.plugins, host)
    await host.close()


@pytest.fixture
async def vendor_client(vendor_settings: Settings, db: Database) -> AsyncIterator[TestClient]:
    app = create_app(vendor_settings, db=db)
    async with TestClient(TestServer(app)) as client:
        yield client


def app_registry(client: TestClient) -> Registry:
    return client.server.app[SERVICES].plugins


async def new_user(db: Database, email: str = "athlete@example.com", **settings: Any) -> str:
    user = await users.create(db, email=email, password_hash="not-a-real-hash")
    if settings:
        await users.set_settings(db, user.id, settings)
    return user.id


async def link(db: Database, plugin: str, user_id: str, external_user_id: Any, token_body: dict[str, Any]) -> Account:
    """A connected account whose tokens came from a fake's token endpoint response."""
    expires_at = token_body.get("expires_at") or int(datetime.now(UTC).timestamp()) + token_body["expires_in"]
    tokens = TokenSet(
        access_token=token_body["access_token"],
        refresh_token=token_body["refresh_token"],
        expires_at=expires_at,
        scope="read,activity:read_all",
        external_user_id=str(external_user_id),
    )
    account = Account(user_id, plugin, str(external_user_id), tokens)
    async with db.transaction() as tx:
        await accounts.save(tx, CIPHER, account)
    return account


def pipeline(settings: Settings, db: Database, plugins: Registry) -> Context:
    async def ring(ids: Any) -> None:
        return None

    async def ring_later(row_id: str, delay_s: float) -> None:
        return None

    return Context(db=db, plugins=plugins, settings=settings, cipher=CIPHER, ring=ring, ring_later=ring_later)


async def drain(ctx: Context) -> dict[str, str]:
    """Process every due inbox row (as a worker would), oldest first; returns id -> final state."""
    outcome: dict[str, str] = {}
    while True:
        rows = await ctx.db.fetch("SELECT id FROM inbox WHERE state = 'pending' ORDER BY received_at, id")
        todo = [r["id"] for r in rows if r["id"] not in outcome]
        if not todo:
            return outcome
        for row_id in todo:
            outcome[row_id] = await process_row(ctx, row_id)


def imported(
    source: str,
    external_id: str,
    start: datetime,
    *,
    duration_s: float = 3600.0,
    distance_m: float | None = 10_000.0,
    samples: int = 0,
    **fields: Any,
) -> ImportedActivity:
    """A normalized activity as a plugin would return it (with 1 Hz HR/speed streams if `samples`)."""
    streams = None
    if samples:
        import numpy as np

        t = np.arange(samples, dtype=float)
        streams = Streams(time_s=t, heart_rate=130 + 10 * np.sin(t / 60), speed_m_s=np.full(samples, 3.0))
    activity = Activity(
        source=source,
        external_id=external_id,
        sport=fields.pop("sport", Sport.RUN),
        start_time=start,
        duration_s=duration_s,
        distance_m=distance_m,
        **fields,
    )
    return ImportedActivity(activity=activity, streams=streams)


def write_config(path: Path, values: dict[str, Any]) -> Path:
    """A TOML settings file for CLI runs (flat values plus [plugins.<name>] tables)."""

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"{k} = {toml(v)}" for k, v in values.items() if k != "plugins"]
    for name, table in values.get("plugins", {}).items():
        lines.append(f"\n[plugins.{name}]")
        lines.extend(f"{k} = {toml(v)}" for k, v in table.items())
    path.write_text("\n".join(lines) + "\n")
    return path

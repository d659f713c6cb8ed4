"""Fixtures for notification tests: fake Expo and ntfy servers and the bundled notifiers pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.expo import FakeExpo
from tests.fakes.ntfy import FakeNtfy
from trainer.db import Database
from trainer.plugin_host import CoreHost
from trainer.plugins import ENTRY_POINT_GROUP, Registry, discover
from trainer.store import devices, users

NOTIFIERS = ("expo", "ntfy", "webhook")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def expo() -> AsyncIterator[FakeExpo]:
    fake = FakeExpo()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    fake = FakeNtfy()
    await fake.start()
    yield fake
    await fake.close()


def notifier_config(
    expo_server: FakeExpo, ntfy_server: FakeNtfy, **overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Settings of the three notifiers pointed at the fakes; `overrides` replaces whole sections."""
    return {
        "expo": {"base_url": expo_server.url},
        "ntfy": {"base_url": ntfy_server.url},
        "webhook": {"allowed_urls": [f"{expo_server.url}/hooks/"], "secret": WEBHOOK_SECRET},
        **overrides,
    }


@pytest.fixture
async def registry(expo: FakeExpo, ntfy: FakeNtfy, tmp_path: Path) -> AsyncIterator[Registry]:
    """The bundled notifiers, found through their real entry points, talking to the fakes."""
    async for found in make_registry(tmp_path, notifier_config(expo, ntfy)):
        yield found


async def make_registry(tmp_path: Path, config: dict[str, dict[str, Any]]) -> AsyncIterator[Registry]:
    host = CoreHost(make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}"), TEST_SECRET)
    ours = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name in NOTIFIERS]
    found = discover(config, host, entries=ours)
    assert sorted(found.plugins) == sorted(NOTIFIERS), found.report
    try:
        yield found
    finally:
        await host.close()


async def new_user(db: Database, email: str, **settings: Any) -> str:
    user = await users.create(db, email=email, password_hash="not-a-real-hash")
    if settings:
        await users.set_settings(db, user.id, settings)
    return user.id


async def add_device(
    db: Database, user_id: str, token: str, provider: str = "expo", device_id: str | None = None
) -> str:
    async with db.transaction() as tx:
        device = await devices.register(
            tx, user_id, provider=provider, token=token, device_id=device_id, platform="ios", app_version="1.0"
        )
    return device.id

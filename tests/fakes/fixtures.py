"""pytest fixtures for the vendor fakes (loaded from tests/conftest.py through `pytest_plugins`).

    async def test_something(fake_strava: FakeStrava) -> None:
        settings = make_settings(tmp_path, db_url, plugins={"strava": fake_strava.plugin_settings()})

Each test gets its own fake on a free 127.0.0.1 port; nothing reaches the internet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.garmin import FakeGarmin
from tests.fakes.strava import FakeStrava


@pytest.fixture
async def fake_strava() -> AsyncIterator[FakeStrava]:
    fake = FakeStrava()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_garmin() -> AsyncIterator[FakeGarmin]:
    fake = FakeGarmin()
    await fake.start()
    yield fake
    await fake.close()

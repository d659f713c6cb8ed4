"""Ingest fixtures: the test plugin registered programmatically, users with connected accounts,
the app with the plugin, and a pipeline context over the test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import TEST_SECRET, make_settings
from tests.ingest.testplugin import NAME, TestSource, TestSourceSettings
from trainer.app import create_app
from trainer.config import Settings
from trainer.db import Database
from trainer.ingest.pipeline import Context
from trainer.ingest.queue import IngestQueue
from trainer.ingest.routes import INGEST
from trainer.plugin_host import CoreHost
from trainer.plugins import Account, Registry, TokenSet
from trainer.services import SERVICES
from trainer.store import accounts, users
from trainer.store.accounts import TokenCipher

PATH_TOKEN = "Path-Token-For-Tests_0123456789"


def registry_with_plugin(settings: Settings, db: Database | None = None, **plugin_settings: Any) -> Registry:
    """A Registry holding the test plugin, as discovery would build it (but without entry points)."""
    plugin = TestSource(TestSourceSettings(**plugin_settings), CoreHost(settings, TEST_SECRET, db))
    return Registry(plugins={NAME: plugin})


async def connect(db: Database, email: str, external_user_id: str) -> str:
    """A user whose test-vendor account is connected; returns the user id."""
    user = await users.create(db, email=email, password_hash="not-a-real-hash")
    async with db.transaction() as tx:
        account = Account(user.id, NAME, external_user_id, TokenSet(access_token="access", refresh_token="refresh"))
        await accounts.save(tx, TokenCipher(TEST_SECRET), account)
    return user.id


@pytest.fixture
def ingest_settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, queue_url="memory://", webhook_path_token=PATH_TOKEN)


@pytest.fixture
async def app_client(ingest_settings: Settings, db: Database) -> AsyncIterator[TestClient]:
    """The application on a local port, with the test plugin installed."""
    app = create_app(ingest_settings, db=db)
    async with TestClient(TestServer(app)) as client:
        app[SERVICES].plugins.plugins[NAME] = registry_with_plugin(ingest_settings, db).plugins[NAME]
        yield client


def queue_of(client: TestClient) -> IngestQueue:
    return client.server.app[INGEST].queue


@pytest.fixture
def queue(ingest_settings: Settings) -> IngestQueue:
    return IngestQueue(ingest_settings)


@pytest.fixture
def context(ingest_settings: Settings, db: Database, queue: IngestQueue) -> Context:
    """A pipeline context as a consumer has one, on the test's own loop and database."""
    return Context(
        db=db,
        plugins=registry_with_plugin(ingest_settings, db),
        settings=ingest_settings,
        cipher=TokenCipher(TEST_SECRET),
        ring=queue.ring,
        ring_later=queue.ring_later,
    )

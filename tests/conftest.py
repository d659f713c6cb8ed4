"""Shared fixtures: a real database of each kind per test, settings isolated from the environment,
and a live application on a local port.

PostgreSQL 16 comes from PyPI's pgserver: one private server per test session; each test gets its
own database cloned from a migrated template (about 30 ms), so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from trainer.app import create_app
from trainer.config import Settings, load_settings
from trainer.db import Database, create_database
from trainer.db.migrate import migrate

pytest_plugins = ["tests.fakes.fixtures"]

BACKENDS = ["sqlite", "postgresql"]
TEMPLATE_DB = "trainer_template"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> Iterator[None]:
    """Tests must not pick up a developer's TRAINER_* variables or ./trainer.toml."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("TRAINER_")}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="trainer-pg-"))
    server = pgserver.get_server(root, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def _pg_url(server: Any, database: str) -> str:
    return server.get_uri(database)


def _in_thread(fn: Any) -> Any:
    """Run a coroutine function to completion on a private loop (fixtures resolved inside a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fn())).result()


@pytest.fixture(scope="session")
def pg_template(pg_server: Any) -> str:
    """A migrated database that each test's database is cloned from."""
    _in_thread(lambda: _make_template(pg_server))
    return TEMPLATE_DB


async def _make_template(pg_server: Any) -> None:
    admin = await asyncpg.connect(_pg_url(pg_server, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    db = create_database(_pg_url(pg_server, TEMPLATE_DB), pool_size=1)
    await db.open()
    try:
        await migrate(db)
    finally:
        await db.close()


async def new_pg_database(pg_server: Any, template: str | None) -> str:
    """A fresh database (migrated when cloned from the template); returns its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(_pg_url(pg_server, "postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    finally:
        await admin.close()
    return _pg_url(pg_server, name)


async def drop_pg_database(pg_server: Any, url: str) -> None:
    """Drop a test's database (connections still open are ended): a server with thousands of
    leftover databases takes tens of seconds to stop."""
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(_pg_url(pg_server, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """URL of a fresh, migrated database of the parametrized backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'trainer.db'}"
        db = create_database(url)
        await db.open()
        await migrate(db)
        await db.close()
        yield url
        return
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    url = await new_pg_database(server, template)
    yield url
    await drop_pg_database(server, url)


@pytest.fixture
async def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """URL of a fresh database with no schema at all (migration tests)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("pg_server")
    url = await new_pg_database(server, None)
    yield url
    await drop_pg_database(server, url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = create_database(db_url, pool_size=5)
    await database.open()
    yield database
    await database.close()


def make_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    """Settings for tests: cheap-but-real argon2id parameters and a fixed secret."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": db_url,
        "secret_key": TEST_SECRET,
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        "registration": "open",
    }
    values.update(overrides)
    return load_settings(None, **values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[TestClient]:
    """The application on a local port, sharing the test's database."""
    app = create_app(settings, db=db)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client

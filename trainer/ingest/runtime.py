"""What a consumer processes events with: its own database pool and its own started plugins.

A consumer runs on its own event loop (a thread of `trainer serve`, or the main thread of
`trainer worker`), and database connections and HTTP client sessions belong to the loop that opened
them; so each consumer opens its own, here, and closes them when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from trainer.config import Settings, ensure_secret_key
from trainer.db import Database, create_database
from trainer.ingest.pipeline import Context
from trainer.ingest.queue import IngestQueue
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.plugins import Registry
from trainer.store.accounts import TokenCipher

log = logging.getLogger("trainer.ingest")

Closer = Callable[[], Awaitable[None]]
PluginLoader = Callable[[Settings, str, Database], Awaitable[tuple[Registry, Closer]]]
"""Builds a consumer's plugins: (settings, server secret, database) -> (registry, how to stop them)."""


async def installed_plugins(settings: Settings, secret: str, db: Database) -> tuple[Registry, Closer]:
    """The plugins installed through entry points, as the server loads them."""
    registry, host = await load_plugins(settings, secret, db)

    async def close() -> None:
        await stop_plugins(registry, host)

    return registry, close


async def open_context(
    settings: Settings, queue: IngestQueue, *, plugins: PluginLoader = installed_plugins, pool_size: int = 4
) -> tuple[Context, Closer]:
    """A pipeline context on this loop, and the function that releases it."""
    db = create_database(settings.resolved_database_url, pool_size=pool_size)
    await db.open()
    try:
        secret = ensure_secret_key(settings)
        registry, stop_registry = await plugins(settings, secret, db)
    except BaseException:
        await db.close()
        raise

    async def close() -> None:
        try:
            await stop_registry()
        except Exception:
            log.warning("stopping the worker's plugins failed", exc_info=True)
        await db.close()

    context = Context(
        db=db,
        plugins=registry,
        settings=settings,
        cipher=TokenCipher(secret),
        ring=queue.ring,
        ring_later=queue.ring_later,
    )
    return context, close

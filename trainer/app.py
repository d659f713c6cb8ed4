"""The aiohttp application factory: wires database, services, routes and middlewares."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from trainer import __version__, connect, http, metrics, uploads
from trainer.auth.service import AuthService
from trainer.config import Settings, ensure_secret_key
from trainer.db import Database, create_database
from trainer.db.migrate import ensure_current, migrate
from trainer.ingest import routes as ingest_routes
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.rpc import all_procedures
from trainer.rpc.wire import PROCEDURES
from trainer.rpc.wire import handle as trpc_handler
from trainer.services import SERVICES, Services
from trainer.sync import retention as sync_retention

log = logging.getLogger("trainer.app")

TRPC_PREFIX = "/trpc"


def create_app(settings: Settings, *, db: Database | None = None) -> web.Application:
    """A ready-to-run application. Pass `db` to share an open database (tests); it is then not closed here."""
    middlewares = [http.edge]
    if settings.cors_origins:
        middlewares.insert(0, http.cors(settings.cors_origins))
    app = web.Application(
        middlewares=middlewares,
        client_max_size=max(settings.max_body_bytes, settings.sync_max_push_bytes),
    )
    app[PROCEDURES] = all_procedures()
    app.cleanup_ctx.append(_services(settings, db))
    app.cleanup_ctx.append(sync_retention.maintenance(lambda: app[SERVICES].db, settings.tombstone_retention_days))
    app.on_response_prepare.append(http.add_security_headers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", TRPC_PREFIX + "/{path:.*}", trpc_handler)
    ingest_routes.setup_routes(app)
    connect.setup_routes(app)
    uploads.setup_routes(app)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics.install(app, token, lambda request: request.app[SERVICES].db)
    return app


def _services(settings: Settings, given: Database | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        db = given or create_database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        if given is None:
            await db.open()
        try:
            if settings.auto_migrate and given is None:
                applied = await migrate(db)
                if applied:
                    log.info("applied %d migration(s): %s", len(applied), ", ".join(m.name for m in applied))
            await ensure_current(db)
            secret = ensure_secret_key(settings)
            registry, host = await load_plugins(settings, secret, db)
            app[SERVICES] = Services(settings=settings, db=db, auth=AuthService(db, settings, secret), plugins=registry)
            try:
                yield
            finally:
                await stop_plugins(registry, host)
        finally:
            if given is None:
                await db.close()

    return context


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and its schema is what this program expects."""
    services = request.app[SERVICES]
    try:
        await services.db.fetchval("SELECT 1")
        await ensure_current(services.db)
    except Exception as exc:
        log.warning("not ready: %s", exc)
        return web.json_response({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready", "database": services.db.dialect})

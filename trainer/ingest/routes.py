"""Webhook endpoints: /webhooks/<path token>/<plugin>[/<kind>], one generic handler for every plugin.

The routes come from the plugins' `webhook_kinds` at request time, so a third-party plugin gets
its endpoints by being installed. A request is answered in this order, and stops at the first
refusal:

1. path token (constant-time) and a known plugin/kind, else 404 before the body is read;
2. the kind's HTTP methods, else 405;
3. the kind's body limit (`max_body_bytes`, from Content-Length and while reading), else 413;
4. the plugin's `verify_webhook` (its authenticity checks), else its 401/400;
5. the events are routed to users and recorded in one commit; the queue is rung after it;
6. 200 (or the plugin's answer) — for replays and for unknown vendor users too.

Durability comes before the answer: a 200 means the events are in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from trainer.config import ensure_secret_key
from trainer.errors import PayloadTooLarge, TrainerError
from trainer.http import json_error
from trainer.ingest.accesslog import ROUTE_KEY
from trainer.ingest.committer import GroupCommitter
from trainer.ingest.consumer import EmbeddedWorker
from trainer.ingest.paths import PREFIX, path_token, token_matches
from trainer.ingest.queue import IngestQueue
from trainer.ingest.receive import Receiver
from trainer.ingest.runtime import PluginLoader, installed_plugins
from trainer.plugins import WebhookKind, WebhookReceiver, WebhookRequest
from trainer.services import SERVICES

log = logging.getLogger("trainer.ingest")


@dataclass
class Ingest:
    """The server's side of ingestion: the doorbell, the path token, and counters for operators."""

    queue: IngestQueue
    receiver: Receiver
    token: str | None
    stats: Counter[str] = field(default_factory=Counter)
    worker: EmbeddedWorker | None = None


INGEST = web.AppKey("ingest", Ingest)
WORKER_PLUGINS = web.AppKey("ingest_worker_plugins", PluginLoader)
"""How this server's embedded worker loads plugins (default: the installed ones); set before startup
by programs that register plugins themselves, such as tests."""
_OK = b'{"ok": true}'


def setup_routes(app: web.Application) -> None:
    """Add the webhook routes and the queue they ring (opened after the core services)."""
    for depth in ("/{a}", "/{a}/{b}", "/{a}/{b}/{c}"):
        app.router.add_route("*", PREFIX + depth, handle)
    app.cleanup_ctx.append(_open_queue)


def embed_worker(app: web.Application, concurrency: int) -> None:
    """Consume the queue inside this server, `concurrency` events at a time, on a thread of its own
    (`trainer serve` without --no-worker)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        ingest = app[INGEST]
        ingest.worker = EmbeddedWorker(ingest.queue, concurrency, plugins=app.get(WORKER_PLUGINS, installed_plugins))
        await asyncio.to_thread(ingest.worker.start)
        try:
            yield
        finally:
            await asyncio.to_thread(ingest.worker.stop)

    app.cleanup_ctx.append(context)


async def _open_queue(app: web.Application) -> AsyncIterator[None]:
    settings = app[SERVICES].settings
    db = app[SERVICES].db
    queue = IngestQueue(settings)
    committer = GroupCommitter(db, queue.ring)
    app[INGEST] = Ingest(queue, Receiver(db, committer), path_token(settings, ensure_secret_key(settings)))
    try:
        yield
    finally:
        await committer.close()


def _target(ingest: Ingest, request: web.Request) -> tuple[str, str]:
    """(plugin, kind) named by the path, after the path token; 404 when the token is wrong."""
    segments = [request.match_info[k] for k in ("a", "b", "c") if k in request.match_info]
    if ingest.token is not None:
        if len(segments) < 2 or not token_matches(ingest.token, segments[0]):
            raise web.HTTPNotFound()
        segments = segments[1:]
    if len(segments) > 2:
        raise web.HTTPNotFound()
    return segments[0], segments[1] if len(segments) == 2 else ""


async def handle(request: web.Request) -> web.StreamResponse:
    ingest = request.app[INGEST]
    services = request.app[SERVICES]
    plugin_name, kind_name = _target(ingest, request)
    receiver = services.plugins.get(plugin_name, WebhookReceiver)
    kind: WebhookKind | None = receiver.webhook_kinds.get(kind_name) if receiver is not None else None
    if kind is None:
        raise web.HTTPNotFound()
    request[ROUTE_KEY] = f"{plugin_name}/{kind_name}"
    if request.method not in kind.methods:
        raise web.HTTPMethodNotAllowed(request.method, list(kind.methods))
    body = await _read_body(request, kind.max_body_bytes)
    try:
        outcome = await receiver.verify_webhook(
            WebhookRequest(request.method, kind_name, request.headers, request.query, body)
        )
    except TrainerError as exc:
        ingest.stats["refused"] += 1
        log.debug("webhook %s/%s refused: %s", plugin_name, kind_name, exc.message)
        raise
    except Exception:  # a plugin's bug; logged by route, never by path (the path holds the token)
        log.exception("webhook %s/%s: the plugin failed to verify a request", plugin_name, kind_name)
        return json_error(500, "INTERNAL_SERVER_ERROR", "Internal server error")
    if outcome.events:
        receipt = await ingest.receiver.receive(plugin_name, outcome.events)
        ingest.stats["recorded"] += len(receipt.recorded)
        ingest.stats["duplicates"] += receipt.duplicates
        ingest.stats["unknown_users"] += receipt.unknown_users
        if receipt.unknown_users:
            log.info(
                "webhook %s/%s: %d event(s) for unconnected accounts ignored",
                plugin_name,
                kind_name,
                receipt.unknown_users,
            )
    if outcome.response is None and outcome.status == 200:
        return web.Response(body=_OK, content_type="application/json")
    return web.json_response(outcome.response if outcome.response is not None else {"ok": True}, status=outcome.status)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes before (Content-Length) or while reading.

    aiohttp enforces one body limit per application; a kind's own limit is applied through a clone
    of the request carrying it, unless the declared length already fits both.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    try:
        if length is not None and length <= request.client_max_size:
            body = await request.read()
        else:
            body = await request.clone(client_max_size=limit).read()
    except web.HTTPRequestEntityTooLarge:
        body = None
    if body is None or len(body) > limit:  # also a small compressed body that inflates past the limit
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    return body

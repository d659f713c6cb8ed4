"""The browser side of connecting a vendor account: GET /connect/<plugin> and its callback.

These are the only HTML pages trainer serves: a phone's browser shows them between the app and the
vendor's consent screen. Each ends in a short sentence; the flow's logic is in trainer/connections.py.
"""

from __future__ import annotations

import html
import logging

import aiohttp
from aiohttp import web

from trainer import connections
from trainer.config import ensure_secret_key
from trainer.errors import Conflict, InvalidInput, NotFound, TrainerError, Unauthenticated
from trainer.plugins import RetryLater
from trainer.services import SERVICES, Services
from trainer.store.accounts import TokenCipher

log = logging.getLogger("trainer.connect")

COOKIE_PREFIX = "trainer_connect_"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/connect/{plugin}", begin)
    app.router.add_get("/connect/{plugin}/callback", callback)


def _context(request: web.Request) -> tuple[Services, TokenCipher, str]:
    services = request.app[SERVICES]
    settings = services.settings
    public_url = settings.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    return services, TokenCipher(ensure_secret_key(settings)), public_url


async def begin(request: web.Request) -> web.StreamResponse:
    plugin = request.match_info["plugin"]
    services, cipher, public_url = _context(request)
    try:
        redirect = await connections.begin(
            services.db,
            services.plugins,
            cipher,
            plugin=plugin,
            token=request.query.get("token", ""),
            public_url=public_url,
        )
    except (NotFound, Unauthenticated) as exc:
        return page(f"Cannot connect {plugin}", exc.message, status=404 if isinstance(exc, NotFound) else 400)
    response = web.HTTPFound(redirect.url)
    response.set_cookie(
        COOKIE_PREFIX + plugin,
        redirect.browser_secret,
        max_age=connections.STATE_TTL_MS // 1000,
        path=f"/connect/{plugin}",
        secure=public_url.startswith("https://"),
        httponly=True,
        samesite="Lax",  # sent on the vendor's top-level redirect back to us, not on cross-site requests
    )
    raise response


async def callback(request: web.Request) -> web.StreamResponse:
    plugin = request.match_info["plugin"]
    services, cipher, public_url = _context(request)
    title = f"Connecting {plugin}"
    try:
        await connections.finish(
            services.db,
            services.plugins,
            cipher,
            plugin=plugin,
            query=request.query,
            browser_secret=request.cookies.get(COOKIE_PREFIX + plugin),
            public_url=public_url,
        )
    except (Unauthenticated, InvalidInput, Conflict, NotFound) as exc:
        response = page(title, exc.message, status=400)
    except (RetryLater, aiohttp.ClientError, TimeoutError, TrainerError) as exc:
        log.warning("connecting %s failed: %s", plugin, type(exc).__name__)
        response = page(title, f"{plugin} could not be reached to finish connecting; try again later.", status=502)
    else:
        response = page(f"{plugin.capitalize()} connected", "You can close this page and return to the app.")
    response.del_cookie(COOKIE_PREFIX + plugin, path=f"/connect/{plugin}")
    return response


def page(title: str, message: str, *, status: int = 200) -> web.Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html")

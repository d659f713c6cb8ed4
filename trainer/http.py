"""HTTP edges shared by every route: request ids, JSON errors, security headers, CORS.

REST and webhook routes report errors as `{"error": {"code": ..., "message": ...}}` with the same
codes and statuses as the tRPC envelope (one mapping, in rpc/errors.py).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from trainer.errors import TrainerError
from trainer.logs import request_id
from trainer.rpc.errors import code_for, http_status

log = logging.getLogger("trainer.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
CORS_HEADERS = "Authorization, Content-Type, trpc-accept, X-Request-ID, X-Device-ID"


def json_error(status: int, code: str, message: str, **extra: object) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, dumps=json.dumps)


def _request_ids() -> Callable[[], str]:
    """Request ids unique across processes and restarts without a random draw per request: a
    random prefix per process, then a counter (16 hex characters in all)."""
    prefix = secrets.token_hex(4)
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter) & 0xFFFFFFFF:08x}"


new_request_id = _request_ids()


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place a request enters and an answer leaves, outside tRPC's own envelope:

    - tag the request (and every log line it causes) with an id; a caller's valid id is kept;
    - every failure becomes a JSON error; internals are logged, never sent.

    One middleware, not two: each layer costs every request a coroutine and a call.
    """
    incoming = request.headers.get("X-Request-ID")
    rid = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else new_request_id()
    token = request_id.set(rid)
    try:
        response = await _as_json(request, handler)
    except web.HTTPException as exc:  # a redirect: not an error
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        request_id.reset(token)
    response.headers["X-Request-ID"] = rid
    return response


async def _as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TrainerError as exc:
        code = code_for(exc)
        return json_error(http_status(code), code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "PAYLOAD_TOO_LARGE", "request body is too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason.upper().replace(" ", "_"), _http_error_message(request, exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "INTERNAL_SERVER_ERROR", "Internal server error")


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    """aiohttp's router says only "404: Not Found"; say what was asked for, so a wrong URL is obvious."""
    text = exc.text or exc.reason
    if text != f"{exc.status}: {exc.reason}":
        return text  # a handler's own message
    if isinstance(exc, web.HTTPNotFound):
        return f"no route for {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    return text


def cors(origins: list[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """CORS for the configured origins only (none by default: the mobile app needs no CORS)."""
    allow_any = "*" in origins
    allowed = set(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        permitted = origin is not None and (allow_any or origin in allowed)
        if request.method == "OPTIONS" and permitted and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, HEAD, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if permitted and origin is not None:
            response.headers["Access-Control-Allow-Origin"] = "*" if allow_any else origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)

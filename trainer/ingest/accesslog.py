"""An access log that never writes a webhook path token or query.

aiohttp's `%r` is the request line, path and query included: for webhook routes that is the secret
path token (and Strava's verify_token in the subscription check's query). This logger formats
exactly like aiohttp's, with the request line of /webhooks/ requests replaced by the route the
handler recognised ("/webhooks/<plugin>/<kind>", the token left out) or by "/webhooks/…" when
it recognised none: a guess at the token is as secret as the token.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from trainer.ingest.paths import PREFIX

ROUTE_KEY = web.RequestKey("trainer.webhook_route", str)
"""Set on the request by the webhook handler once the path token matched: "<plugin>/<kind>"."""


class _Redacted:
    """The request as the inner logger sees it: everything the same but the path and query."""

    def __init__(self, request: BaseRequest, path: str) -> None:
        self._request = request
        self.path_qs = path
        self.path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def redacted_path(request: BaseRequest) -> str:
    route = request.get(ROUTE_KEY)
    return f"{PREFIX}/{route}".rstrip("/") if route is not None else f"{PREFIX}/…"


class RedactingAccessLogger(AbstractAccessLogger):
    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._inner = AccessLogger(logger, log_format)

    @property
    def enabled(self) -> bool:
        return self._inner.enabled

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if request is not None and request.path.startswith(PREFIX + "/"):
            request = _Redacted(request, redacted_path(request))  # type: ignore[assignment]
        self._inner.log(request, response, time)

"""Outbound HTTP for plugins: only to the hosts a plugin is configured for.

A vendor URL that arrives in a webhook (Garmin's callbackURL) or a redirect to another host is
refused before any byte leaves, so a forged push cannot make the server fetch internal addresses
or hand a user's token to a stranger.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from trainer.errors import PermissionDenied

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


class OutboundHTTP:
    def __init__(self, allowed_hosts: set[str], *, name: str) -> None:
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.name = name
        self._session: aiohttp.ClientSession | None = None

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or host not in self.allowed_hosts:
            raise PermissionDenied(f"plugin {self.name} may not fetch {parts.scheme}://{host}")

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=DEFAULT_TIMEOUT, headers={"User-Agent": "trainer"})
        return self._session

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """Like aiohttp's `session.request` (use as `async with`), but never to an unlisted host
        and never following redirects."""
        self.check(url)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, url, **kwargs)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""What a procedure sees of its request: services, the caller, and the client's address."""

from __future__ import annotations

from aiohttp import web

from trainer.auth.service import CurrentUser
from trainer.config import Settings
from trainer.db import Database
from trainer.errors import Unauthenticated
from trainer.services import Services


class Context:
    def __init__(self, request: web.Request, services: Services) -> None:
        self.request = request
        self.services = services
        self._user: CurrentUser | None = None
        self._auth_error: Unauthenticated | None = None
        self._resolved = False

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def user(self) -> CurrentUser:
        """The authenticated caller; the wire layer authenticates before any non-public procedure runs."""
        if self._user is None:
            raise Unauthenticated("missing access token")
        return self._user

    async def authenticate(self) -> CurrentUser:
        """Resolve the bearer token once per HTTP request (a batch shares it)."""
        if not self._resolved:
            self._resolved = True
            try:
                self._user = await self.services.auth.authenticate(_bearer(self.request))
            except Unauthenticated as exc:
                self._auth_error = exc
        if self._auth_error is not None:
            raise self._auth_error
        assert self._user is not None
        return self._user

    @property
    def client_address(self) -> str:
        if self.settings.trust_forwarded_for:
            forwarded = self.request.headers.get("X-Forwarded-For", "")
            first = forwarded.split(",")[0].strip()
            if first:
                return first
        return self.request.remote or "unknown"

    @property
    def user_agent(self) -> str | None:
        return self.request.headers.get("User-Agent")


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing access token")
    return token.strip()

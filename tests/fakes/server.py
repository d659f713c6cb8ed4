"""A fake service's lifecycle: an aiohttp app on a free 127.0.0.1 port, plus scripted failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Scripted:
    """One canned answer, used instead of the normal behaviour for the next request."""

    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        if self.body is None:
            return web.Response(status=self.status, headers=self.headers)
        return web.json_response(self.body, status=self.status, headers=self.headers)


class FakeServer:
    """Base of the fakes: `await start()`, `.url`, `await close()`; `fail_next(...)` queues errors."""

    def __init__(self) -> None:
        self.scripted: list[Scripted] = []
        self._server: TestServer | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def fail_next(
        self, status: int, body: object = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        self.scripted.extend(Scripted(status, body, headers or {}) for _ in range(times))

    def scripted_answer(self) -> web.Response | None:
        return self.scripted.pop(0).response() if self.scripted else None

    async def start(self) -> FakeServer:
        self._server = TestServer(self.app(), host="127.0.0.1")
        await self._server.start_server()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

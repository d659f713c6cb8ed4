"""A local ntfy server: POST /<topic> publishes; protected topics want a bearer token.

Records each published message with the headers ntfy reads (Title, Priority, Tags) and answers
like ntfy does: the message as JSON, 403 for a protected topic without the right token, 429 or 5xx
when the test queues them.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from email.header import decode_header, make_header

from aiohttp import web

from tests.fakes.server import FakeServer


@dataclass(frozen=True)
class Published:
    topic: str
    title: str
    priority: str
    tags: str
    message: str
    authorization: str | None


class FakeNtfy(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[Published] = []
        self.protected: dict[str, str] = {}  # topic -> token that may publish
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{topic}", self._publish)
        return app

    async def _publish(self, request: web.Request) -> web.Response:
        scripted = self.scripted_answer()
        if scripted is not None:
            return scripted
        topic = request.match_info["topic"]
        auth = request.headers.get("Authorization")
        if topic in self.protected and auth != f"Bearer {self.protected[topic]}":
            return web.json_response({"code": 40301, "http": 403, "error": "forbidden"}, status=403)
        title = str(make_header(decode_header(request.headers.get("Title", ""))))
        message = (await request.read()).decode()
        self.published.append(
            Published(topic, title, request.headers.get("Priority", ""), request.headers.get("Tags", ""), message, auth)
        )
        return web.json_response(
            {
                "id": f"m{next(self._ids)}",
                "time": int(time.time()),
                "event": "message",
                "topic": topic,
                "message": message,
            }
        )

"""The streamed output hook of the tRPC layer and the large first sync that uses it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers import call, error_code
from tests.sync.conftest import ids
from trainer.app import create_app
from trainer.errors import InvalidInput
from trainer.rpc import all_procedures
from trainer.rpc.router import Output, Router
from trainer.rpc.streaming import Streamed
from trainer.rpc.wire import PROCEDURES
from trainer.store.stamps import next_stamp


class Numbers(Output):
    values: list[int]


def _test_router() -> Router:
    router = Router("test")

    @router.query("count", public=True)
    async def count(ctx) -> Streamed[Numbers]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"values":['
            yield b"1,2"
            yield b",3]}"

        return Streamed(chunks())

    @router.query("refuse", public=True)
    async def refuse(ctx) -> Streamed[Numbers]:
        async def chunks() -> AsyncIterator[bytes]:
            raise InvalidInput("not today")
            yield b""  # pragma: no cover

        return Streamed(chunks())

    @router.query("breakMidway", public=True)
    async def break_midway(ctx) -> Streamed[Numbers]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"values":[1'
            raise RuntimeError("disk on fire")

        return Streamed(chunks())

    return router


@pytest.fixture
async def stream_client(settings, db) -> AsyncIterator[TestClient]:
    app = create_app(settings, db=db)
    app[PROCEDURES] = {**all_procedures(), **_test_router().procedures}
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_streamed_outputs_are_typed_as_their_item_and_sent_chunked(stream_client):
    assert _test_router().procedures["test.count"].output_type is Numbers
    resp = await stream_client.get("/trpc/test.count")
    assert resp.status == 200 and resp.headers.get("Transfer-Encoding") == "chunked"
    assert await resp.json() == {"result": {"data": {"values": [1, 2, 3]}}}
    status, body = await call(stream_client, "test.refuse", method="GET")
    assert status == 400 and error_code(body) == "BAD_REQUEST" and body["error"]["message"] == "not today"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_stream_failing_midway_is_cut_off_never_a_valid_partial_body(stream_client):
    resp = await stream_client.get("/trpc/test.breakMidway")
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    status, _ = await call(stream_client, "test.count", method="GET")  # the server is fine afterwards
    assert status == 200


async def test_a_large_first_sync_is_streamed_in_chunks(phone, db):
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, phone.user_id)
        await tx.executemany(
            "INSERT INTO daily_metrics (id, user_id, day, notes, created_stamp, updated_stamp) "
            "VALUES ($1, $2, $3, $4, $5, $5)",
            [(f"m{i:05d}", phone.user_id, "2024-01-01", "n" * 100, stamp) for i in range(3_000)],
        )
    resp = await phone.client.get(
        "/trpc/sync.pullChanges",
        params={"input": '{"lastPulledAt":null}'},
        headers={"Authorization": f"Bearer {phone.token}"},
    )
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    pieces = [chunk async for chunk, _ in resp.content.iter_chunks()]
    assert len(pieces) > 3
    body = json.loads(b"".join(pieces))["result"]["data"]
    assert len(ids(body, "daily_metrics", "created")) == 3_000 and body["timestamp"] == stamp

"""The tRPC-over-HTTP wire format as @trpc/client v10/v11 expect it (see trpc-wire reference notes).

The clients always parse the body as JSON and look only at the envelope, so beyond the happy paths
these tests send every kind of broken request and check that each answer is a tRPC error envelope
with the right numeric code, never a 500 or a plain-text page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import make_settings
from tests.helpers import PASSWORD, data, register
from trainer.app import create_app
from trainer.db import Database
from trainer.errors import Conflict
from trainer.rpc.context import Context
from trainer.rpc.errors import TRPC_CODES, envelope
from trainer.rpc.router import Input, Router
from trainer.rpc.wire import PROCEDURES


# The wire layer never touches the database itself (auth and user tests cover both backends), so the
# protocol is checked on SQLite only: half the setup time for the same coverage.
@pytest.fixture
def backend() -> str:
    return "sqlite"


# The table tRPC's clients and servers agree on (data.code -> JSON-RPC code, HTTP status).
EXPECTED_CODES = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
}

# Throwaway procedures that exist only in these tests.
probe = Router("probe")


class EchoInput(Input):
    text: str
    times: int = 1


@probe.query("echo", public=True)
async def echo(ctx: Context, input: EchoInput) -> str:
    """Echo for batching tests."""
    return input.text * input.times


@probe.query("nothing", public=True)
async def nothing(ctx: Context) -> None:
    """Returns tRPC `undefined`."""


@probe.query("null", public=True)
async def null(ctx: Context) -> str | None:
    """Returns JSON null."""
    return None


@probe.mutation("boom", public=True)
async def boom(ctx: Context) -> None:
    """Fails with an internal error whose text must not reach the client."""
    raise RuntimeError("secret internal detail: password=hunter2 at /srv/trainer/db.py:42")


@probe.mutation("conflict", public=True)
async def conflict(ctx: Context) -> None:
    raise Conflict("changed underneath", details={"retry": True})


def assert_envelope(body: object, code: str, status: int, path: str | None = "__any__") -> dict:
    """A tRPC error envelope: numeric error.code, data.code/httpStatus, optional path."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] == EXPECTED_CODES[code][0]
    assert error["data"]["code"] == code
    assert error["data"]["httpStatus"] == status
    if path != "__any__":
        assert error["data"].get("path") == path
    return error


@pytest.fixture
async def app_client(tmp_path: Path, db_url: str, db: Database) -> AsyncIterator[TestClient]:
    """The real app with small body limits and the probe procedures added."""
    settings = make_settings(tmp_path, db_url, max_body_bytes=2048, sync_max_push_bytes=4096)
    app = create_app(settings, db=db)
    app[PROCEDURES].update(probe.procedures)
    async with TestClient(TestServer(app)) as client:
        yield client


async def get(client: TestClient, url: str, **kwargs: object) -> tuple[int, object, str]:
    resp = await client.get(url, **kwargs)
    return resp.status, json.loads(await resp.text()), resp.headers.get("Content-Type", "")


async def post(client: TestClient, url: str, body: bytes | str | None = None, **kwargs: object) -> tuple[int, object]:
    resp = await client.post(url, data=body, **kwargs)
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.status, json.loads(await resp.text())


def test_error_codes_match_trpc() -> None:
    assert TRPC_CODES == EXPECTED_CODES
    assert envelope("UNAUTHORIZED", "Missing token", "me") == {
        "error": {
            "message": "Missing token",
            "code": -32001,
            "data": {"code": "UNAUTHORIZED", "httpStatus": 401, "path": "me"},
        }
    }


# -- single calls ---------------------------------------------------------------------------------


async def test_query_by_get_with_urlencoded_input(app_client: TestClient) -> None:
    status, body, ctype = await get(
        app_client, "/trpc/probe.echo", params={"input": json.dumps({"text": "a&b=?", "times": 2})}
    )
    assert (status, body) == (200, {"result": {"data": "a&b=?a&b=?"}})
    assert ctype.startswith("application/json")


async def test_get_with_content_type_is_accepted(app_client: TestClient) -> None:
    """tRPC v10 sends content-type: application/json on GET too."""
    status, body, _ = await get(
        app_client, "/trpc/probe.echo", params={"input": '{"text":"x"}'}, headers={"Content-Type": "application/json"}
    )
    assert (status, body) == (200, {"result": {"data": "x"}})


async def test_undefined_and_null_outputs(app_client: TestClient) -> None:
    assert (await get(app_client, "/trpc/probe.nothing"))[:2] == (200, {"result": {}})
    assert (await get(app_client, "/trpc/probe.null"))[:2] == (200, {"result": {"data": None}})


async def test_mutation_by_post_and_without_body(app_client: TestClient) -> None:
    auth = await register(app_client, "w@example.com")
    assert auth["user"]["email"] == "w@example.com"
    # No input: tRPC sends no body at all.
    resp = await app_client.post("/trpc/auth.logout", headers={"Authorization": f"Bearer {auth['accessToken']}"})
    assert (resp.status, await resp.json()) == (200, {"result": {}})


async def test_query_via_post_is_method_not_supported(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/probe.echo", '{"text":"x"}')
    assert status == 405
    assert_envelope(body, "METHOD_NOT_SUPPORTED", 405, "probe.echo")


async def test_mutation_via_get_is_method_not_supported(app_client: TestClient) -> None:
    status, body, _ = await get(
        app_client, "/trpc/auth.login", params={"input": json.dumps({"email": "a@b.c", "password": "x"})}
    )
    assert status == 405
    assert_envelope(body, "METHOD_NOT_SUPPORTED", 405, "auth.login")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_not_supported(app_client: TestClient, method: str) -> None:
    resp = await app_client.request(method, "/trpc/probe.echo")
    assert resp.status == 405
    assert_envelope(await resp.json(), "METHOD_NOT_SUPPORTED", 405)


async def test_head_is_204(app_client: TestClient) -> None:
    resp = await app_client.head("/trpc/probe.echo")
    assert resp.status == 204


async def test_unknown_procedure_is_not_found(app_client: TestClient) -> None:
    status, body, _ = await get(app_client, "/trpc/nope.nothing")
    assert status == 404
    error = assert_envelope(body, "NOT_FOUND", 404, "nope.nothing")
    assert error["message"] == 'No procedure found on path "nope.nothing"'
    status, body = await post(app_client, "/trpc/nope.nothing", "{}")
    assert status == 404


async def test_empty_path_is_not_found(app_client: TestClient) -> None:
    status, body, _ = await get(app_client, "/trpc/")
    assert status == 404
    assert_envelope(body, "NOT_FOUND", 404)


# -- input errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"text": ', "{'text': 1}", "undefined", "\x00"])
async def test_malformed_json_is_parse_error(app_client: TestClient, raw: str) -> None:
    status, body, _ = await get(app_client, "/trpc/probe.echo", params={"input": raw})
    assert status == 400
    assert_envelope(body, "PARSE_ERROR", 400, "probe.echo")
    status, body = await post(app_client, "/trpc/auth.login", raw)
    assert status == 400
    assert_envelope(body, "PARSE_ERROR", 400, "auth.login")


async def test_body_that_is_not_utf8_is_parse_error(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/auth.login", b'{"email": "\xff\xfe"}')
    assert status == 400
    assert_envelope(body, "PARSE_ERROR", 400, "auth.login")


async def test_nul_characters_are_refused(app_client: TestClient) -> None:
    """PostgreSQL cannot store U+0000 in text or jsonb: refused up front on every backend, never a 500."""
    for payload in ({"email": "a\x00@example.com", "password": "x"}, {"email": "a@b.c", "password": "p", "\x00": 1}):
        status, body = await post(app_client, "/trpc/auth.login", json.dumps(payload))
        assert status == 400
        assert "NUL" in assert_envelope(body, "BAD_REQUEST", 400, "auth.login")["message"]
    status, body, _ = await get(app_client, "/trpc/probe.echo", params={"input": json.dumps({"text": ["\x00"]})})
    assert status == 400
    # The six characters backslash-u-0-0-0-0 are ordinary text.
    status, body, _ = await get(app_client, "/trpc/probe.echo", params={"input": json.dumps({"text": "\\u0000"})})
    assert (status, body) == (200, {"result": {"data": "\\u0000"}})


async def test_validation_error_names_the_field(app_client: TestClient) -> None:
    status, body, _ = await get(
        app_client, "/trpc/probe.echo", params={"input": json.dumps({"text": "x", "times": "many"})}
    )
    assert status == 400
    error = assert_envelope(body, "BAD_REQUEST", 400, "probe.echo")
    assert error["message"].startswith("times: ")
    issues = error["data"]["issues"]
    assert issues[0]["path"] == ["times"]
    assert issues[0]["code"] == "int_parsing"


async def test_wrong_types_and_unknown_keys(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/auth.login", json.dumps({"email": 5, "password": ["x"], "extra": 1}))
    assert status == 400
    paths = [issue["path"] for issue in assert_envelope(body, "BAD_REQUEST", 400)["data"]["issues"]]
    assert paths == [["email"], ["password"], ["extra"]]
    status, body = await post(app_client, "/trpc/auth.login", json.dumps([1, 2]))
    assert status == 400
    assert_envelope(body, "BAD_REQUEST", 400)


async def test_missing_input_is_bad_request(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/auth.login")
    assert status == 400
    assert assert_envelope(body, "BAD_REQUEST", 400)["message"] == "input is required"
    status, body, _ = await get(app_client, "/trpc/probe.echo")
    assert status == 400


async def test_oversized_body_is_payload_too_large(app_client: TestClient) -> None:
    big = json.dumps({"email": "a@example.com", "password": "x" * 3000})
    status, body = await post(app_client, "/trpc/auth.login", big)  # with Content-Length
    assert status == 413
    assert_envelope(body, "PAYLOAD_TOO_LARGE", 413, "auth.login")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 1000  # 3000 bytes: over max_body_bytes, under the server's hard limit

    status, body = await post(app_client, "/trpc/auth.login", chunks())
    assert status == 413
    assert_envelope(body, "PAYLOAD_TOO_LARGE", 413)

    async def flood() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 1000  # over aiohttp's client_max_size as well

    status, body = await post(app_client, "/trpc/auth.login", flood())
    assert status == 413
    assert_envelope(body, "PAYLOAD_TOO_LARGE", 413)


async def test_unexpected_exception_is_internal_error_without_internals(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await post(app_client, "/trpc/probe.boom")
    assert status == 500
    error = assert_envelope(body, "INTERNAL_SERVER_ERROR", 500, "probe.boom")
    assert error["message"] == "Internal server error"
    assert "hunter2" not in json.dumps(body) and "db.py" not in json.dumps(body)
    assert "secret internal detail" in caplog.text  # the operator still sees it in the log


async def test_domain_error_details_reach_data(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/probe.conflict")
    assert status == 409
    assert assert_envelope(body, "CONFLICT", 409)["data"]["retry"] is True


# -- batching -------------------------------------------------------------------------------------


async def test_batch_of_queries(app_client: TestClient) -> None:
    inputs = {"0": {"text": "a"}, "1": {"text": "b", "times": 3}}
    status, body, _ = await get(
        app_client, "/trpc/probe.echo,probe.echo,probe.nothing?batch=1", params={"input": json.dumps(inputs)}
    )
    assert status == 200
    assert body == [{"result": {"data": "a"}}, {"result": {"data": "bbb"}}, {"result": {}}]


async def test_batch_with_a_missing_index_is_undefined_for_that_call(app_client: TestClient) -> None:
    inputs = {"1": {"text": "b"}}
    status, body, _ = await get(app_client, "/trpc/probe.echo,probe.echo?batch=1", params={"input": json.dumps(inputs)})
    assert status == 207
    assert assert_envelope(body[0], "BAD_REQUEST", 400, "probe.echo")["message"] == "input is required"
    assert body[1] == {"result": {"data": "b"}}


async def test_batch_with_mixed_outcomes_is_207(app_client: TestClient) -> None:
    await register(app_client, "b@example.com")
    inputs = {
        "0": {"email": "b@example.com", "password": PASSWORD},
        "1": {"email": "b@example.com", "password": "not the password"},
    }
    status, body = await post(app_client, "/trpc/auth.login,auth.login,nope.x?batch=1", json.dumps(inputs))
    assert status == 207
    assert data(body[0])["user"]["email"] == "b@example.com"
    assert_envelope(body[1], "UNAUTHORIZED", 401, "auth.login")
    assert_envelope(body[2], "NOT_FOUND", 404, "nope.x")


async def test_batch_mixing_a_query_into_a_post(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/probe.conflict,probe.echo?batch=1", "{}")
    assert status == 207
    assert_envelope(body[0], "CONFLICT", 409, "probe.conflict")
    assert_envelope(body[1], "METHOD_NOT_SUPPORTED", 405, "probe.echo")


async def test_batch_authenticates_once_for_all_items(app_client: TestClient) -> None:
    auth = await register(app_client, "once@example.com")
    headers = {"Authorization": f"Bearer {auth['accessToken']}"}
    status, body, _ = await get(app_client, "/trpc/user.getProfile,user.getProfile?batch=1", headers=headers)
    assert status == 200
    assert data(body[0]) == data(body[1])
    status, body, _ = await get(
        app_client, "/trpc/user.getProfile,probe.nothing?batch=1", headers={"Authorization": "Bearer forged"}
    )
    assert status == 207
    assert_envelope(body[0], "UNAUTHORIZED", 401, "user.getProfile")
    assert body[1] == {"result": {}}  # a public procedure in the same batch still runs


async def test_batch_input_must_be_an_object(app_client: TestClient) -> None:
    status, body, _ = await get(app_client, "/trpc/probe.echo,probe.echo?batch=1", params={"input": "[1, 2]"})
    assert status == 400
    assert_envelope(body, "BAD_REQUEST", 400)


async def test_batch_with_malformed_json(app_client: TestClient) -> None:
    status, body = await post(app_client, "/trpc/auth.login,auth.login?batch=1", "{")
    assert status == 400
    assert_envelope(body, "PARSE_ERROR", 400, None)


async def test_jsonl_streaming_link_shape(app_client: TestClient) -> None:
    inputs = {"0": {"text": "a"}, "1": {"text": "b", "times": "x"}}
    resp = await app_client.get(
        "/trpc/probe.echo,probe.echo?batch=1",
        params={"input": json.dumps(inputs)},
        headers={"trpc-accept": "application/jsonl"},
    )
    assert resp.status == 200
    text = await resp.text()
    assert text.endswith("\n") and text.count("\n") == 1
    head = json.loads(text)
    assert set(head) == {"0", "1"}
    assert head["0"] == [[{"result": {"data": "a"}}]]
    assert_envelope(head["1"][0][0], "BAD_REQUEST", 400, "probe.echo")


# -- everything under /trpc is an envelope ----------------------------------------------------------


BROKEN_REQUESTS = [
    ("GET", "/trpc/no.such", None, {}),
    ("POST", "/trpc/no.such", b"{}", {}),
    ("GET", "/trpc/user.getProfile", None, {}),
    ("GET", "/trpc/user.getProfile", None, {"Authorization": "Bearer x.y.z"}),
    ("POST", "/trpc/user.updateSettings", b"{not json", {}),
    ("POST", "/trpc/auth.login", b"\xff", {}),
    ("POST", "/trpc/auth.login", b"[" * 5000, {}),
    ("POST", "/trpc/auth.login", b'{"email": {"$gt": ""}, "password": null}', {}),
    ("GET", "/trpc/a,b,c?batch=1", None, {}),
    ("GET", "/trpc/probe.echo?batch=1&input=%7B", None, {}),
    ("DELETE", "/trpc/auth.login", None, {}),
    ("POST", "/trpc/probe.boom", None, {}),
    ("GET", "/trpc/probe.echo?input=" + "%5B" * 2500, None, {}),
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), BROKEN_REQUESTS, ids=range(len(BROKEN_REQUESTS)))
async def test_every_failure_under_trpc_is_a_json_envelope(
    app_client: TestClient, method: str, url: str, body: bytes | None, headers: dict
) -> None:
    resp = await app_client.request(method, url, data=body, headers=headers)
    assert resp.headers["Content-Type"].startswith("application/json")
    parsed = json.loads(await resp.text())
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        code = item["error"]["data"]["code"]
        assert_envelope(item, code, EXPECTED_CODES[code][1])
    if "boom" not in url:
        assert resp.status < 500

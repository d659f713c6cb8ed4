"""The sign-in life cycle and error shapes through the real @trpc/client v11, against `trainer serve`.

Each script runs once per link the app may use: httpLink (one request per call), httpBatchLink
(calls merged, 207 on mixed outcomes) and httpBatchStreamLink (JSONL answer); and per database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.conftest import LiveServer

LINKS = ["single", "batch", "stream"]


def unauthorized(error: dict) -> bool:
    return error["kind"] == "TRPCClientError" and error["code"] == "UNAUTHORIZED" and error["httpStatus"] == 401


@pytest.mark.parametrize("link", LINKS)
def test_sign_in_life_cycle(run_node: Callable[..., Any], live_server: LiveServer, link: str) -> None:
    out = run_node("auth/flow.mjs", live_server, link)
    assert out["registered"] == {"email": out["email"], "tokenType": "Bearer"}
    assert out["loginHasTokens"] is True
    assert out["profile"]["email"] == out["email"] and out["profile"]["timezone"] == "UTC"
    assert out["concurrentSameUser"] is True
    assert out["updated"] == {"hrMax": 190, "hrRest": 50, "units": "imperial"}
    assert out["reset"] == "metric"
    assert out["rotated"] is True
    assert out["afterRefresh"] == out["email"]

    # The replayed refresh token is refused, and the family's other tokens stop working.
    assert unauthorized(out["replay"]), out["replay"]
    assert out["replay"]["message"] == "refresh token is not valid; sign in again"
    assert out["replay"]["path"] == "auth.refresh"
    assert unauthorized(out["newestRefreshAfterReplay"]), out["newestRefreshAfterReplay"]
    assert unauthorized(out["newestAccessAfterReplay"]), out["newestAccessAfterReplay"]
    # Another sign-in of the same account is untouched; logging it out ends it.
    assert out["otherFamily"] == out["email"]
    assert out["otherFamilyRefresh"] is True
    assert unauthorized(out["afterLogout"]), out["afterLogout"]


@pytest.mark.parametrize("link", LINKS)
def test_error_shapes_seen_by_the_client(run_node: Callable[..., Any], live_server: LiveServer, link: str) -> None:
    out = run_node("auth/errors.mjs", live_server, link)

    def check(name: str, code: str, status: int, json_rpc: int) -> dict:
        error = out[name]
        assert error["kind"] == "TRPCClientError", (name, error)
        assert (error["code"], error["httpStatus"], error["shapeCode"]) == (code, status, json_rpc), (name, error)
        return error

    assert check("noToken", "UNAUTHORIZED", 401, -32001)["message"] == "missing access token"
    assert check("forgedToken", "UNAUTHORIZED", 401, -32001)["message"] == "invalid access token"
    check("duplicate", "CONFLICT", 409, -32009)
    assert check("shortPassword", "BAD_REQUEST", 400, -32600)["message"] == "password must be at least 10 characters"
    assert check("badEmail", "BAD_REQUEST", 400, -32600)["issues"][0]["path"] == ["email"]
    wrong = check("wrongPassword", "UNAUTHORIZED", 401, -32001)
    assert wrong["message"] == check("unknownEmail", "UNAUTHORIZED", 401, -32001)["message"]
    check("unknownRefresh", "UNAUTHORIZED", 401, -32001)

    wrong_type = check("wrongType", "BAD_REQUEST", 400, -32600)
    assert wrong_type["issues"][0]["path"] == ["hrMax"] and wrong_type["path"] == "user.updateSettings"
    assert check("unknownKey", "BAD_REQUEST", 400, -32600)["issues"][0]["path"] == ["heartRateMax"]
    assert check("crossField", "BAD_REQUEST", 400, -32600)["message"] == "hrRest: must be below hrMax"
    assert check("unknownProcedure", "NOT_FOUND", 404, -32004)["path"] == "user.noSuchThing"
    check("queryAsMutation", "METHOD_NOT_SUPPORTED", 405, -32005)
    check("mutationAsQuery", "METHOD_NOT_SUPPORTED", 405, -32005)

    assert out["mixed"] == [
        {"kind": "ok"},
        {"kind": "error", "code": "BAD_REQUEST"},
        {"kind": "error", "code": "NOT_FOUND"},
        {"kind": "ok"},
    ]

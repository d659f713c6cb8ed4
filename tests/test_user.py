"""user.*: the caller's own profile and settings, on both databases."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.helpers import call, data, error_code, login, register
from trainer.profile import UserSettings


async def get_profile(client: TestClient, token: str) -> dict:
    status, body = await call(client, "user.getProfile", token=token)
    assert status == 200, body
    return data(body)


async def update(client: TestClient, token: str, patch: object) -> tuple[int, dict]:
    return await call(client, "user.updateSettings", patch, token=token)


def issue_paths(body: dict) -> list[list]:
    return [issue["path"] for issue in body["error"]["data"]["issues"]]


async def test_get_profile_of_a_new_account(client: TestClient) -> None:
    auth = await register(client, "new@example.com")
    profile = await get_profile(client, auth["accessToken"])
    assert profile["id"] == auth["user"]["id"]
    assert profile["email"] == "new@example.com"
    assert profile["isAdmin"] is False
    assert isinstance(profile["createdAt"], int)
    defaults = UserSettings().model_dump(mode="json", by_alias=True)
    assert profile["settings"] == defaults
    assert profile["settings"]["timezone"] == "UTC" and profile["settings"]["hrMax"] is None


async def test_update_is_partial_and_persists(client: TestClient) -> None:
    auth = await register(client, "p@example.com")
    token = auth["accessToken"]
    status, body = await update(client, token, {"hrMax": 190, "hrRest": 48, "timezone": "Europe/Berlin"})
    assert status == 200, body
    assert data(body)["settings"]["hrMax"] == 190

    status, body = await update(client, token, {"units": "imperial"})
    settings = data(body)["settings"]
    assert (settings["units"], settings["hrMax"], settings["hrRest"], settings["timezone"]) == (
        "imperial",
        190,
        48,
        "Europe/Berlin",
    )
    # Stored, not just echoed: a new session reads the same settings.
    again = await login(client, "p@example.com")
    assert (await get_profile(client, again["accessToken"]))["settings"] == settings


async def test_empty_patch_changes_nothing(client: TestClient) -> None:
    auth = await register(client, "e@example.com")
    before = await get_profile(client, auth["accessToken"])
    status, body = await update(client, auth["accessToken"], {})
    assert status == 200 and data(body) == before


async def test_null_resets_to_the_default(client: TestClient) -> None:
    token = (await register(client, "n@example.com"))["accessToken"]
    await update(client, token, {"timezone": "America/New_York", "hrMax": 185, "displayName": "N", "units": "imperial"})
    status, body = await update(client, token, {"timezone": None, "hrMax": None, "displayName": None})
    assert status == 200, body
    settings = data(body)["settings"]
    assert settings["timezone"] == "UTC"  # non-nullable: back to the default
    assert settings["hrMax"] is None and settings["displayName"] is None  # nullable: cleared
    assert settings["units"] == "imperial"  # not mentioned: kept


async def test_unknown_key_is_a_bad_request_naming_it(client: TestClient) -> None:
    token = (await register(client, "u@example.com"))["accessToken"]
    status, body = await update(client, token, {"hrMax": 190, "heartRateMax": 190})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert issue_paths(body) == [["heartRateMax"]]
    assert "heartRateMax" in body["error"]["message"]
    assert (await get_profile(client, token))["settings"]["hrMax"] is None  # nothing was applied


async def test_wrong_types_and_ranges_name_the_field(client: TestClient) -> None:
    token = (await register(client, "t@example.com"))["accessToken"]
    cases = [
        ({"hrMax": "fast"}, ["hrMax"]),
        ({"hrMax": 300}, ["hrMax"]),
        ({"hrRest": 10}, ["hrRest"]),
        ({"units": "furlongs"}, ["units"]),
        ({"quietHoursStart": "25:00"}, ["quietHoursStart"]),
        ({"notifications": "sometimes"}, ["notifications"]),
        ({"displayName": "x" * 101}, ["displayName"]),
    ]
    for patch, path in cases:
        status, body = await update(client, token, patch)
        assert (status, error_code(body)) == (400, "BAD_REQUEST"), patch
        assert issue_paths(body)[0] == path, body
        assert body["error"]["message"].startswith(path[0] + ": ")


async def test_unknown_time_zone(client: TestClient) -> None:
    token = (await register(client, "tz@example.com"))["accessToken"]
    status, body = await update(client, token, {"timezone": "Mars/Olympus_Mons"})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert "IANA" in body["error"]["message"]


async def test_resting_heart_rate_must_be_below_maximum(client: TestClient) -> None:
    token = (await register(client, "hr@example.com"))["accessToken"]
    status, body = await update(client, token, {"hrMax": 110, "hrRest": 110})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert body["error"]["message"] == "hrRest: must be below hrMax"

    assert (await update(client, token, {"hrMax": 180}))[0] == 200
    # Checked against the stored value too, not only within one patch.
    status, body = await update(client, token, {"hrRest": 105})
    assert status == 200
    status, body = await update(client, token, {"hrMax": 104})
    assert (status, body["error"]["message"]) == (400, "hrRest: must be below hrMax")
    settings = (await get_profile(client, token))["settings"]
    assert (settings["hrMax"], settings["hrRest"]) == (180, 105)


async def test_input_must_be_an_object(client: TestClient) -> None:
    token = (await register(client, "o@example.com"))["accessToken"]
    for patch in ([{"hrMax": 190}], "hrMax=190", 190):
        status, body = await update(client, token, patch)
        assert (status, error_code(body)) == (400, "BAD_REQUEST"), patch
    status, body = await call(client, "user.updateSettings", None, token=token)  # no body at all
    assert (status, body["error"]["message"]) == (400, "input is required")


async def test_sign_in_is_required(client: TestClient) -> None:
    status, body = await call(client, "user.getProfile")
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")
    status, body = await update(client, "", {"units": "imperial"})
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")


async def test_each_user_sees_and_changes_only_their_own_profile(client: TestClient) -> None:
    first = await register(client, "first@example.com")
    second = await register(client, "second@example.com")
    await update(client, first["accessToken"], {"displayName": "First", "hrMax": 200})

    seen_by_second = await get_profile(client, second["accessToken"])
    assert seen_by_second["id"] == second["user"]["id"] != first["user"]["id"]
    assert seen_by_second["email"] == "second@example.com"
    assert seen_by_second["settings"]["displayName"] is None

    await update(client, second["accessToken"], {"displayName": "Second"})
    assert (await get_profile(client, first["accessToken"]))["settings"]["displayName"] == "First"
    assert (await get_profile(client, first["accessToken"]))["settings"]["hrMax"] == 200


async def test_nul_character_is_a_bad_request_on_both_databases(client: TestClient) -> None:
    """PostgreSQL's jsonb cannot hold U+0000; it must be a 400 there as on SQLite, not a 500."""
    token = (await register(client, "nul@example.com"))["accessToken"]
    status, body = await update(client, token, {"displayName": "a\x00b"})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    status, body = await call(client, "auth.login", {"email": "nul\x00@example.com", "password": "whatever long"})
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert (await get_profile(client, token))["settings"]["displayName"] is None

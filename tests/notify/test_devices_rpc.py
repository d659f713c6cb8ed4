"""devices.register / unregister / list over tRPC, on both databases."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.helpers import call, data, error_code, login, register
from trainer.db import Database

TOKEN = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
ROTATED = "ExponentPushToken[yyyyyyyyyyyyyyyyyyyyyy]"


async def devices_of(client: TestClient, access: str) -> list[dict]:
    status, body = await call(client, "devices.list", token=access)
    assert status == 200, body
    return data(body)


async def register_device(client: TestClient, access: str, **fields: object) -> tuple[int, dict]:
    return await call(client, "devices.register", {"provider": "expo", "token": TOKEN, **fields}, token=access)


async def test_register_list_and_unregister(client: TestClient):
    auth = await register(client, "alice@example.com")
    access = auth["accessToken"]
    status, body = await register_device(client, access, platform="android", appVersion="1.4.2", deviceId="phone-1")
    assert status == 200, body
    device = data(body)
    assert device["provider"] == "expo" and device["platform"] == "android" and device["appVersion"] == "1.4.2"
    assert device["deviceId"] == "phone-1" and device["active"] and not device["hasSecret"]
    assert device["tokenHint"] == "…xxxx" and TOKEN not in str(body)
    assert [d["id"] for d in await devices_of(client, access)] == [device["id"]]

    status, again = await register_device(client, access, platform="android", appVersion="1.5.0")
    assert status == 200 and data(again)["id"] == device["id"] and data(again)["appVersion"] == "1.5.0"

    status, body = await call(client, "devices.unregister", {"provider": "expo", "token": TOKEN}, token=access)
    assert (status, data(body)) == (200, {"removed": 1})
    status, body = await call(client, "devices.unregister", {"provider": "expo", "token": TOKEN}, token=access)
    assert (status, data(body)) == (200, {"removed": 0})  # idempotent
    assert await devices_of(client, access) == []


async def test_a_token_belongs_to_the_last_user_who_registered_it(client: TestClient, db: Database):
    alice = (await register(client, "alice@example.com"))["accessToken"]
    bob = (await register(client, "bob@example.com"))["accessToken"]
    await register_device(client, alice)
    status, body = await register_device(client, bob)
    assert status == 200, body
    assert await devices_of(client, alice) == []
    assert [d["tokenHint"] for d in await devices_of(client, bob)] == ["…xxxx"]
    # Alice cannot remove what is now Bob's.
    status, body = await call(client, "devices.unregister", {"id": data(body)["id"]}, token=alice)
    assert data(body) == {"removed": 0}
    assert await db.fetchval("SELECT count(*) FROM devices") == 1


async def test_the_signed_in_install_is_the_device_and_its_rotated_token_replaces_the_old(client: TestClient):
    await register(client, "alice@example.com")
    session = await login(client, "alice@example.com", deviceId="install-42")
    access = session["accessToken"]
    status, body = await register_device(client, access, deviceId="something-else")
    assert status == 200 and data(body)["deviceId"] == "install-42" and data(body)["current"] is True

    await call(client, "devices.register", {"provider": "expo", "token": ROTATED}, token=access)
    listed = await devices_of(client, access)
    assert [(d["tokenHint"], d["deviceId"]) for d in listed] == [("…yyyy", "install-42")]

    other = (await login(client, "alice@example.com", deviceId="tablet"))["accessToken"]
    await call(client, "devices.register", {"provider": "expo", "token": TOKEN}, token=other)
    assert len(await devices_of(client, access)) == 2
    # Signing out of the phone: unregister with no arguments removes that install's addresses only.
    status, body = await call(client, "devices.unregister", {}, token=access)
    assert (status, data(body)) == (200, {"removed": 1})
    assert [d["deviceId"] for d in await devices_of(client, access)] == ["tablet"]


async def test_bad_registrations_are_refused_and_change_nothing(client: TestClient):
    access = (await register(client, "alice@example.com"))["accessToken"]
    status, body = await call(client, "devices.register", {"provider": "pager", "token": "x"}, token=access)
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert "pager" in body["error"]["message"]
    status, body = await call(client, "devices.register", {"provider": "expo", "token": "not-a-token"}, token=access)
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert "Expo push token" in body["error"]["message"]
    status, body = await call(client, "devices.register", {"provider": "ntfy", "token": "has spaces"}, token=access)
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    # No webhook URL is allowed unless the operator lists it.
    status, body = await call(
        client, "devices.register", {"provider": "webhook", "token": "http://169.254.169.254/latest"}, token=access
    )
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    status, body = await register_device(client, access, platform="fridge")
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    status, body = await call(client, "devices.unregister", {}, token=access)  # no install id in this session
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    status, body = await call(client, "devices.unregister", {"token": TOKEN}, token=access)
    assert (status, error_code(body)) == (400, "BAD_REQUEST")
    assert await devices_of(client, access) == []


async def test_devices_need_a_signed_in_user(client: TestClient):
    status, body = await call(client, "devices.register", {"provider": "expo", "token": TOKEN})
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")


async def test_a_registered_secret_is_stored_sealed(client: TestClient, db: Database):
    access = (await register(client, "alice@example.com"))["accessToken"]
    status, body = await call(
        client, "devices.register", {"provider": "ntfy", "token": "alice-runs", "secret": "tk_personal"}, token=access
    )
    assert status == 200 and data(body)["hasSecret"] is True and "tk_personal" not in str(body)
    sealed = await db.fetchval("SELECT secret_sealed FROM devices")
    assert sealed.startswith("v1.") and "tk_personal" not in sealed


async def test_registering_again_without_the_secret_keeps_it(client: TestClient, db: Database):
    access = (await register(client, "alice@example.com"))["accessToken"]
    topic = {"provider": "ntfy", "token": "alice-runs"}
    await call(client, "devices.register", {**topic, "secret": "tk_personal"}, token=access)
    sealed = await db.fetchval("SELECT secret_sealed FROM devices")
    status, body = await call(client, "devices.register", {**topic, "appVersion": "2.0"}, token=access)
    assert status == 200 and data(body)["hasSecret"] is True
    assert await db.fetchval("SELECT secret_sealed FROM devices") == sealed

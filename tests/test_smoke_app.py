"""A first end-to-end pass over the live app on both databases."""

from tests.helpers import call, data, register


async def test_register_then_profile(client):
    auth = await register(client, "runner@example.com")
    status, body = await call(client, "user.getProfile", token=auth["accessToken"])
    assert status == 200
    assert data(body)["email"] == "runner@example.com"


async def test_health(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    resp = await client.get("/readyz")
    assert (await resp.json())["status"] == "ready"

"""Fixtures for sync tests: a signed-in user with two devices on the live app, both databases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import call, data, login, register


@dataclass
class Device:
    """One app install of a user: its access token and the tRPC calls sync makes."""

    client: TestClient
    token: str
    user_id: str
    device_id: str | None

    async def pull(self, last_pulled_at: Any = None, **extra: Any) -> dict:
        status, body = await self.pull_raw(last_pulled_at, **extra)
        assert status == 200, body
        return data(body)

    async def pull_raw(self, last_pulled_at: Any = None, **extra: Any) -> tuple[int, dict]:
        payload = {"lastPulledAt": last_pulled_at, "schemaVersion": 1, "migration": None, **extra}
        return await call(self.client, "sync.pullChanges", payload, token=self.token)

    async def push_raw(self, changes: dict, last_pulled_at: Any) -> tuple[int, dict]:
        payload = {"changes": changes, "lastPulledAt": last_pulled_at}
        return await call(self.client, "sync.pushChanges", payload, token=self.token)

    async def push(self, changes: dict, last_pulled_at: Any) -> dict:
        status, body = await self.push_raw(changes, last_pulled_at)
        assert status == 200, body
        return data(body)

    async def sync(self, changes: dict | None, last_pulled_at: Any) -> tuple[dict, int]:
        """What WatermelonDB's synchronize() does: pull, then push local changes with the new timestamp."""
        pulled = await self.pull(last_pulled_at)
        if changes:
            await self.push(changes, pulled["timestamp"])
        return pulled, pulled["timestamp"]


async def sign_in(client: TestClient, email: str, device_id: str | None) -> Device:
    try:
        auth = await register(client, email)
    except AssertionError:
        auth = await login(client, email)
    if device_id is not None:
        auth = await login(client, email, deviceId=device_id)
    return Device(client, auth["accessToken"], auth["user"]["id"], device_id)


@pytest.fixture
async def phone(client: TestClient) -> Device:
    return await sign_in(client, "athlete@example.com", "phone-1")


@pytest.fixture
async def tablet(client: TestClient, phone: Device) -> Device:
    return await sign_in(client, "athlete@example.com", "tablet-1")


@pytest.fixture
async def intruder(client: TestClient) -> Device:
    return await sign_in(client, "intruder@example.com", "intruder-phone")


def raw(table: str, record_id: str, **values: Any) -> dict[str, Any]:
    """A record as WatermelonDB pushes it: every column (client defaults), plus _status/_changed."""
    from trainer.sync.tables import get_table

    record: dict[str, Any] = {"id": record_id, "_status": "created", "_changed": ""}
    for column in get_table(table).columns:
        record[column.name] = column.client_default
    if table == "activities":
        record.update(source="app", start_time=1_700_000_000_000)
    if table == "daily_metrics":
        record.update(source="app", day="2024-05-01")
    if table == "scheduled_workouts":
        record.update(day="2024-05-02", kind="easy", status="planned")
    if table == "training_plans":
        record.update(options="{}", sport="run", status="active")
    record.update(values)
    return record


def changes(**tables: dict[str, list]) -> dict[str, dict[str, list]]:
    """A change set with all three arrays for each named table."""
    return {name: {"created": [], "updated": [], "deleted": [], **entry} for name, entry in tables.items()}


def ids(pulled: dict, table: str, kind: str) -> list[str]:
    return sorted(r if isinstance(r, str) else r["id"] for r in pulled["changes"][table][kind])


def record(pulled: dict, table: str, record_id: str) -> dict[str, Any]:
    for kind in ("created", "updated"):
        for row in pulled["changes"][table][kind]:
            if row["id"] == record_id:
                return row
    raise AssertionError(f"{table}#{record_id} not in pull")

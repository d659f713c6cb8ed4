"""Real pulls and pushes feed the sync-size histogram of /metrics."""

from __future__ import annotations

import re

from tests.sync.conftest import changes, raw


def _sample(text: str, name: str, direction: str) -> float:
    match = re.search(rf'^{name}{{direction="{direction}"}} (\S+)$', text, flags=re.MULTILINE)
    assert match, f"{name} for {direction} not in /metrics"
    return float(match[1])


async def test_push_and_pull_sizes_are_observed(phone, client):
    t0 = (await phone.pull(None))["timestamp"]
    await phone.push(changes(daily_metrics={"created": [raw("daily_metrics", "m1"), raw("daily_metrics", "m2")]}), t0)
    await phone.pull(t0)
    text = await (await client.get("/metrics")).text()
    assert _sample(text, "trainer_sync_records_sum", "push") == 2
    assert _sample(text, "trainer_sync_records_count", "pull") == 2
    assert _sample(text, "trainer_sync_records_sum", "pull") >= 2  # the two rows (plus the day's state)

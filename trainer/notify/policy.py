"""How hard and how often the delivery runner tries: batch sizes, leases, retries, receipts."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    batch: int = 100  # notifications claimed per round
    max_rounds: int = 10  # rounds per run while full batches keep coming
    batch_slice: int = 100  # messages per call of a batching provider (Expo takes 100 per request)
    lease_s: float = 300.0  # a claim outlives the slowest send; a dead runner's claim expires after it
    send_timeout_s: float = 60.0  # per provider call; keeps a hung provider from holding leases
    concurrency: int = 16  # simultaneous sends to a provider without batch support
    max_attempts: int = 8  # per device; about 2 h of retries with the defaults
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0
    jitter: float = 0.2  # spread retries so a provider outage does not end in a thundering herd
    receipt_delay_s: float = 900.0  # Expo: receipts are ready about 15 minutes after sending
    receipt_give_up_s: float = 86400.0  # Expo keeps receipts for a day

    def backoff_s(self, attempts: int, retry_after: float | None = None) -> float:
        """Delay before attempt `attempts + 1`: doubling from the base, capped, never sooner than the
        provider asked (Retry-After)."""
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, attempts - 1))
        delay *= 1 + random.uniform(0, self.jitter)
        return max(delay, retry_after or 0.0)


DEFAULT_POLICY = Policy()

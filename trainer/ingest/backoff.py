"""How long a failed event waits before its next attempt."""

from __future__ import annotations

import random


def retry_delay_s(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with jitter, never sooner than the vendor's Retry-After.

    Attempt n (1-based) waits between half and all of base * 2^(n-1), capped at max_s: the jitter
    keeps events that failed together (a vendor outage) from all retrying in the same second, and
    the guaranteed half keeps the growth exponential. A vendor's Retry-After is a floor, not a
    replacement: retrying sooner than it asks only earns another 429.
    """
    ceiling = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    delay = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    if retry_after_s is not None and retry_after_s > delay:
        delay = retry_after_s + (rng or random).uniform(0, min(retry_after_s, base_s) / 10)
    return delay

"""The one error hierarchy of trainer.

Core code raises these; the edges translate them exactly once (rpc/errors.py for tRPC envelopes,
trainer/http.py for REST/webhook JSON, cli/ for one-line messages). Nothing below an edge knows
about HTTP statuses or tRPC codes.

    TrainerError
     ├── InvalidInput          the caller sent something malformed or out of range
     │    └── PayloadTooLarge  the body or batch is over a configured limit
     ├── Unauthenticated       no valid credentials (missing, expired, forged, revoked)
     ├── PermissionDenied      authenticated, but not allowed (disabled account, closed registration)
     ├── NotFound              no such thing *for this caller* (other users' rows look absent)
     ├── Conflict              the state changed underneath the request (sync push, unique email)
     ├── RateLimited           too many attempts; carries retry_after seconds
     ├── Unavailable           a dependency is down (database, vendor)
     └── ConfigError           a setting is invalid; names the setting
"""

from __future__ import annotations

from typing import Any


class TrainerError(Exception):
    """Base of every error trainer raises on purpose; its message is safe to show to the caller."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(TrainerError):
    """The request is malformed or a value is out of range; nothing was changed."""


class PayloadTooLarge(InvalidInput):
    """The body (or the number of records in it) is over a configured limit."""


class Unauthenticated(TrainerError):
    """Credentials are missing or not valid; the message never says which part was wrong."""


class PermissionDenied(TrainerError):
    """The caller is known but may not do this."""


class NotFound(TrainerError):
    """Absent, or owned by someone else: the two are indistinguishable on purpose."""


class Conflict(TrainerError):
    """The state changed underneath the request; the caller should re-read and retry."""


class RateLimited(TrainerError):
    """Too many attempts; retry_after says when trying again can succeed."""

    def __init__(self, message: str, *, retry_after: float, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(TrainerError):
    """A dependency (database, vendor API) cannot be reached right now."""


class ConfigError(TrainerError):
    """A setting is invalid. The message names the setting and what is wrong with it."""

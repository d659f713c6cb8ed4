"""Row ids: client-generated WatermelonDB ids are kept as they are; server rows get UUIDs."""

from __future__ import annotations

import re
import uuid

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ID_LENGTH = 64


def new_id() -> str:
    """An id for a row the server creates (a random UUID, which also fits the client id alphabet)."""
    return str(uuid.uuid4())


def is_valid_id(value: object) -> bool:
    """True for ids a client may send: 1-64 chars of [A-Za-z0-9_-]."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None

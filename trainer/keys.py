"""Purpose-bound keys derived from the one server secret.

Each use (access-token signing, token encryption at rest, webhook path tokens ...) gets its own key
through HKDF, so a key leaked from one use cannot forge or read another.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=64)
def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A `length`-byte key for `purpose`, derived from the server secret with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"trainer/v1", info=purpose.encode())
    return hkdf.derive(secret.encode())

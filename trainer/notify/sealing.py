"""Per-target secrets (a webhook signing key) encrypted at rest.

A copy of the database alone must not let anyone sign messages as this server, so the secret is
stored sealed with AES-GCM under a key derived from the server secret. The key is reached through
the notifier plugin's host (`derive_key`), which the API and the delivery runner both hold.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trainer.plugins import Plugin

PURPOSE = "notify:target-secret"
_PREFIX = "v1."
_NONCE_BYTES = 12


def key_for(plugin: Plugin) -> bytes:
    return plugin.host.derive_key(PURPOSE)


def seal(key: bytes, secret: str, *, bound_to: str) -> str:
    """Encrypt `secret`, bound to its address (`bound_to`) so a sealed value cannot be moved to another one."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), bound_to.encode())
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: bytes, sealed: str, *, bound_to: str) -> str | None:
    """The secret, or None when it cannot be opened (server secret rotated, row tampered with)."""
    if not sealed.startswith(_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :])
        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode()).decode()
    except (InvalidTag, ValueError):
        return None

"""HMAC webhook signatures for senders that sign: Standard Webhooks and GitHub-style `sha256=`.

Plugins of signing vendors call these from `verify_webhook`; the core's own outbound webhooks can
sign with them too. Both work on the raw body bytes exactly as received (a re-serialized JSON
body is not what the sender signed) and compare with `hmac.compare_digest`, so the time a
comparison takes says nothing about how much of a forged signature was right.

Every failure raises `Unauthenticated` with a message that does not say which check failed: a
forger learns nothing from the answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from trainer import clock
from trainer.errors import Unauthenticated

STANDARD_TOLERANCE_S = 300
"""How far a Standard Webhooks timestamp may be from our clock (the spec's five minutes)."""

_SECRET_PREFIX = "whsec_"
_REFUSED = "webhook signature is not valid"


# -- Standard Webhooks (https://www.standardwebhooks.com) -------------------------------------


def decode_standard_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional)."""
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret must not be empty")
    return key


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message: HMAC-SHA256 over `id.timestamp.body`."""
    mac = hmac.new(decode_standard_secret(secret), _signed_content(msg_id, timestamp, body), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def sign_standard(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three headers that make `body` a signed Standard Webhooks message."""
    ts = int(clock.now_s()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_signature(secret, msg_id, ts, body),
    }


def verify_standard(
    secrets: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = STANDARD_TOLERANCE_S,
    now_s: float | None = None,
) -> str:
    """Check a Standard Webhooks message; returns its `webhook-id` (the sender's dedupe key).

    `secrets` may list several keys (rotation on our side); `webhook-signature` may list several
    space-separated signatures (rotation on the sender's side). One match of any pair is enough.
    Signature versions other than `v1` (e.g. the asymmetric `v1a`) are skipped, not errors.
    """
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    raw_signatures = _header(headers, "webhook-signature")
    if not (msg_id and raw_ts and raw_signatures):
        raise Unauthenticated(_REFUSED)
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise Unauthenticated(_REFUSED) from None
    now = clock.now_s() if now_s is None else now_s
    if abs(now - timestamp) > tolerance_s:
        raise Unauthenticated("webhook timestamp is too old or too far in the future")
    offered = [
        _b64(value) for version, _, value in (s.partition(",") for s in raw_signatures.split()) if version == "v1"
    ]
    content = _signed_content(msg_id, timestamp, body)
    for secret in [secrets] if isinstance(secrets, str) else list(secrets):
        expected = hmac.new(decode_standard_secret(secret), content, hashlib.sha256).digest()
        # Compare against every offered signature (no early exit on the first match of a bad one).
        if any(hmac.compare_digest(expected, candidate) for candidate in offered if candidate is not None):
            return msg_id
    raise Unauthenticated(_REFUSED)


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


# -- GitHub style: X-Hub-Signature-256: sha256=<hex> -------------------------------------------


def hex_signature(secret: str | bytes, body: bytes, *, prefix: str = "sha256=") -> str:
    """`<prefix><hex HMAC-SHA256(secret, body)>`: GitHub's form; Polar and others use no prefix."""
    key = secret.encode() if isinstance(secret, str) else secret
    return prefix + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_hex(secret: str | bytes, signature: str | None, body: bytes, *, prefix: str = "sha256=") -> None:
    """Check a hex HMAC-SHA256 signature header such as GitHub's `X-Hub-Signature-256`."""
    if not signature:
        raise Unauthenticated(_REFUSED)
    expected = hex_signature(secret, body, prefix=prefix)
    # Hex case is not significant; compare bytes of equal meaning.
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Unauthenticated(_REFUSED)


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by case-insensitive name, from aiohttp's headers or a plain dict alike."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value.strip()

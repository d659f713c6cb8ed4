"""Webhook signatures against the published test vectors, and the ways a forgery can look."""

from __future__ import annotations

import random

import pytest

from trainer.errors import Unauthenticated
from trainer.ingest.backoff import retry_delay_s
from trainer.ingest.signatures import (
    decode_standard_secret,
    hex_signature,
    sign_standard,
    standard_signature,
    verify_hex,
    verify_standard,
)

# The Standard Webhooks specification's test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
HEADERS = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}

# GitHub's documented example for X-Hub-Signature-256.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_standard_webhooks_vector() -> None:
    assert standard_signature(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert sign_standard(SECRET, MSG_ID, BODY, timestamp=TIMESTAMP) == HEADERS
    assert verify_standard(SECRET, HEADERS, BODY, now_s=TIMESTAMP) == MSG_ID


def test_headers_are_found_whatever_their_case() -> None:
    shouting = {k.upper(): v for k, v in HEADERS.items()}
    assert verify_standard(SECRET, shouting, BODY, now_s=TIMESTAMP) == MSG_ID


def test_any_of_several_signatures_and_several_secrets_may_match() -> None:
    rotated = {**HEADERS, "webhook-signature": f"v1,bm90IGl0 v1a,c29tZXRoaW5nIGVsc2U= {SIGNATURE}"}
    assert verify_standard(SECRET, rotated, BODY, now_s=TIMESTAMP) == MSG_ID
    assert verify_standard(["whsec_b2xkIGtleQ==", SECRET], HEADERS, BODY, now_s=TIMESTAMP) == MSG_ID


def test_the_five_minute_tolerance() -> None:
    assert verify_standard(SECRET, HEADERS, BODY, now_s=TIMESTAMP + 300) == MSG_ID
    assert verify_standard(SECRET, HEADERS, BODY, now_s=TIMESTAMP - 300) == MSG_ID
    for now in (TIMESTAMP + 301, TIMESTAMP - 301):
        with pytest.raises(Unauthenticated):
            verify_standard(SECRET, HEADERS, BODY, now_s=now)


@pytest.mark.parametrize(
    "headers, body",
    [
        ({**HEADERS, "webhook-signature": "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, BODY),  # one bit off
        ({**HEADERS, "webhook-signature": SIGNATURE.replace("v1,", "v2,")}, BODY),  # unknown version only
        ({**HEADERS, "webhook-signature": "v1,not base64!"}, BODY),
        ({**HEADERS, "webhook-id": "msg_other"}, BODY),  # the id is signed
        ({**HEADERS, "webhook-timestamp": str(TIMESTAMP + 1)}, BODY),  # so is the timestamp
        ({**HEADERS, "webhook-timestamp": "yesterday"}, BODY),
        (HEADERS, b'{"test": 2432232315}'),  # and the raw body
        (HEADERS, b'{"test":2432232314}'),  # re-serialized JSON is not the signed bytes
        ({k: v for k, v in HEADERS.items() if k != "webhook-signature"}, BODY),
        ({}, BODY),
    ],
)
def test_forgeries_are_refused(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(Unauthenticated):
        verify_standard(SECRET, headers, body, now_s=TIMESTAMP)


def test_wrong_secret_is_refused_and_bad_secrets_are_errors() -> None:
    with pytest.raises(Unauthenticated):
        verify_standard("whsec_b3RoZXIgc2VjcmV0", HEADERS, BODY, now_s=TIMESTAMP)
    for bad in ("whsec_", "whsec_***"):
        with pytest.raises(ValueError):
            decode_standard_secret(bad)


def test_github_style_vector() -> None:
    assert hex_signature(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    verify_hex(GITHUB_SECRET, GITHUB_SIGNATURE, GITHUB_BODY)
    verify_hex(GITHUB_SECRET.encode(), GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256="), GITHUB_BODY)
    for forged in (None, "", GITHUB_SIGNATURE[:-1] + "0", GITHUB_SIGNATURE.removeprefix("sha256=")):
        with pytest.raises(Unauthenticated):
            verify_hex(GITHUB_SECRET, forged, GITHUB_BODY)
    with pytest.raises(Unauthenticated):
        verify_hex(GITHUB_SECRET, GITHUB_SIGNATURE, GITHUB_BODY + b" ")


def test_unprefixed_hex_for_vendors_like_polar() -> None:
    signature = hex_signature("polar-secret", b"{}", prefix="")
    assert len(signature) == 64
    verify_hex("polar-secret", signature, b"{}", prefix="")


# -- backoff --------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(3600.0, 30.0 * 2 ** (attempt - 1))
        delays = [retry_delay_s(attempt, base_s=30, max_s=3600, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered


def test_retry_after_is_a_floor_not_a_ceiling() -> None:
    rng = random.Random(1)
    assert 900 <= retry_delay_s(1, base_s=30, max_s=3600, retry_after_s=900, rng=rng) <= 903
    assert retry_delay_s(6, base_s=30, max_s=3600, retry_after_s=1, rng=rng) >= 480  # backoff already longer

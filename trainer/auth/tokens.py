"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored only as a hash)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import jwt

from trainer import clock
from trainer.errors import Unauthenticated
from trainer.keys import derive_key

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    family_id: str
    device_id: str | None
    jti: str
    expires_at: int  # seconds


class AccessTokens:
    """Signs and checks access JWTs with a key derived from the server secret."""

    def __init__(self, secret: str, *, issuer: str, audience: str, ttl_s: int) -> None:
        self._key = derive_key(secret, "access-token")
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def issue(self, user_id: str, family_id: str, device_id: str | None = None) -> tuple[str, int]:
        """A signed token and its expiry (seconds since the epoch)."""
        now = int(clock.now_s())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "fid": family_id,
        }
        if device_id:
            claims["did"] = device_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), claims["exp"]

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; Unauthenticated for anything else (with one vague message)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS, "verify_iat": False, "verify_exp": False},
                leeway=0,
            )
            # Expiry is checked against trainer's one clock (tests move it), not PyJWT's wall clock.
            if claims["exp"] <= clock.now_s():
                raise jwt.ExpiredSignatureError
            return AccessClaims(
                user_id=str(claims["sub"]),
                family_id=str(claims["fid"]),
                device_id=claims.get("did"),
                jti=str(claims["jti"]),
                expires_at=int(claims["exp"]),
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired") from None
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise Unauthenticated("invalid access token") from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Refresh tokens and invite codes are stored only as their SHA-256 (they are random, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()

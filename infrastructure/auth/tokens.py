"""JWT bearer tokens: HS256 only (pinned), with exp, iss and aud always checked."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

ALGORITHM = "HS256"


class Role(StrEnum):
    ADMIN = "admin"
    PHARMACY = "pharmacy"
    MEMBER = "member"
    OPS = "ops"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: Role
    pharmacy_id: str | None = None

    @property
    def key(self) -> str:
        """Scope for idempotency keys: one caller's keys never collide with another's."""
        return f"{self.role.value}:{self.subject}"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not ours."""


@dataclass(frozen=True, slots=True)
class TokenCodec:
    secret: str
    issuer: str
    audience: str

    def issue(
        self,
        role: Role,
        subject: str,
        pharmacy_id: str | None = None,
        ttl_seconds: int = 3600,
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, object] = {
            "sub": subject,
            "role": role.value,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + ttl_seconds,
        }
        if pharmacy_id is not None:
            claims["pharmacy_id"] = pharmacy_id
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Principal, float]:
        """The principal and the token's expiry (epoch seconds)."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        try:
            role = Role(str(claims.get("role")))
        except ValueError as exc:
            raise InvalidToken("unknown role") from exc
        pharmacy_id = claims.get("pharmacy_id")
        if pharmacy_id is not None and not isinstance(pharmacy_id, str):
            raise InvalidToken("pharmacy_id must be a string")
        if role is Role.PHARMACY and not pharmacy_id:
            raise InvalidToken("a pharmacy token needs pharmacy_id")
        principal = Principal(subject=str(claims["sub"]), role=role, pharmacy_id=pharmacy_id)
        return principal, float(claims["exp"])


class TokenVerifier:
    """Verifies tokens, remembering good ones until they expire.

    A pharmacy sends the same token with thousands of claims; checking its signature once
    instead of per request takes a fifth of the claim path's CPU off. Only tokens that passed
    the full check are remembered, and expiry is checked again on every use.
    """

    def __init__(self, codec: TokenCodec, max_entries: int = 10_000) -> None:
        self._codec = codec
        self._max_entries = max_entries
        self._known: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str, now: float | None = None) -> Principal:
        known = self._known.get(token)
        moment = time.time() if now is None else now
        if known is not None:
            if moment < known[1]:
                return known[0]
            del self._known[token]
            raise InvalidToken("Signature has expired")
        principal, expires = self._codec.verify_until(token)
        if len(self._known) >= self._max_entries:
            self._known.clear()  # crude but bounded; good tokens are simply verified again
        self._known[token] = (principal, expires)
        return principal

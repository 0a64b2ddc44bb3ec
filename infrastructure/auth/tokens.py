"""JWT bearer tokens: HS256 only (pinned), with exp, iss and aud always checked.

Every token names its key in the header (`kid`): it is signed with the current key and
verified with the key it names, the current or the previous one, so a key can be rotated
without logging everyone out. A token naming no key we hold is refused.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from infrastructure.settings import Settings

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash output


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
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Keys these are: role, subject and pharmacy. A chain's branches may
        share one `sub`; each is its own caller (issue 9).

        `role:sub` without a pharmacy; `role@pharmacy:sub` with one, the pharmacy escaped so
        that the first ':' always ends the prefix (roles hold neither '@' nor ':'), so no two
        callers share a scope whatever their ids contain. schemas/sql/0005 writes the same form.
        """
        if not self.pharmacy_id:
            return f"{self.role.value}:{self.subject}"
        branch = self.pharmacy_id.replace("%", "%25").replace(":", "%3A")
        return f"{self.role.value}@{branch}:{self.subject}"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not ours."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, secret: str, kid: str | None = None) -> SigningKey:
        """The key for `secret`; without an explicit id, one derived from the secret, so every
        process given the same secret names it alike (a hash prefix tells nothing usable)."""
        raw = secret.encode()
        return cls(kid or hashlib.sha256(b"healthpay-kid\0" + raw).hexdigest()[:16], raw)


@dataclass(frozen=True, slots=True)
class TokenCodec:
    key: SigningKey  # signs every new token; verifies the tokens that name it
    issuer: str
    audience: str
    previous: SigningKey | None = None  # verifies only: the tokens of the key rotated out

    @classmethod
    def from_settings(cls, settings: Settings, *, local_fallback: bool = False) -> TokenCodec:
        """Raises SettingsError (one line) when no usable key is configured."""
        current, previous = settings.signing_keys(local_fallback=local_fallback)
        return cls(current, settings.jwt_issuer, settings.jwt_audience, previous)

    def _key_named(self, kid: object) -> SigningKey:
        for key in (self.key, self.previous):
            if key is not None and kid == key.kid:
                return key
        raise InvalidToken("unknown key id" if kid is not None else "the token names no key")

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
        return jwt.encode(
            claims, self.key.secret, algorithm=ALGORITHM, headers={"kid": self.key.kid}
        )

    def verify(self, token: str) -> Principal:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Principal, float]:
        """The principal and the token's expiry (epoch seconds)."""
        try:
            key = self._key_named(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                key.secret,
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

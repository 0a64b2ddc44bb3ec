"""What the command API tests share: the app under test, tokens, bodies and store probes.

The app is built by the real composition root (`create_app`) over either the in-memory
store or the real PostgreSQL, driven in-process through httpx's ASGI transport with the
app's own lifespan. Store probes read what was really stored: the `events` table for
PostgreSQL (including `transaction_id`), the store itself for the in-memory twin.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from uuid import UUID

import httpx
import jwt
import psycopg
from fastapi import FastAPI

from command_service.app import create_app
from infrastructure.auth.tokens import Role, TokenCodec
from infrastructure.eventstore.memory import InMemoryEventStore
from infrastructure.eventstore.port import EventStore
from infrastructure.settings import Settings
from tests.isolation import isolated_settings
from tests.log_scan import personal

Backend = Literal["memory", "postgres"]
Headers = dict[str, str]
Ping = Callable[[], Awaitable[bool]]

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
SECRET = "api-tests-secret-0123456789abcdef-0123456789abcdef"
# Earlier versions signed with this when JWT_SECRET was unset; now refused as a setting
# (infrastructure/settings.py PUBLISHED_SECRETS) and so never a key.
OLD_DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
# The payment gateways' keys in these tests (each gateway issues the real one to the merchant).
FAWRY_SECURITY_KEY = "fawry-test-security-key"
PAYMOB_HMAC_SECRET = "paymob-test-hmac-secret"
PHARMACY = "pharmacy-1"
OTHER_PHARMACY = "pharmacy-2"
ALL_EVENTS = 1_000_000


def api_settings(postgres_url: str | None = None, **overrides: Any) -> Settings:
    """The services' settings in these tests (validated like a process's own)."""
    fields: dict[str, Any] = {
        "jwt_secret": SECRET,
        "pool_min_size": 1,
        "pool_max_size": 4,
        "environment": "test",
        "fawry_security_key": FAWRY_SECURITY_KEY,
        "paymob_hmac_secret": PAYMOB_HMAC_SECRET,
        **overrides,
    }
    if postgres_url is not None:
        fields["postgres_url"] = postgres_url
    return isolated_settings(**fields)


# --------------------------------------------------------------------------------- tokens


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Tokens:
    """Authorization headers for every kind of caller, good and bad."""

    settings: Settings

    @property
    def codec(self) -> TokenCodec:
        return TokenCodec.from_settings(self.settings)

    def admin(self, sub: str = "admin-1", pharmacy_id: str | None = None) -> Headers:
        return bearer(self.codec.issue(Role.ADMIN, sub, pharmacy_id))

    def ops(self, sub: str = "ops-1") -> Headers:
        return bearer(self.codec.issue(Role.OPS, sub))

    def pharmacy(self, pharmacy_id: str = PHARMACY, sub: str | None = None) -> Headers:
        return bearer(self.codec.issue(Role.PHARMACY, sub or f"{pharmacy_id}-user", pharmacy_id))

    def member(self, sub: str) -> Headers:
        return bearer(self.codec.issue(Role.MEMBER, sub))

    def for_role(self, role: str, *, member: str = "member-a") -> Headers:
        if role == "admin":
            return self.admin()
        if role == "ops":
            return self.ops()
        if role == "pharmacy":
            return self.pharmacy()
        if role == "member":
            return self.member(member)
        raise ValueError(role)

    def _claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "admin-1",
            "role": "admin",
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return claims

    def _signed(
        self, claims: Mapping[str, Any], secret: str | None = None, kid: str | None = None
    ) -> Headers:
        """Signed with the current key (or `secret`), naming the current key's id (or `kid`):
        only what a test changes makes the token wrong."""
        key = self.codec.key
        signing = key.secret if secret is None else secret.encode()
        header = {"kid": key.kid if kid is None else kid}
        return bearer(jwt.encode(dict(claims), signing, "HS256", headers=header))

    def expired(self) -> Headers:
        # An hour past expiry: far beyond any leeway a verifier might allow.
        past = int(time.time()) - 7200
        return self._signed(self._claims(iat=past, exp=past + 3600))

    def wrong_secret(self) -> Headers:
        return self._signed(self._claims(), secret="not-the-secret-" + "x" * 40)

    def wrong_audience(self) -> Headers:
        return self._signed(self._claims(aud="some-other-api"))

    def wrong_issuer(self) -> Headers:
        return self._signed(self._claims(iss="https://evil.example"))

    def alg_none(self) -> Headers:
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": self.codec.key.kid}).encode())
        payload = _b64(json.dumps(self._claims()).encode())
        return bearer(f"{header}.{payload}.")

    def unknown_key_id(self) -> Headers:
        """Signed with the right secret, naming a key the services do not hold."""
        return self._signed(self._claims(), kid="retired-key")

    def without_key_id(self) -> Headers:
        claims = self._claims()
        return bearer(jwt.encode(claims, self.codec.key.secret, "HS256"))

    def old_default_secret(self) -> Headers:
        """Signed with the secret earlier versions used when JWT_SECRET was unset (it was in
        the repository), naming the current key: what anyone could have minted."""
        return self._signed(self._claims(), secret=OLD_DEFAULT_SECRET)

    def unknown_role(self) -> Headers:
        return self._signed(self._claims(role="superuser"))

    def pharmacy_without_id(self) -> Headers:
        return self._signed(self._claims(role="pharmacy"))


# ------------------------------------------------------------------------------ the app


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    aggregate_id: UUID
    aggregate_type: str
    event_type: str
    version: int
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    transaction_id: int | None  # PostgreSQL only


@dataclass(slots=True)
class Api:
    backend: Backend
    app: FastAPI
    client: httpx.AsyncClient
    postgres_url: str | None

    @property
    def store(self) -> EventStore:
        store: EventStore = self.app.state.write_side.store
        return store

    async def events(self) -> list[StoredEvent]:
        """Everything stored, in position order, read from the store itself."""
        if self.postgres_url is None:
            return [
                StoredEvent(
                    e.position,
                    e.aggregate_id,
                    e.aggregate_type,
                    e.event_type,
                    e.version,
                    e.data,
                    e.metadata,
                    None,
                )
                for e in await self.store.read_all(0, ALL_EVENTS)
            ]
        async with await psycopg.AsyncConnection.connect(self.postgres_url) as conn:
            cur = await conn.execute(
                "SELECT position, aggregate_id, aggregate_type, event_type, version,"
                " event_data, metadata, transaction_id::text FROM events ORDER BY position"
            )
            rows = await cur.fetchall()
        return [StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7])) for r in rows]

    async def event_count(self) -> int:
        return len(await self.events())

    async def stream(self, aggregate_id: str | UUID) -> list[StoredEvent]:
        wanted = UUID(str(aggregate_id))
        return [e for e in await self.events() if e.aggregate_id == wanted]

    async def idempotency_rows(self) -> list[tuple[str, str]] | None:
        """(principal, key) of every row in idempotency_keys (PostgreSQL only; None on the
        in-memory store), in order."""
        if self.postgres_url is None:
            return None
        async with await psycopg.AsyncConnection.connect(self.postgres_url) as conn:
            cur = await conn.execute("SELECT principal, key FROM idempotency_keys ORDER BY 1, 2")
            return [(row[0], row[1]) for row in await cur.fetchall()]

    async def idempotency_record_count(self) -> int | None:
        """Rows in idempotency_keys (PostgreSQL only; None on the in-memory store)."""
        if self.postgres_url is None:
            return None
        async with await psycopg.AsyncConnection.connect(self.postgres_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM idempotency_keys")
            row = await cur.fetchone()
        assert row is not None
        count: int = row[0]
        return count


@asynccontextmanager
async def memory_store(settings: Settings) -> AsyncIterator[tuple[EventStore, Ping]]:
    async def ping() -> bool:
        return True

    yield InMemoryEventStore(), ping


@asynccontextmanager
async def running_api(
    backend: Backend,
    postgres_url: str | None = None,
    card_numbers: Callable[[], str] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Api]:
    """The command service as built by its composition root, started through its lifespan."""
    settings = api_settings(postgres_url, **settings_overrides)
    if backend == "memory":
        app = create_app(settings, memory_store, card_numbers=card_numbers)
    else:
        app = create_app(settings, card_numbers=card_numbers)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://command.test") as client:
            yield Api(backend, app, client, postgres_url)


# ------------------------------------------------------------------------------- checks


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert "traceback" not in response.text.lower()
    return body


async def refused(
    api: Api, send: Awaitable[httpx.Response], status: int, code: str
) -> dict[str, Any]:
    """Sends a request that must be refused with `status`/`code` and store nothing."""
    before = await api.events()
    response = await send
    body = assert_problem(response, status, code)
    after = await api.events()
    assert after == before, "a refused request stored events"
    return body


def created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def done(response: httpx.Response) -> dict[str, Any]:
    """A command that was carried out now (not replayed), whichever 2xx it answers with."""
    assert response.status_code in (200, 201), (response.status_code, response.text)
    assert "idempotent-replayed" not in response.headers
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------- bodies


def national_id(born: date, governorate: str = "01", serial: str = "0012", check: str = "3") -> str:
    """A structurally valid 14-digit Egyptian national id for someone born on `born`."""
    century = "2" if born.year < 2000 else "3"
    return personal(f"{century}{born:%y%m%d}{governorate}{serial}{check}")


def beneficiary_body(
    born: date = date(1990, 1, 15),
    *,
    relationship: str = "spouse",
    name: str = "Mona Ali",
    phone: str = "01012345678",
    serial: str = "0012",
) -> dict[str, Any]:
    return {
        "relationship": relationship,
        "nationalId": national_id(born, serial=serial),
        "name": name,
        "dateOfBirth": born.isoformat(),
        "phoneNumber": personal(phone),
    }


async def issue_card(
    api: Api, headers: Headers, user_id: str, card_type: str = "gold", **extra: Any
) -> dict[str, Any]:
    response = await api.client.post(
        f"{API}/medcards", json={"userId": user_id, "cardType": card_type, **extra}, headers=headers
    )
    return created(response)


async def claim(
    api: Api,
    headers: Headers,
    card_id: str,
    prescription_id: str,
    total: str,
    **extra: Any,
) -> httpx.Response:
    return await api.client.post(
        f"{API}/medcards/{card_id}/claims/prescriptions",
        json={"prescriptionId": prescription_id, "totalAmount": total, **extra},
        headers=headers,
    )


async def open_wallet(api: Api, headers: Headers, user_id: str) -> dict[str, Any]:
    response = await api.client.post(f"{API}/wallets", json={"userId": user_id}, headers=headers)
    return created(response)


async def top_up(
    api: Api, headers: Headers, wallet_id: str, amount: str, reference: str, gateway: str = "fawry"
) -> httpx.Response:
    return await api.client.post(
        f"{API}/wallets/{wallet_id}/topups",
        json={"gateway": gateway, "gatewayReference": reference, "amount": amount},
        headers=headers,
    )


async def set_copay_consent(
    api: Api, headers: Headers, wallet_id: str, per_claim: str, monthly: str
) -> httpx.Response:
    """The member's consent to claims' copayments from the wallet (none until set)."""
    return await api.client.put(
        f"{API}/wallets/{wallet_id}/copay-consent",
        json={"perClaimLimit": per_claim, "monthlyLimit": monthly},
        headers=headers,
    )


_REPEAT_STATUS = {"P": "D", "A": "S"}  # NCPDP: a paid claim's / approved reversal's repeat


def repeat_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer a repeat of the request that got `answer` gets: the same, but for NCPDP's
    transaction status of a claim or reversal, which names a repeat (D, S) as one."""
    fields = answer.get("ncpdp")
    if not isinstance(fields, dict):
        return answer
    status = fields["transactionStatus"]
    return {**answer, "ncpdp": {**fields, "transactionStatus": _REPEAT_STATUS.get(status, status)}}

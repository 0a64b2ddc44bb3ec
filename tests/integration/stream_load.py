"""The paced write load of the stream's fault test, and what it was answered.

Cards (a few with a small monthly limit), wallets for half of their holders, then, at a
fixed pace: new claims (some with items, some paying the copayment from the wallet), the
same prescription sent again with the same body (the original answer, nothing new) and with
another body (refused), reversals, wallet top-ups and top-ups repeated by gateway reference.
Every 2xx answer is kept as an `Ack`: the event it names, for comparing with the store.

With `retry_for_s` (the chaos run, tests/chaos) every request carries an Idempotency-Key of
its own and is sent again with it while it gets no answer, a 5xx or a 409 "still running",
as a client of a crashing service would: the first answer that comes is the one kept.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from tests.isolation import isolated_settings

API = "/api/v1"
CARDS = 20
WALLET_CARDS = 10  # cards 0..9 have a wallet: copayments from it, reversals refund it
CONSENTING = 8  # wallets 0..7 consent to copayments; 8 and 9 decline every one
TIGHT_CARDS = 5  # cards 0..4 have a small limit: partial approvals and rejections
RATE = 35.0  # operations per second (pacing, not correctness)
LANES = 10  # requests in flight at most
MAX_OPERATIONS = 3500
MONEY = Decimal("0.01")
Headers = dict[str, str]


@dataclass(frozen=True, slots=True)
class Callers:
    """Authorization headers of the admin, ops and two pharmacies (made when the test runs:
    the tokens expire)."""

    admin: Headers
    ops: Headers
    pharmacies: tuple[Headers, ...]

    @classmethod
    def make(cls, secret: str) -> Callers:
        d = isolated_settings()
        codec = TokenCodec(SigningKey.of(secret), d.jwt_issuer, d.jwt_audience)

        def bearer(role: Role, subject: str, pharmacy_id: str | None = None) -> Headers:
            return {"Authorization": f"Bearer {codec.issue(role, subject, pharmacy_id)}"}

        return cls(
            bearer(Role.ADMIN, "admin-1"),
            bearer(Role.OPS, "ops-1"),
            tuple(bearer(Role.PHARMACY, f"ph-{n}-user", f"ph-{n}") for n in (1, 2)),
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """A 2xx answer: the event it names (new, or the earlier one it replays)."""

    what: str
    aggregate_id: UUID
    version: int
    position: int
    event_type: str
    body: dict[str, Any]


@dataclass(slots=True)
class SentClaim:
    card: str
    pharmacy: int
    body: dict[str, Any]
    claim_id: str
    decision: str


@dataclass
class Load:
    client: httpx.AsyncClient
    callers: Callers
    cards: list[str]
    wallets: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(20240501))
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    acks: list[Ack] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    claims: list[SentClaim] = field(default_factory=list)
    reversal_asked: set[str] = field(default_factory=set)
    topups: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    issued: int = 0
    rate: float = RATE
    max_operations: int = MAX_OPERATIONS
    retry_for_s: float = 0.0  # > 0: retried with an Idempotency-Key (see the docstring)
    tries: int = 0  # requests sent, retries included
    retries: int = 0

    async def run(self) -> None:
        start = time.monotonic()

        async def lane() -> None:
            while not self.stop.is_set() and self.issued < self.max_operations:
                number = self.issued
                self.issued += 1
                delay = start + number / self.rate - time.monotonic()
                if delay > 0:  # pacing: spread the load over the whole scenario
                    try:
                        await asyncio.wait_for(self.stop.wait(), delay)
                        return
                    except TimeoutError:
                        pass
                await self.one(number)

        await asyncio.gather(*(lane() for _ in range(LANES)))

    async def send(
        self, what: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        """One request; with `retry_for_s`, sent again under its Idempotency-Key until it gets
        an answer that is not a failure of the service (raises the last TransportError if
        none came in time)."""
        if self.retry_for_s <= 0:
            self.tries += 1
            return await self.client.post(API + path, json=body, headers=headers)
        headers = {**headers, "Idempotency-Key": f"{what}-{uuid.uuid4()}"}
        deadline = time.monotonic() + self.retry_for_s
        pause = 0.05
        while True:
            self.tries += 1
            try:
                answer = await self.client.post(API + path, json=body, headers=headers)
                if not _worth_retrying(answer):
                    return answer
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if time.monotonic() > deadline:
                    return answer
            self.retries += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def one(self, number: int) -> None:
        roll = self.rng.random()
        # A reversed or rejected prescription may be claimed anew, so the claims sent again
        # (odd places) are never reversed, and only the even ones are.
        charged = [c for c in self.claims[1::2] if c.decision != "rejected"]
        reversible = [
            c
            for c in self.claims[::2]
            if c.decision != "rejected" and c.claim_id not in self.reversal_asked
        ]
        if roll < 0.08 and charged:
            await self.repeat_claim(self.rng.choice(charged))
        elif roll < 0.11 and charged:
            await self.conflicting_claim(self.rng.choice(charged))
        elif roll < 0.22 and reversible:
            await self.reverse(self.rng.choice(reversible))
        elif roll < 0.30:
            await self.top_up(self.rng.choice(self.wallets), number)
        elif roll < 0.32 and self.topups:
            wallet, body = self.rng.choice(self.topups)
            await self.post(
                "topup_repeat", f"/wallets/{wallet}/topups", body, self.callers.ops, {200}, wallet
            )
        else:
            await self.new_claim(number)

    async def post(
        self,
        what: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
        expected: set[int],
        aggregate_id: str,
    ) -> dict[str, Any] | None:
        try:
            answer = await self.send(what, path, body, headers)
        except httpx.TransportError as exc:  # not acknowledged: may or may not be stored
            self.unexpected.append(f"{what}: {type(exc).__name__}")
            return None
        self.statuses[(what, answer.status_code)] += 1
        if answer.status_code not in expected:
            self.unexpected.append(f"{what} {answer.status_code}: {answer.text[:200]}")
        if not 200 <= answer.status_code < 300:
            return None
        doc: dict[str, Any] = answer.json()
        self.acks.append(
            Ack(what, UUID(aggregate_id), doc["version"], doc["position"], doc["eventType"], doc)
        )
        return doc

    async def new_claim(self, number: int) -> None:
        card_index = number % CARDS
        total = Decimal(self.rng.randint(500, 9000)) / 100
        body: dict[str, Any] = {"prescriptionId": f"rx-{number}", "totalAmount": str(total)}
        if self.rng.random() < 0.3:
            first = (total / 3).quantize(MONEY)
            body["items"] = [
                {"drugCode": "D-1", "drugName": "Panadol", "quantity": 2, "unitPrice": str(first)},
                {
                    "drugCode": "D-2",
                    "drugName": "Augmentin",
                    "quantity": 1,
                    "unitPrice": str(total - 2 * first),
                },
            ]
        if card_index < WALLET_CARDS and self.rng.random() < 0.5:
            body["payCopaymentFromWallet"] = True
        pharmacy = self.rng.randrange(len(self.callers.pharmacies))
        card = self.cards[card_index]
        path = f"/medcards/{card}/claims/prescriptions"
        doc = await self.post("claim", path, body, self.callers.pharmacies[pharmacy], {201}, card)
        if doc is not None:
            self.claims.append(SentClaim(card, pharmacy, body, doc["claimId"], doc["decision"]))

    async def repeat_claim(self, sent: SentClaim) -> None:
        """The same prescription, the same body, again: the original answer, nothing new."""
        path = f"/medcards/{sent.card}/claims/prescriptions"
        doc = await self.post(
            "claim_repeat",
            path,
            sent.body,
            self.callers.pharmacies[sent.pharmacy],
            {200},
            sent.card,
        )
        if doc is not None and doc["claimId"] != sent.claim_id:
            self.unexpected.append(f"repeat of {sent.claim_id} answered {doc['claimId']}")

    async def conflicting_claim(self, sent: SentClaim) -> None:
        """The same prescription with another amount: refused, nothing stored."""
        body = {**sent.body, "totalAmount": str(Decimal(sent.body["totalAmount"]) + 1)}
        body.pop("items", None)
        path = f"/medcards/{sent.card}/claims/prescriptions"
        await self.post(
            "claim_conflict", path, body, self.callers.pharmacies[sent.pharmacy], {409}, sent.card
        )

    async def reverse(self, sent: SentClaim) -> None:
        self.reversal_asked.add(sent.claim_id)
        path = f"/medcards/{sent.card}/claims/{sent.claim_id}/reversal"
        await self.post(
            "reversal", path, {"reason": "fault test"}, self.callers.admin, {200}, sent.card
        )

    async def top_up(self, wallet: str, number: int) -> None:
        body = {
            "gateway": self.rng.choice(["fawry", "paymob"]),
            "gatewayReference": f"gw-{number}",
            "amount": str(Decimal(self.rng.randint(1000, 20000)) / 100),
        }
        if await self.post(
            "topup", f"/wallets/{wallet}/topups", body, self.callers.ops, {201}, wallet
        ):
            self.topups.append((wallet, body))


def _worth_retrying(answer: httpx.Response) -> bool:
    """No answer of the command's own: the service failed, or the same key is still running."""
    if answer.status_code >= 500:
        return True
    return answer.status_code == 409 and b"idempotency_key_in_use" in answer.content


async def seed(
    client: httpx.AsyncClient, callers: Callers, acks: list[Ack]
) -> tuple[list[str], list[str]]:
    cards: list[str] = []
    wallets: list[str] = []
    for i in range(CARDS):
        body = {
            "userId": f"u-{i}",
            "cardType": ("silver", "gold", "platinum")[i % 3],
            "monthlyLimit": "400.00" if i < TIGHT_CARDS else "100000.00",
        }
        answer = await client.post(API + "/medcards", json=body, headers=callers.admin)
        assert answer.status_code == 201, answer.text
        doc = answer.json()
        cards.append(doc["id"])
        acks.append(
            Ack("card", UUID(doc["id"]), doc["version"], doc["position"], doc["eventType"], doc)
        )
    for i in range(WALLET_CARDS):
        answer = await client.post(API + "/wallets", json={"userId": f"u-{i}"}, headers=callers.ops)
        assert answer.status_code == 201, answer.text
        doc = answer.json()
        wallets.append(doc["id"])
        acks.append(
            Ack("wallet", UUID(doc["id"]), doc["version"], doc["position"], doc["eventType"], doc)
        )
        top = {"gateway": "fawry", "gatewayReference": f"init-{i}", "amount": "150.00"}
        answer = await client.post(
            f"{API}/wallets/{doc['id']}/topups", json=top, headers=callers.ops
        )
        assert answer.status_code == 201, answer.text
        t = answer.json()
        acks.append(Ack("topup", UUID(doc["id"]), t["version"], t["position"], t["eventType"], t))
        if i < CONSENTING:  # a tight card's copay may reach 90: some exceed 60
            consent = {"perClaimLimit": "60.00", "monthlyLimit": "400.00"}
            answer = await client.put(
                f"{API}/wallets/{doc['id']}/copay-consent", json=consent, headers=callers.admin
            )
            assert answer.status_code == 200, answer.text
            c = answer.json()
            acks.append(
                Ack("consent", UUID(doc["id"]), c["version"], c["position"], c["eventType"], c)
            )
    return cards, wallets

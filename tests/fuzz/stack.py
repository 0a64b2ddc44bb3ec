"""The real services the fuzz runs against, on private ports: a PostgreSQL and a Kafka of the
test harnesses, a command service, the relay, a projection worker and the gateway, each its own
`healthpay` process as an operator starts it (tests/integration/stream_processes.py), plus a
seeded world so that reads and the member's and pharmacy's calls have something to reach.

No Cassandra: the fuzzed API never reads it (only the gateway's /health names it, and /health
is not part of the public document).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from tests.integration.kafka_harness import KafkaHarness
from tests.integration.postgres_harness import PostgresHarness
from tests.integration.stream_processes import Fleet, fleet_of
from tests.isolation import isolated_settings

SECRET = "fuzz-secret-0123456789abcdef-0123456789abcdef"
MEMBER = "fuzz-member-1"
PHARMACY = "fuzz-pharmacy-1"
API = "/api/v1"
ROLES = ("admin", "ops", "pharmacy", "member")
TOKEN_TTL = 3 * 3600
READ_WAIT_SECONDS = 0.3


@dataclass(frozen=True, slots=True)
class Stack:
    commands_url: str
    gateway_url: str
    tokens: dict[str, str]  # role -> bearer token
    seeded: dict[str, str]  # what exists: card, wallet, claim, beneficiary, debit, hold (the
    # member's), the pharmacy that posted the claim
    fleet: Fleet

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def tokens() -> dict[str, str]:
    d = isolated_settings()
    codec = TokenCodec(SigningKey.of(SECRET), d.jwt_issuer, d.jwt_audience)
    return {
        "admin": codec.issue(Role.ADMIN, "fuzz-admin", ttl_seconds=TOKEN_TTL),
        "ops": codec.issue(Role.OPS, "fuzz-ops", ttl_seconds=TOKEN_TTL),
        "pharmacy": codec.issue(Role.PHARMACY, "fuzz-ph-user", PHARMACY, ttl_seconds=TOKEN_TTL),
        "member": codec.issue(Role.MEMBER, MEMBER, ttl_seconds=TOKEN_TTL),
    }


@contextmanager
def running_stack() -> Iterator[Stack]:
    """Every server started here is stopped on the way out, whatever happened."""
    postgres = PostgresHarness.start()
    kafka: KafkaHarness | None = None
    try:
        kafka = KafkaHarness.start()
        topic = kafka.create_topic(partitions=3)
        url = postgres.create_database()
        with fleet_of(url, SECRET) as fleet:
            # a short minPosition bound: most fuzzed reads name ids that do not exist, and each
            # of those waits the whole bound before its 404; the gateways' keys set, so that a
            # fuzzed callback meets their signature check (401), not 503 gateway_not_configured
            fleet.env = {**fleet.env, "HEALTHPAY_ENV": "test", "PG_POOL_MAX": "8",
                         "READ_WAIT_SECONDS": str(READ_WAIT_SECONDS),
                         "FAWRY_SECURITY_KEY": "fuzz-fawry-key",
                         "PAYMOB_HMAC_SECRET": "fuzz-paymob-secret"}  # fmt: skip
            fleet.use_kafka(kafka.bootstrap, topic)
            commands = fleet.command_service()
            fleet.env = {**fleet.env, "COMMAND_SERVICE_URL": commands.url}
            fleet.relay()
            fleet.worker()
            gateway = fleet.gateway()
            issued = tokens()
            stack = Stack(commands.url, gateway.url, issued, {}, fleet)
            stack.seeded.update(seed(stack))
            yield stack
    finally:
        if kafka is not None:
            kafka.stop()
        postgres.stop()


def seed(stack: Stack) -> dict[str, str]:
    """The member's card (with a dependant), a claim on it by the fuzz pharmacy, and the
    member's wallet with money in it and a debit of it; waits until the gateway reads them."""
    with httpx.Client(base_url=stack.commands_url, timeout=30) as client:

        def post(path: str, body: dict[str, object], role: str = "admin") -> dict[str, object]:
            answer = client.post(API + path, json=body, headers=stack.headers(role))
            assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)
            result: dict[str, object] = answer.json()
            return result

        card = post("/medcards", {"userId": MEMBER, "cardType": "platinum"})
        card_id = str(card["id"])
        dependant = post(
            f"/medcards/{card_id}/beneficiaries",
            {
                "relationship": "child",
                "nationalId": "31005010100058",
                "name": "Fuzz Child",
                "dateOfBirth": "2010-05-01",
                "phoneNumber": "01012340058",
            },
        )
        wallet = post("/wallets", {"userId": MEMBER})
        wallet_id = str(wallet["id"])
        post(f"/wallets/{wallet_id}/topups", {"gateway": "fawry", "gatewayReference": "seed-1",
                                              "amount": "5000.00"})  # fmt: skip
        # the member's own purchase, for the refund route to reach (staff refund it; the
        # member's run meets 403 there)
        debit = post(f"/wallets/{wallet_id}/debits", {"amount": "500.00", "reference": "seed-1"},
                     role="member")  # fmt: skip
        claimed = post(
            f"/medcards/{card_id}/claims/prescriptions",
            {"prescriptionId": "rx-seed-1", "totalAmount": "120.00"},
            role="pharmacy",
        )
        held = post(
            f"/medcards/{card_id}/holds",
            {"prescriptionId": "rx-seed-hold", "amount": "50.00", "expiresInHours": 720},
            role="pharmacy",
        )
    seeded = {
        "card": card_id,
        "beneficiary": str(dependant["id"]),
        "wallet": wallet_id,
        "claim": str(claimed["claimId"]),
        "pharmacy": PHARMACY,  # whose statement lists the claim
        "debit": str(debit["transactionId"]),
        "hold": str(held["holdId"]),
    }
    _await_projected(stack, seeded["claim"], int(str(claimed["position"])))
    return seeded


def _await_projected(stack: Stack, claim_id: str, position: int) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        for _ in range(30):
            answer = client.get(
                f"{API}/claims/{claim_id}?minPosition={position}", headers=stack.headers("admin")
            )
            if answer.status_code == 200:
                return
        raise AssertionError(f"the seeded claim was never projected: {answer.text}")

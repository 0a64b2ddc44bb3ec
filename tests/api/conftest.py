"""Fixtures for the command API tests: the app over each event store, tokens, a seeded world.

`api` is a fresh app per test: over the in-memory store, and over a fresh migrated
PostgreSQL database (`postgres_url` from tests/conftest.py; marked `integration`).
`module_api` + `world` are one seeded app per test module and backend, for the many refusal
tests, which must store nothing and so cannot disturb each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.api.support import (
    API,
    OTHER_PHARMACY,
    Api,
    Backend,
    Tokens,
    api_settings,
    beneficiary_body,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    running_api,
    top_up,
)
from tests.integration.postgres_harness import PostgresHarness

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.integration),
]


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens(api_settings())


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    backend: Backend = request.param
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    async with running_api(backend, url) as running:
        yield running


@pytest.fixture(scope="module", params=BACKENDS)
async def module_api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    backend: Backend = request.param
    url: str | None = None
    harness: PostgresHarness | None = None
    if backend == "postgres":
        harness = request.getfixturevalue("postgres_harness")
        url = harness.create_database()
    try:
        async with running_api(backend, url) as running:
            yield running
    finally:
        if harness is not None and url is not None:
            harness.drop_database(url)


@dataclass(frozen=True, slots=True)
class World:
    """Ids that exist in `module_api`'s store.

    member-a holds `card_id` (with a dependant `beneficiary_id`, a claim `claim_id` booked
    and a hold `hold_id` placed by pharmacy-2) and `wallet_id` (with a debit `debit_id`);
    member-b holds `other_card_id` and `other_wallet_id`.
    """

    card_id: str
    beneficiary_id: str
    claim_id: str
    wallet_id: str
    debit_id: str
    other_card_id: str
    other_wallet_id: str
    hold_id: str  # an open hold on `card_id` placed by pharmacy-2

    def ids(self) -> dict[str, str]:
        return {
            "card": self.card_id,
            "beneficiary": self.beneficiary_id,
            "claim": self.claim_id,
            "wallet": self.wallet_id,
            "debit": self.debit_id,
            "hold": self.hold_id,
        }


@pytest.fixture(scope="module")
async def world(module_api: Api, tokens: Tokens) -> World:
    api = module_api
    card = await issue_card(api, tokens.admin(), "member-a")
    added = done(
        await api.client.post(
            f"{API}/medcards/{card['id']}/beneficiaries",
            json=beneficiary_body(),
            headers=tokens.admin(),
        )
    )
    booked = created(
        await claim(api, tokens.pharmacy(OTHER_PHARMACY), card["id"], "rx-world-1", "100.00")
    )
    held = created(
        await api.client.post(
            f"{API}/medcards/{card['id']}/holds",
            json={"amount": "10.00", "prescriptionId": "rx-world-hold"},
            headers=tokens.pharmacy(OTHER_PHARMACY),
        )
    )
    wallet = await open_wallet(api, tokens.ops(), "member-a")
    created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "fawry-world-1"))
    debited = created(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": "50.00", "reference": "order-world-1"},
            headers=tokens.ops(),
        )
    )
    other_card = await issue_card(api, tokens.admin(), "member-b")
    other_wallet = await open_wallet(api, tokens.ops(), "member-b")
    return World(
        card_id=card["id"],
        beneficiary_id=added["id"],
        claim_id=booked["claimId"],
        wallet_id=wallet["id"],
        debit_id=debited["transactionId"],
        other_card_id=other_card["id"],
        other_wallet_id=other_wallet["id"],
        hold_id=held["holdId"],
    )

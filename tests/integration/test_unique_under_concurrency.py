"""Uniqueness at write time under concurrency, checked in PostgreSQL.

Top-ups and claims: two real command-service processes, many HTTP connections, no card or
wallet affinity. Card numbers: two command services in this process over one database
(each its own cache, group-commit appender and connection pool), with number generators
injected to collide.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from random import Random

import httpx
import psycopg
import pytest

from domain.identity import new_card_number
from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from tests.api.support import API, Tokens, api_settings, running_api
from tests.integration.command_processes import CommandProcess
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration
SECRET = "integration-secret-0123456789abcdef0123"
WALLETS = 30


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[list[CommandProcess]]:
    processes = [CommandProcess(postgres_url, SECRET).start() for _ in range(2)]
    yield processes
    for process in processes:
        process.stop()


def _bearer(role: Role, subject: str, pharmacy_id: str | None = None) -> dict[str, str]:
    d = isolated_settings()
    codec = TokenCodec(SigningKey.of(SECRET), d.jwt_issuer, d.jwt_audience)
    token = codec.issue(role, subject, pharmacy_id)
    return {"Authorization": f"Bearer {token}"}


async def _post(
    client: httpx.AsyncClient, url: str, body: Mapping[str, object], headers: dict[str, str]
) -> httpx.Response:
    # 503 + Retry-After means "contended, send it again": a gateway or a POS retries alike.
    for _ in range(20):
        answer = await client.post(url, json=body, headers=headers)
        if answer.status_code != 503:
            return answer
        assert answer.headers["Retry-After"]
    return answer


async def test_one_gateway_reference_sent_to_many_wallets_at_once_credits_one(
    two_processes: list[CommandProcess], postgres_url: str
) -> None:
    ops = _bearer(Role.OPS, "ops-1")
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        wallets = []
        for n in range(WALLETS):
            opened = await client.post(
                two_processes[0].url + f"{API}/wallets", json={"userId": f"u-{n}"}, headers=ops
            )
            assert opened.status_code == 201, opened.text
            wallets.append(opened.json()["id"])

        async def top_up(attempt: int) -> tuple[str, httpx.Response]:
            # Every wallet twice, once through each process: the same callback delivered twice.
            wallet = wallets[attempt % WALLETS]
            target = two_processes[(attempt // WALLETS) % 2].url
            body = {"gateway": "fawry", "gatewayReference": "FWR-RACE", "amount": "50.00"}
            return wallet, await _post(client, f"{target}{API}/wallets/{wallet}/topups", body, ops)

        answers = await asyncio.gather(*(top_up(i) for i in range(2 * WALLETS)))

    credited = {wallet for wallet, a in answers if a.status_code in (200, 201)}
    assert len(credited) == 1, Counter(a.status_code for _, a in answers)
    [winner] = credited
    for wallet, answer in answers:
        if wallet != winner:
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "gateway_reference_taken"
    assert sorted(a.status_code for w, a in answers if w == winner) == [200, 201]
    with psycopg.connect(postgres_url) as conn:
        topups = conn.execute(
            "SELECT aggregate_id::text, event_id::text FROM events"
            " WHERE event_type = 'wallet.topped_up' AND event_data->>'gateway_reference' = %s",
            ("FWR-RACE",),
        ).fetchall()
        held = conn.execute(
            "SELECT event_id::text FROM reservations WHERE scope = 'gateway_reference'"
        ).fetchall()
    assert len(topups) == 1
    assert topups[0][0] == winner
    assert held == [(topups[0][1],)]


async def test_one_prescription_claimed_at_once_through_two_processes_charges_once(
    two_processes: list[CommandProcess], postgres_url: str
) -> None:
    admin = _bearer(Role.ADMIN, "root")
    pharmacy = _bearer(Role.PHARMACY, "ph-1", "ph-1")
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100), timeout=60) as client:
        issued = await client.post(
            two_processes[0].url + f"{API}/medcards",
            json={"userId": "u-rx", "cardType": "gold"},
            headers=admin,
        )
        card = issued.json()["id"]

        async def claim(attempt: int) -> httpx.Response:
            target = two_processes[attempt % 2].url
            total = "100.00" if attempt % 3 else "120.00"  # a third send another body
            body = {"prescriptionId": "rx-race", "totalAmount": total}
            url = f"{target}{API}/medcards/{card}/claims/prescriptions"
            return await _post(client, url, body, pharmacy)

        answers = await asyncio.gather(*(claim(i) for i in range(60)))

    charged = [a for a in answers if a.status_code in (200, 201)]
    assert sorted({a.status_code for a in charged}) == [200, 201]
    assert len({a.json()["claimId"] for a in charged}) == 1
    [first] = [a.json() for a in charged if a.status_code == 201]
    refused = [a for a in answers if a.status_code not in (200, 201)]
    assert {(a.status_code, a.json()["code"]) for a in refused} <= {(409, "duplicate_prescription")}
    # Whichever body won, every answer with the other body is the conflict.
    assert len(charged) in (40, 20)
    with psycopg.connect(postgres_url) as conn:
        claims = conn.execute(
            "SELECT event_id::text, event_data->>'claim_id' FROM events"
            " WHERE aggregate_id = %s AND event_type = 'medcard.claim_adjudicated'",
            (card,),
        ).fetchall()
        held = conn.execute(
            "SELECT event_id::text FROM reservations WHERE scope = 'prescription'"
        ).fetchall()
    assert [c[1] for c in claims] == [first["claimId"]]
    assert held == [(claims[0][0],)]


async def test_card_numbers_stay_unique_when_two_services_keep_drawing_the_same_ones(
    postgres_url: str,
) -> None:
    pool = [new_card_number(Random(seed)) for seed in range(100)]
    draws = itertools.count()

    def drawer(seed: int) -> Iterator[str]:
        rng = Random(seed)
        while True:
            next(draws)
            yield rng.choice(pool)

    tokens = Tokens(api_settings())
    first, second = drawer(1), drawer(2)
    async with (
        running_api("postgres", postgres_url, card_numbers=lambda: next(first)) as one,
        running_api("postgres", postgres_url, card_numbers=lambda: next(second)) as other,
    ):

        async def issue(n: int) -> httpx.Response:
            api = (one, other)[n % 2]
            body = {"userId": f"member-{n}", "cardType": "silver"}
            return await api.client.post(f"{API}/medcards", json=body, headers=tokens.ops())

        answers = await asyncio.gather(*(issue(n) for n in range(40)))

    issued = [a.json() for a in answers if a.status_code == 201]
    others = [(a.status_code, a.json()["code"]) for a in answers if a.status_code != 201]
    # Only a run of five taken draws in a row gives up (rare with 100 numbers for 40 cards).
    assert set(others) <= {(503, "card_number_unavailable")}
    assert len(issued) >= 30
    numbers = [card["cardNumber"] for card in issued]
    assert len(set(numbers)) == len(numbers)
    assert next(draws) > len(answers)  # the generators did collide, and were drawn again
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute(
            "SELECT event_data->>'card_number' FROM events WHERE event_type = 'medcard.issued'"
        ).fetchall()
        held = conn.execute(
            "SELECT r.key FROM reservations AS r JOIN events AS e ON e.event_id = r.event_id"
            " WHERE r.scope = 'card_number' AND e.event_type = 'medcard.issued'"
        ).fetchall()
    assert sorted(n for (n,) in stored) == sorted(numbers)
    assert sorted(n for (n,) in held) == sorted(numbers)

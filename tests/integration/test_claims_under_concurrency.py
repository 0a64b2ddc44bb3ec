"""Many connections, two processes, one card at its limit: exactly the limit is covered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import httpx
import psycopg
import pytest

from infrastructure.auth.tokens import Role
from tests.integration.command_processes import CommandProcess, bearer, two_command_processes

pytestmark = pytest.mark.integration


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[list[CommandProcess]]:
    yield from two_command_processes(postgres_url)


async def test_200_concurrent_claims_cover_exactly_the_limit(
    two_processes: list[CommandProcess], postgres_url: str
) -> None:
    admin = bearer(Role.ADMIN, "root")
    pharmacy = bearer(Role.PHARMACY, "ph-1", "ph-1")
    first = two_processes[0]
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        created = await client.post(
            first.url + "/api/v1/medcards",
            json={"userId": "u-limit", "cardType": "gold", "monthlyLimit": "5000"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        card_id = created.json()["id"]

        async def claim(i: int) -> httpx.Response:
            # Spread over both processes with no affinity: the store alone must keep order.
            target = two_processes[i % 2].url
            for _ in range(20):
                answer = await client.post(
                    f"{target}/api/v1/medcards/{card_id}/claims/prescriptions",
                    json={"prescriptionId": f"rx-{i}", "totalAmount": "100.00"},
                    headers=pharmacy,
                )
                # 503 + Retry-After is the service saying "contended, send it again": a pharmacy
                # retries the same body, which can never charge twice.
                if answer.status_code != 503:
                    return answer
                assert answer.headers["Retry-After"]
            return answer

        answers = await asyncio.gather(*(claim(i) for i in range(200)))

    failed = [a.text for a in answers if a.status_code not in {200, 201}]
    assert failed == []
    acknowledged = [a.json() for a in answers]
    covered = sum(Decimal(a["coveredAmount"]) for a in acknowledged)
    assert covered == Decimal("5000.00")
    decisions = {a["decision"] for a in acknowledged}
    assert decisions == {"approved", "partially_approved", "rejected"}

    with psycopg.connect(postgres_url) as conn:
        versions = [
            row[0]
            for row in conn.execute(
                "SELECT version FROM events WHERE aggregate_id = %s ORDER BY version", (card_id,)
            )
        ]
        stored_covered = conn.execute(
            "SELECT sum((event_data->>'covered_amount')::numeric) FROM events"
            " WHERE aggregate_id = %s AND event_type = 'medcard.claim_adjudicated'",
            (card_id,),
        ).fetchone()
        claim_ids = {
            row[0]
            for row in conn.execute(
                "SELECT event_data->>'claim_id' FROM events WHERE aggregate_id = %s"
                " AND event_type = 'medcard.claim_adjudicated'",
                (card_id,),
            )
        }
    assert versions == list(range(1, len(versions) + 1))  # no gap, no fork
    assert len(versions) == 1 + len(acknowledged)
    assert stored_covered is not None
    assert stored_covered[0] == Decimal("5000.00")
    assert claim_ids == {a["claimId"] for a in acknowledged}

"""SIGKILL the command service under load: no claim answered 2xx is lost, none is doubled."""

from __future__ import annotations

import asyncio
import threading

import httpx
import psycopg
import pytest

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from tests.integration.command_processes import CommandProcess
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration
SECRET = "integration-secret-0123456789abcdef0123"
CARDS = 20
CLAIMS = 600


def _header(role: Role, subject: str, pharmacy_id: str | None = None) -> dict[str, str]:
    d = isolated_settings()
    token = TokenCodec(SigningKey.of(SECRET), d.jwt_issuer, d.jwt_audience).issue(
        role, subject, pharmacy_id
    )
    return {"Authorization": f"Bearer {token}"}


async def test_sigkill_loses_no_acknowledged_claim(postgres_url: str) -> None:
    process = CommandProcess(postgres_url, SECRET).start()
    admin = _header(Role.ADMIN, "root")
    pharmacy = _header(Role.PHARMACY, "ph-1", "ph-1")
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
            cards = []
            for i in range(CARDS):
                answer = await client.post(
                    "/api/v1/medcards",
                    json={"userId": f"u-{i}", "cardType": "platinum", "monthlyLimit": 100_000_000},
                    headers=admin,
                )
                assert answer.status_code == 201, answer.text
                cards.append(answer.json()["id"])

            acknowledged: dict[str, str] = {}  # prescription id -> claim id answered 2xx
            unsure: list[int] = []  # sent, but no answer: may or may not have committed
            started = asyncio.Event()

            async def claim(i: int, semaphore: asyncio.Semaphore) -> None:
                async with semaphore:
                    if i == 50:
                        started.set()
                    try:
                        answer = await client.post(
                            f"/api/v1/medcards/{cards[i % CARDS]}/claims/prescriptions",
                            json={"prescriptionId": f"rx-{i}", "totalAmount": "10.00"},
                            headers=pharmacy,
                        )
                    except httpx.TransportError:
                        unsure.append(i)
                        return
                    if answer.status_code == 201:
                        acknowledged[f"rx-{i}"] = answer.json()["claimId"]
                    else:
                        unsure.append(i)

            semaphore = asyncio.Semaphore(32)
            load = asyncio.gather(*(claim(i, semaphore) for i in range(CLAIMS)))
            await started.wait()
            # Kill from a thread so the event loop keeps sending while the process dies.
            killer = threading.Thread(target=process.kill)
            killer.start()
            await load
            killer.join()
        assert acknowledged, "no claim was acknowledged before the kill"
        assert unsure, "the kill landed after the load: the test proved nothing"

        # The pharmacy retries what it is unsure about, with the same bodies, after a restart.
        process = CommandProcess(postgres_url, SECRET, port=process.port).start()
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
            for i in unsure:
                answer = await client.post(
                    f"/api/v1/medcards/{cards[i % CARDS]}/claims/prescriptions",
                    json={"prescriptionId": f"rx-{i}", "totalAmount": "10.00"},
                    headers=pharmacy,
                )
                assert answer.status_code in {200, 201}, answer.text
                acknowledged[f"rx-{i}"] = answer.json()["claimId"]
    finally:
        process.stop()

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT event_data->>'prescription_id', event_data->>'claim_id' FROM events"
            " WHERE event_type = 'medcard.claim_adjudicated'"
        ).fetchall()
        gaps = conn.execute(
            "SELECT aggregate_id FROM events GROUP BY aggregate_id HAVING max(version) <> count(*)"
        ).fetchall()
    stored: dict[str, str] = dict(rows)
    assert len(rows) == len(stored) == CLAIMS  # every prescription charged exactly once
    assert stored == acknowledged  # and each under the claim id its answer named
    assert gaps == []

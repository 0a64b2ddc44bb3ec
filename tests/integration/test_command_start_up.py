"""The command service starts without its database, says it is not ready, and serves once the
database is there (command_service/app.py: the pool connects in the background).

Real `healthpay serve-commands` processes on a private PostgreSQL: one whose database refuses
every connection while the process starts and for a while after, one whose URL points at a
port nobody listens on. Neither may block its start-up on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import UUID

import httpx
import psycopg
import pytest

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from infrastructure.http.probes import LIVE, READY
from tests.integration.command_processes import CommandProcess
from tests.integration.postgres_harness import PostgresHarness
from tests.integration.server_scripts import free_port
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration
SECRET = "start-up-secret-0123456789abcdef0123456"
# How long the database stays unreachable after the process answers: long enough for the
# pool's first attempts and the probes below to meet a refusing server.
DOWN_S = 2.0
# A bound on waiting for the pool's background reconnection (its back-off doubles from 1 s),
# not a timing that is asserted.
READY_WITHIN_S = 60.0


def _headers(role: Role, subject: str, pharmacy_id: str | None = None) -> dict[str, str]:
    d = isolated_settings()
    codec = TokenCodec(SigningKey.of(SECRET), d.jwt_issuer, d.jwt_audience)
    return {"Authorization": "Bearer " + codec.issue(role, subject, pharmacy_id)}


def _not_ready(process: CommandProcess) -> None:
    live = httpx.get(process.url + LIVE, timeout=10)
    assert live.status_code == 200, live.text
    ready = httpx.get(process.url + READY, timeout=10)
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["services"] == {"postgres": "down"}


@pytest.fixture
def process_factory() -> Iterator[list[CommandProcess]]:
    started: list[CommandProcess] = []
    yield started
    for process in started:
        process.stop()


def test_it_starts_while_postgres_refuses_and_serves_when_it_is_back(
    postgres_harness: PostgresHarness, postgres_url: str, process_factory: list[CommandProcess]
) -> None:
    process = CommandProcess(postgres_url, SECRET)
    with postgres_harness.unreachable(postgres_url):
        process_factory.append(process.start(until=LIVE))  # would time out if start-up waited
        _not_ready(process)
        time.sleep(DOWN_S)
        _not_ready(process)
    deadline = time.monotonic() + READY_WITHIN_S
    while httpx.get(process.url + READY, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "not ready after PostgreSQL came back"
        time.sleep(0.2)

    card = httpx.post(
        process.url + "/api/v1/medcards",
        json={"userId": "u-start-up", "cardType": "gold", "monthlyLimit": "5000"},
        headers=_headers(Role.ADMIN, "root"),
        timeout=30,
    )
    assert card.status_code == 201, card.text
    claim = httpx.post(
        f"{process.url}/api/v1/medcards/{card.json()['id']}/claims/prescriptions",
        json={"prescriptionId": "rx-start-up", "totalAmount": "100.00"},
        headers=_headers(Role.PHARMACY, "ph-1", "ph-1"),
        timeout=30,
    )
    assert claim.status_code == 201, claim.text
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT event_type FROM events WHERE aggregate_id = %s ORDER BY version",
            (UUID(card.json()["id"]),),
        ).fetchall()
    assert [r[0] for r in rows] == ["medcard.issued", "medcard.claim_adjudicated"]


def test_it_starts_with_nothing_listening_at_the_postgres_url(
    process_factory: list[CommandProcess],
) -> None:
    url = f"postgresql://healthpay@127.0.0.1:{free_port()}/healthpay_ledger?connect_timeout=2"
    process = CommandProcess(url, SECRET)
    process_factory.append(process.start(until=LIVE))
    _not_ready(process)
    health = httpx.get(process.url + "/health", timeout=10)
    assert health.status_code == 503, health.text
    assert health.json()["services"] == {"postgres": "down"}

"""A claim posted over REST reaches Kafka through the relay and the read models through the
projection worker, over the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from command_service.relay.publisher import KafkaPublisher
from command_service.relay.relay import Relay
from infrastructure.postgres.pool import Pool
from projection_service.worker import ProjectionWorker
from tests.api.support import Api, Tokens, api_settings, running_api

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(postgres_url: str) -> AsyncIterator[Api]:
    async with running_api("postgres", postgres_url) as running:
        yield running


async def _until(pool: Pool, sql: str, expected: object) -> None:
    deadline = time.monotonic() + 60
    while True:
        async with pool.connection() as conn:
            row = await (await conn.execute(sql)).fetchone()
        if row is not None and row[0] == expected:
            return
        assert time.monotonic() < deadline, f"{sql} gave {row}, wanted {expected!r}"
        await asyncio.sleep(0.1)


async def test_a_claim_reaches_the_read_models_through_kafka(
    api: Api, postgres_pool: Pool, postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    pool = postgres_pool
    tokens = Tokens(api_settings())
    card = await api.client.post(
        "/api/v1/medcards",
        json={"userId": "test-user-1", "cardType": "gold", "monthlyLimit": 5000},
        headers=tokens.admin(),
    )
    card_id = card.json()["id"]
    claims = []
    for i, amount in enumerate(["350.00", "120.50", "80.00"]):
        answer = await api.client.post(
            f"/api/v1/medcards/{card_id}/claims/prescriptions",
            json={"prescriptionId": f"rx-test-{i}", "totalAmount": amount},
            headers=tokens.pharmacy(),
        )
        assert answer.status_code == 201, answer.text
        claims.append(answer.json())

    stop_relay = threading.Event()
    relay = Relay(postgres_url, KafkaPublisher(kafka_bootstrap, kafka_topic), idle_wait=0.01)
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,))
    relay_thread.start()
    stop_worker = asyncio.Event()
    worker = ProjectionWorker(pool, postgres_url, kafka_bootstrap, kafka_topic, poll_seconds=0.1)
    worker_task = asyncio.create_task(worker.run(stop_worker))
    try:
        # the seed's check, verbatim
        await _until(
            pool,
            "SELECT prescription_id FROM prescription_claims ORDER BY claimed_at DESC LIMIT 1",
            "rx-test-2",
        )
        spent = sum(Decimal(c["coveredAmount"]) for c in claims)
        await _until(
            pool, f"SELECT current_month_spent FROM medcards WHERE id = '{card_id}'", spent
        )
        await _until(pool, "SELECT count(*) FROM prescription_claims", 3)
    finally:
        stop_worker.set()
        await worker_task
        stop_relay.set()
        relay_thread.join(30)
    async with pool.connection() as conn:
        offsets = await (
            await conn.execute("SELECT sum(next_offset) FROM projection_offsets")
        ).fetchone()
    assert offsets is not None
    assert offsets[0] == 4  # one card + three claims, each consumed exactly once

"""`healthpay projections redrive`: parked events applied once what parked them is fixed, their
dead letters removed; what is still refused stays parked, counted again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID

import pytest

from cli import projections as ops
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool
from projection_service.read_models import KafkaLocation, park_raw
from projection_service.rebuild import rebuild
from projection_service.redrive import redrive_read_models
from tests.api.support import running_api
from tests.isolation import isolated_settings
from tests.projections.support import project, rows, write_world

pytestmark = pytest.mark.integration

PARKED = "SELECT event_id, attempts FROM parked_events WHERE projection = 'read_models'"
CLAIMS = "SELECT prescription_id FROM prescription_claims WHERE prescription_id = %s"


@pytest.fixture
async def parked(postgres_pool: Pool, postgres_url: str) -> tuple[RecordedEvent, RecordedEvent]:
    """Two parked events: one the projector of the day refused although the store holds it
    well (a projector fault, since fixed), one whose stored payload no read model can hold
    (an old release wrote a drug name past VARCHAR(200)); and a raw message."""
    async with running_api("postgres", postgres_url) as api:
        await write_world(api)
        events = await api.store.read_all(0, 10_000)
    by_rx = {e.data.get("prescription_id"): e for e in events}
    fixed, refused = by_rx["rx-c2"], by_rx["rx-items"]
    await rows(
        postgres_pool,
        "UPDATE events SET event_data = jsonb_set(event_data, '{items,0,drug_name}',"
        " to_jsonb(repeat('x', 201))) WHERE event_id = %s RETURNING 1",
        refused.event_id,
    )
    items = [dict(i) for i in refused.data["items"]]
    items[0]["drug_name"] = "x" * 201
    batch = [
        replace(e, data={**e.data, "covered_amount": "lots"})
        if e is fixed
        else replace(e, data={**e.data, "items": items})
        if e is refused
        else e
        for e in events
    ]
    result = await project(postgres_pool, batch, park=True)
    assert set(result.parked) == {fixed.event_id, refused.event_id}
    async with postgres_pool.connection() as conn, conn.transaction():
        location = KafkaLocation("healthpay.events.wallet", 0, 7)
        await park_raw(conn, b"not an envelope", "MalformedEnvelope", location=location)
    return fixed, refused


async def test_redrive_applies_what_now_applies_and_keeps_what_is_still_refused(
    postgres_pool: Pool,
    postgres_url: str,
    parked: tuple[RecordedEvent, RecordedEvent],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, refused = parked
    assert await rows(postgres_pool, CLAIMS, "rx-c2") == []
    settings = isolated_settings(postgres_url=postgres_url)

    code = await asyncio.to_thread(ops.run_redrive, settings, "read_models", False)

    out = capsys.readouterr().out
    assert code == 1  # an event stays parked: a scheduled redrive alerts
    assert "read_models: 1 parked events redriven" in out
    assert f"still parked: {refused.event_id}" in out
    assert "1 unreadable messages (not an envelope) kept" in out
    assert await rows(postgres_pool, CLAIMS, "rx-c2") == [("rx-c2",)]
    assert sorted(await rows(postgres_pool, PARKED), key=str) == sorted(
        [(refused.event_id, 2), (None, 1)], key=str
    )
    # the live tables are what a replay of the store gives
    assert (await rebuild(postgres_pool, dry_run=True)).identical


async def test_a_dry_run_names_what_would_be_redriven_and_changes_nothing(
    postgres_pool: Pool, parked: tuple[RecordedEvent, RecordedEvent]
) -> None:
    fixed, refused = parked
    report, rebuilt = await redrive_read_models(postgres_pool, dry_run=True)
    assert (report.redriven, report.still_parked) == ((fixed.event_id,), (refused.event_id,))
    assert (report.unreadable, report.swapped) == (1, False)
    assert rebuilt is not None
    assert not rebuilt.swapped
    assert await rows(postgres_pool, CLAIMS, "rx-c2") == []
    ids = {UUID(str(r[0])) for r in await rows(postgres_pool, PARKED) if r[0] is not None}
    assert ids == {fixed.event_id, refused.event_id}


async def test_nothing_parked_means_no_rebuild(
    postgres_pool: Pool, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_api("postgres", postgres_url) as api:
        await write_world(api)
        await project(postgres_pool, await api.store.read_all(0, 10_000))
    settings = isolated_settings(postgres_url=postgres_url)
    assert await asyncio.to_thread(ops.run_redrive, settings, "read_models", False) == 0
    assert "read_models: nothing parked, nothing to redrive" in capsys.readouterr().out

"""Poison events: refused before any write, parked as dead letters, their streams go on."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool
from projection_service.offsets import save_offsets
from projection_service.read_models import (
    KafkaLocation,
    PoisonEventError,
    apply,
    apply_or_park,
    park_raw,
)
from tests.api.support import running_api
from tests.projections.support import World, pool_snapshot, project, rows, write_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def written(postgres_url: str) -> tuple[World, list[RecordedEvent]]:
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        return world, await api.store.read_all(0, 10_000)


def _stream(events: list[RecordedEvent], aggregate_id: str) -> list[RecordedEvent]:
    return [e for e in events if e.aggregate_id == UUID(aggregate_id)]


def _claim(events: list[RecordedEvent], prescription_id: str) -> RecordedEvent:
    [event] = [e for e in events if e.data.get("prescription_id") == prescription_id]
    return event


async def test_apply_refuses_a_poison_event_before_writing_anything(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    _, events = written
    unknown = replace(events[-1], event_type="medcard.teleported")
    async with postgres_pool.connection() as conn, conn.transaction():
        with pytest.raises(PoisonEventError) as caught:
            await apply(conn, [*events[:-1], unknown])
        assert caught.value.event is unknown
        assert "unknown event type" in caught.value.reason
        # the transaction is still good, and nothing was written in it
        cur = await conn.execute("SELECT count(*) FROM medcards")
        assert await cur.fetchone() == (0,)


async def test_parked_events_land_in_parked_events_and_the_stream_goes_on(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    world, events = written
    partial = _claim(events, "rx-c2")  # the capped card's partially approved claim
    bad_payload = replace(partial, data={**partial.data, "covered_amount": "lots"})
    newer_schema = replace(_claim(events, "rx-c3"), schema_version=7)
    batch = [bad_payload if e is partial else e for e in events]
    batch = [newer_schema if e.event_id == newer_schema.event_id else e for e in batch]

    def locate(event: RecordedEvent) -> KafkaLocation:
        return KafkaLocation("healthpay.events.wallet", 3, 1000 + event.position)

    async with postgres_pool.connection() as conn, conn.transaction():
        result = await apply_or_park(conn, batch, locate=locate)
    assert set(result.parked) == {partial.event_id, newer_schema.event_id}
    assert result.applied == len(events) - 2

    parked = await rows(
        postgres_pool,
        "SELECT event_id, error, topic, partition, kafka_offset, payload->>'covered_amount',"
        " attempts FROM parked_events ORDER BY position",
    )
    assert [(r[0], r[2], r[3], r[4], r[6]) for r in parked] == [
        (partial.event_id, "healthpay.events.wallet", 3, 1000 + partial.position, 1),
        (newer_schema.event_id, "healthpay.events.wallet", 3, 1000 + newer_schema.position, 1),
    ]
    assert parked[0][1].startswith("invalid payload: covered_amount:")
    assert parked[0][5] == "lots"
    assert "unknown event type" in parked[1][1]

    # The stream passed both: the reversal after them applied, and the card's totals are
    # right, because events carry absolute values.
    card = UUID(world.capped_card)
    [(version, spent)] = await rows(
        postgres_pool, "SELECT version, current_month_spent FROM medcards WHERE id = %s", card
    )
    assert version == len(_stream(events, world.capped_card))
    assert spent == Decimal("80.00")
    claims = await rows(
        postgres_pool,
        "SELECT prescription_id FROM prescription_claims WHERE medcard_id = %s ORDER BY 1",
        card,
    )
    assert claims == [("rx-c1",)]
    assert await rows(postgres_pool, "SELECT * FROM projection_held_events") == []

    # Redelivered, the batch changes nothing and parks nothing again.
    before = await pool_snapshot(postgres_pool)
    again = await project(postgres_pool, batch, park=True)
    assert (again.applied, again.parked) == (0, ())
    assert await pool_snapshot(postgres_pool) == before


async def test_a_row_the_database_refuses_is_found_and_parked(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    _, events = written
    with_items = _claim(events, "rx-items")
    items = [dict(i) for i in with_items.data["items"]]
    items[0]["drug_name"] = "x" * 201  # prescription_items.drug_name is VARCHAR(200)
    too_long = replace(with_items, data={**with_items.data, "items": items})
    batch = [too_long if e is with_items else e for e in events]

    result = await project(postgres_pool, batch, park=True)
    assert result.parked == (with_items.event_id,)
    assert result.applied == len(events) - 1
    [(error,)] = await rows(postgres_pool, "SELECT error FROM parked_events")
    assert error.startswith("StringDataRightTruncation: value too long")
    assert "DETAIL" not in error  # it would quote the failing row (PII in other tables)
    assert await rows(postgres_pool, "SELECT * FROM prescription_items") == []
    [(claims,)] = await rows(postgres_pool, "SELECT count(*) FROM prescription_claims")
    assert claims == sum(1 for e in events if e.event_type == "medcard.claim_adjudicated") - 1


async def test_a_poison_event_ahead_of_a_gap_is_parked_in_its_place(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    """The stream's later part arrives first, poison included; the earlier part then
    closes the gap and the stream runs through, passing the parked event's place."""
    world, events = written
    stream = _stream(events, world.capped_card)
    poisoned = replace(stream[2], event_type="medcard.unheard_of")
    late = [stream[0]]
    early = [stream[1], poisoned, *stream[3:]]

    first = await project(postgres_pool, early, park=True)
    assert first.parked == (poisoned.event_id,)
    assert (first.applied, first.held) == (0, len(early) - 1)
    second = await project(postgres_pool, late, park=True)
    assert (second.applied, second.released, second.skipped) == (
        len(stream) - 1,
        len(stream) - 2,
        1,
    )
    [(version, has_held)] = await rows(
        postgres_pool,
        "SELECT version, has_held FROM projection_streams WHERE aggregate_id = %s",
        UUID(world.capped_card),
    )
    assert (version, has_held) == (len(stream), False)


async def test_the_last_event_of_a_stream_parked_still_moves_the_stream_on(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    world, events = written
    stream = _stream(events, world.wallet_b)
    await project(postgres_pool, stream[:-1])
    broken = replace(stream[-1], data={})
    result = await project(postgres_pool, [broken], park=True)
    assert result.parked == (broken.event_id,)
    [(version,)] = await rows(
        postgres_pool,
        "SELECT version FROM projection_streams WHERE aggregate_id = %s",
        UUID(world.wallet_b),
    )
    assert version == len(stream)  # a later event of the wallet will not wait for it


async def test_a_message_that_is_not_an_envelope_is_kept_raw(postgres_pool: Pool) -> None:
    async with postgres_pool.connection() as conn, conn.transaction():
        await park_raw(conn, b"\xffnot json", "MalformedEnvelope: ...", location=None)
    assert await rows(postgres_pool, "SELECT raw, event_id FROM parked_events") == [
        (b"\xffnot json", None)
    ]


async def test_offsets_commit_with_the_batch_or_not_at_all(
    postgres_pool: Pool, written: tuple[World, list[RecordedEvent]]
) -> None:
    _, events = written
    offsets = "SELECT partition, next_offset FROM projection_offsets ORDER BY 1"

    async def batch_that_fails_after_storing_offsets() -> None:
        async with postgres_pool.connection() as conn, conn.transaction():
            await apply(conn, events[:5])
            await save_offsets(conn, "read_models", "topic", {0: 5})
            raise ConnectionResetError("the commit never happened")

    with pytest.raises(ConnectionResetError):
        await batch_that_fails_after_storing_offsets()
    assert await rows(postgres_pool, offsets) == []
    assert await rows(postgres_pool, "SELECT * FROM medcards") == []
    async with postgres_pool.connection() as conn, conn.transaction():
        await apply(conn, events[:5])
        await save_offsets(conn, "read_models", "topic", {0: 5, 1: 2})
    assert await rows(postgres_pool, offsets) == [(0, 5), (1, 2)]

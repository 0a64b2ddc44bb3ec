"""Redelivery, replays and out-of-order batches never change the read models (docs/design.md §5)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import pytest
from psycopg import sql

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool
from projection_service.read_models import PROJECTED_TABLES, apply
from tests.api.support import running_api
from tests.projections.support import (
    Snapshot,
    pool_snapshot,
    project,
    rows,
    stored_events,
    write_world,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def events(postgres_url: str) -> list[RecordedEvent]:
    async with running_api("postgres", postgres_url) as api:
        await write_world(api)
        return await stored_events(api)


@pytest.fixture
async def in_order(postgres_pool: Pool, events: list[RecordedEvent]) -> Snapshot:
    """The read models projected from the whole stream in one batch, then wiped."""
    await project(postgres_pool, events)
    built = await pool_snapshot(postgres_pool)
    await _truncate(postgres_pool)
    return built


async def _truncate(pool: Pool) -> None:
    async with pool.connection() as conn:
        names = sql.SQL(", ").join(sql.Identifier(t) for t in PROJECTED_TABLES)
        await conn.execute(sql.SQL("TRUNCATE {}").format(names))


def _chunks(events: Sequence[RecordedEvent], rng: random.Random) -> list[list[RecordedEvent]]:
    chunks: list[list[RecordedEvent]] = []
    rest = list(events)
    while rest:
        size = rng.randint(1, 9)
        chunks.append(rest[:size])
        rest = rest[size:]
    return chunks


async def test_the_same_batch_twice_changes_nothing(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    first = await project(postgres_pool, events)
    again = await project(postgres_pool, events)
    assert (first.applied, first.duplicates) == (len(events), 0)
    assert (again.applied, again.duplicates, again.held) == (0, len(events), 0)
    assert await pool_snapshot(postgres_pool) == in_order


async def test_one_batch_with_every_event_twice_counts_once(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    result = await project(postgres_pool, [*events, *reversed(events)])
    assert (result.applied, result.duplicates) == (len(events), len(events))
    assert await pool_snapshot(postgres_pool) == in_order


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_batches_in_any_order_converge(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot, seed: int
) -> None:
    """Random batches, shuffled: later versions of a stream often come before earlier ones
    (held, then released), and some batches come twice."""
    rng = random.Random(seed)
    chunks = _chunks(events, rng)
    rng.shuffle(chunks)
    chunks += rng.sample(chunks, k=3)  # redelivered
    for chunk in chunks:
        await project(postgres_pool, chunk)
    assert await pool_snapshot(postgres_pool) == in_order


async def test_every_event_alone_in_reverse_order(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    held = released = 0
    for event in reversed(events):
        result = await project(postgres_pool, [event])
        held += result.held
        released += result.released
    first_versions = sum(1 for e in events if e.version == 1)
    assert held == released == len(events) - first_versions
    assert await pool_snapshot(postgres_pool) == in_order
    assert await rows(postgres_pool, "SELECT * FROM projection_held_events") == []
    assert await rows(postgres_pool, "SELECT * FROM projection_streams WHERE has_held") == []


async def test_a_replayed_old_batch_after_newer_ones_is_a_no_op(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    await project(postgres_pool, events)
    for size in (1, 5, len(events) // 2):
        result = await project(postgres_pool, events[:size])
        assert (result.applied, result.duplicates) == (0, size)
    assert await pool_snapshot(postgres_pool) == in_order


async def test_row_versions_guard_even_without_stream_cursors(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    """Should the cursors be lost, every row still refuses what is not newer than itself."""
    await project(postgres_pool, events)
    async with postgres_pool.connection() as conn:
        await conn.execute("TRUNCATE projection_streams")
    await project(postgres_pool, events)
    after = await pool_snapshot(postgres_pool)
    assert {t: r for t, r in after.items() if t != "projection_streams"} == {
        t: r for t, r in in_order.items() if t != "projection_streams"
    }


async def test_apply_needs_the_callers_transaction(
    postgres_pool: Pool, events: list[RecordedEvent]
) -> None:
    async with postgres_pool.connection() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await apply(conn, events)


async def test_a_rolled_back_batch_leaves_nothing(
    postgres_pool: Pool, events: list[RecordedEvent]
) -> None:
    class Crash(Exception):
        pass

    async def batch_that_fails_after_applying() -> None:
        async with postgres_pool.connection() as conn, conn.transaction():
            await apply(conn, events)
            raise Crash  # e.g. storing the Kafka offsets failed

    with pytest.raises(Crash):
        await batch_that_fails_after_applying()
    assert await rows(postgres_pool, "SELECT * FROM medcards") == []
    # and the batch applies in full when it comes again
    assert (await project(postgres_pool, events)).applied == len(events)


async def test_events_of_unrelated_streams_may_interleave_freely(
    postgres_pool: Pool, events: list[RecordedEvent], in_order: Snapshot
) -> None:
    """Kafka orders a partition, not the topic: wallets before cards is as good."""
    by_stream: dict[object, list[RecordedEvent]] = {}
    for event in events:
        by_stream.setdefault(event.aggregate_id, []).append(event)
    for stream in reversed(list(by_stream.values())):
        await project(postgres_pool, stream)
    assert await pool_snapshot(postgres_pool) == in_order
    # positions are only informative: the same events with other positions change only those
    shifted = [replace(e, position=e.position + 1000) for e in events]
    assert (await project(postgres_pool, shifted)).duplicates == len(events)

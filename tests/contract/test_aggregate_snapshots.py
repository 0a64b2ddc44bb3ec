"""Long streams load from a snapshot plus the events after it, on both stores; the cache
holds states within its byte budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from random import Random
from uuid import uuid4

import pytest

from command_service.aggregates import (
    EVICTED_SNAPSHOT_AFTER,
    MEDCARD,
    SNAPSHOT_AFTER,
    Aggregates,
    Loaded,
    card_size,
)
from command_service.execution import CommandContext, Executor, Plan, StreamWrite
from domain.identity import new_card_number
from domain.medcard.claims import adjudicate
from domain.medcard.commands import ClaimItem, ClaimPrescription, IssueCard
from domain.medcard.decider import decide
from domain.medcard.refills import FILLS_KEPT
from domain.medcard.state import CLAIM_WINDOW, evolve
from infrastructure.eventstore.group_commit import GroupCommitAppender
from infrastructure.eventstore.memory import InMemoryEventStore
from infrastructure.eventstore.port import (
    AppendRequest,
    Committed,
    EventStore,
    NewEvent,
    StreamAppend,
)
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import open_pool

AT = datetime(2026, 11, 22, 10, tzinfo=UTC)
BIG_CACHE = 64 * 1024 * 1024


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield InMemoryEventStore()
    else:
        pool = await open_pool(request.getfixturevalue("postgres_url"), min_size=1, max_size=4)
        yield PostgresEventStore(pool)
        await pool.close()


class Card:
    """One card written through an Executor over `store`."""

    def __init__(self, store: EventStore, aggregates: Aggregates) -> None:
        self.appender = GroupCommitAppender(store)
        self.executor = Executor(store, self.appender, aggregates)
        self.card_id = uuid4()

    async def step(self, make_events: object) -> None:
        card_id = self.card_id

        async def plan() -> Plan:
            loaded = await self.executor.aggregates.load(MEDCARD, card_id)
            events = make_events(loaded.state)  # type: ignore[operator]
            return Plan([StreamWrite(MEDCARD, card_id, loaded, events)], events[-1], card_id)

        await self.executor.run([card_id], plan, CommandContext(at=AT, metadata={}))

    def issue_command(self) -> IssueCard:
        return IssueCard(
            card_id=self.card_id,
            card_number=new_card_number(Random()),
            user_id=f"u-{self.card_id}",
            card_type="platinum",
            at=AT,
            may_override_terms=True,
            monthly_limit=Decimal("1000000.00"),
        )

    async def issue(self) -> None:
        command = self.issue_command()
        await self.step(lambda state: decide(state, command))

    async def claim(self, prescription_id: str) -> None:
        command = _claim(prescription_id)
        await self.step(lambda state: adjudicate(state, None, command).card_events)


async def test_a_cold_load_of_a_long_stream_takes_and_then_uses_a_snapshot(
    store: EventStore,
) -> None:
    # A long stream without a snapshot (written straight to the store, as an older version
    # of the service or a bulk import would leave it).
    writer = Card(store, Aggregates(store, cache_bytes=BIG_CACHE))
    card_id = writer.card_id
    claims = SNAPSHOT_AFTER + 20
    state = None
    for i in range(claims + 1):
        events = decide(state, writer.issue_command()) if i == 0 else None
        if events is None:
            events = adjudicate(state, None, _claim(f"rx-{i - 1}")).card_events
        new = [NewEvent(uuid4(), e.event_type, e.schema_version, e.payload(), AT) for e in events]
        [done] = await store.append_batch(
            [AppendRequest([StreamAppend(card_id, "medcard", i, new)])]
        )
        assert isinstance(done, Committed)
        for event in events:
            state = evolve(state, event)
    warm = Loaded(state, claims + 1, "medcard")
    assert await store.load_snapshot(card_id) is None

    first = Aggregates(store, cache_bytes=BIG_CACHE)
    cold = await first.load(MEDCARD, card_id)
    assert first.snapshots_taken == 1
    snapshot = await store.load_snapshot(card_id)
    assert snapshot is not None
    assert snapshot.version == claims + 1
    assert replace(cold, snapshot_version=0) == warm

    await writer.claim("rx-after")
    second = Aggregates(store, cache_bytes=BIG_CACHE)
    after = await second.load(MEDCARD, card_id)
    assert second.snapshots_taken == 0  # one event past the snapshot: folded, no new snapshot
    assert after.version == claims + 2
    assert after.state is not None
    assert after.state.spent_in("2026-11") == Decimal("9.50") * (claims + 1)
    assert len(after.state.recent_claims) == CLAIM_WINDOW
    assert after.state.claims_forgotten == claims + 1 - CLAIM_WINDOW
    assert after.state.recent_claims[-1].prescription_id == "rx-after"
    fills = after.state.refills.fills
    assert len(fills) == FILLS_KEPT
    assert any(key.endswith("/D-rx-after") for key in fills)
    await writer.appender.close()


async def test_the_writing_process_snapshots_a_card_it_keeps_cached(store: EventStore) -> None:
    aggregates = Aggregates(store, cache_bytes=BIG_CACHE)
    writer = Card(store, aggregates)
    await writer.issue()
    for i in range(2 * SNAPSHOT_AFTER + 5):
        await writer.claim(f"rx-{i}")
    await aggregates.close()  # the snapshots are written in the background
    assert aggregates.snapshots_taken == 2
    snapshot = await store.load_snapshot(writer.card_id)
    assert snapshot is not None
    assert snapshot.version == 2 * SNAPSHOT_AFTER
    # A cold load elsewhere folds only what came after it.
    cold = Aggregates(store, cache_bytes=BIG_CACHE)
    loaded = await cold.load(MEDCARD, writer.card_id)
    assert loaded.version == 2 * SNAPSHOT_AFTER + 6
    assert loaded == await aggregates.load(MEDCARD, writer.card_id)
    assert cold.snapshots_taken == 0
    await writer.appender.close()


async def test_the_cache_keeps_its_byte_budget_dropping_the_least_recently_used(
    store: EventStore,
) -> None:
    probe = Card(store, Aggregates(store, cache_bytes=BIG_CACHE))
    await probe.issue()
    one_card = card_size((await probe.executor.aggregates.load(MEDCARD, probe.card_id)).state)  # type: ignore[arg-type]
    budget = 3 * one_card + one_card // 2
    aggregates = Aggregates(store, cache_bytes=budget)
    cards = [Card(store, aggregates) for _ in range(6)]
    for card in cards:
        await card.issue()
    assert len(aggregates) == 3
    assert aggregates.cache_bytes == 3 * one_card <= budget
    misses = aggregates.cache_misses
    await aggregates.load(MEDCARD, cards[-1].card_id)  # most recent: still cached
    assert aggregates.cache_misses == misses
    await aggregates.load(MEDCARD, cards[0].card_id)  # evicted: loaded from the store
    assert aggregates.cache_misses == misses + 1
    assert len(aggregates) == 3
    # A card grows by its claims until its window is full; the budget holds throughout.
    for i in range(CLAIM_WINDOW + 5):
        await cards[0].claim(f"rx-{i}")
        assert aggregates.cache_bytes <= budget
    for card in [probe, *cards]:
        await card.appender.close()


def _claim(prescription_id: str) -> ClaimPrescription:
    # A drug of its own with a days supply: the snapshots carry the card's capped map of last
    # fills (domain/medcard/refills.py), full and dropping its oldest in the long streams.
    supplied = ClaimItem(uuid4(), f"D-{prescription_id}", "drug", 1, Decimal("10.00"), 30)
    return ClaimPrescription(
        claim_id=uuid4(),
        prescription_id=prescription_id,
        pharmacy_id="ph-1",
        total_amount=Decimal("10.00"),
        at=AT,
        items=(supplied,),
    )


async def test_a_state_dropped_from_the_cache_is_snapshotted_as_it_goes(
    store: EventStore,
) -> None:
    writer = Aggregates(store, cache_bytes=BIG_CACHE)
    busy, small, other = (Card(store, writer) for _ in range(3))
    for card in (busy, small, other):
        await card.issue()
    for i in range(EVICTED_SNAPSHOT_AFTER):
        await busy.claim(f"rx-{i}")
    for i in range(EVICTED_SNAPSHOT_AFTER - 2):
        await small.claim(f"rx-{i}")
    head = await writer.load(MEDCARD, busy.card_id)
    assert head.state is not None
    assert await store.load_snapshot(busy.card_id) is None

    # Another process whose cache holds one such card: each load drops the one before.
    reader = Aggregates(store, cache_bytes=card_size(head.state))
    for card in (busy, small, other):
        await reader.load(MEDCARD, card.card_id)
    assert len(reader) == 1
    await reader.close()
    snapshot = await store.load_snapshot(busy.card_id)
    assert snapshot is not None
    assert snapshot.version == EVICTED_SNAPSHOT_AFTER + 1  # its head when it was dropped
    assert await store.load_snapshot(small.card_id) is None  # too few events to be worth it
    cold = await Aggregates(store, cache_bytes=BIG_CACHE).load(MEDCARD, busy.card_id)
    assert cold.snapshot_version == cold.version == head.version
    assert cold.state == head.state
    for card in (busy, small, other):
        await card.appender.close()

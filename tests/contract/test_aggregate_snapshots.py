"""Long streams load from a snapshot plus the events after it, on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from random import Random
from uuid import uuid4

import pytest

from command_service.aggregates import MEDCARD, SNAPSHOT_AFTER, Aggregates
from command_service.execution import CommandContext, Executor, Plan, StreamWrite
from domain.identity import new_card_number
from domain.medcard.claims import adjudicate
from domain.medcard.commands import ClaimPrescription, IssueCard
from domain.medcard.decider import decide
from infrastructure.eventstore.group_commit import GroupCommitAppender
from infrastructure.eventstore.memory import InMemoryEventStore
from infrastructure.eventstore.port import EventStore
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import open_pool

AT = datetime(2026, 11, 22, 10, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield InMemoryEventStore()
    else:
        pool = await open_pool(request.getfixturevalue("postgres_url"), min_size=1, max_size=4)
        yield PostgresEventStore(pool)
        await pool.close()


async def test_a_cold_load_of_a_long_stream_takes_and_then_uses_a_snapshot(
    store: EventStore,
) -> None:
    appender = GroupCommitAppender(store)
    executor = Executor(store, appender, Aggregates(store, cache_size=10))
    card_id = uuid4()
    issue = IssueCard(
        card_id=card_id,
        card_number=new_card_number(Random(7)),
        user_id="u-long",
        card_type="platinum",
        at=AT,
        may_override_terms=True,
        monthly_limit=Decimal("1000000.00"),
    )

    async def step(make_events: object) -> None:
        async def plan() -> Plan:
            loaded = await executor.aggregates.load(MEDCARD, card_id)
            events = make_events(loaded.state)  # type: ignore[operator]
            return Plan([StreamWrite(MEDCARD, card_id, loaded, events)], events[-1], card_id)

        await executor.run([card_id], plan, CommandContext(at=AT, metadata={}))

    await step(lambda state: decide(state, issue))
    claims = SNAPSHOT_AFTER + 20
    for i in range(claims):
        command = ClaimPrescription(
            claim_id=uuid4(),
            prescription_id=f"rx-{i}",
            pharmacy_id="ph-1",
            total_amount=Decimal("10.00"),
            at=AT,
        )
        await step(lambda state, c=command: adjudicate(state, None, c).card_events)
    warm = await executor.aggregates.load(MEDCARD, card_id)

    first = Aggregates(store, cache_size=10)
    cold = await first.load(MEDCARD, card_id)
    assert first.snapshots_taken == 1
    snapshot = await store.load_snapshot(card_id)
    assert snapshot is not None
    assert snapshot.version == claims + 1
    assert cold == warm  # before the next step: evolve folds into the cached state in place

    await step(lambda state: adjudicate(state, None, _claim("rx-after")).card_events)
    second = Aggregates(store, cache_size=10)
    after = await second.load(MEDCARD, card_id)
    assert second.snapshots_taken == 0  # one event past the snapshot: folded, no new snapshot
    assert after.version == claims + 2
    assert after.state is not None
    assert after.state.spent_in("2026-11") == Decimal("9.50") * (claims + 1)
    assert after.state.by_prescription.keys() >= {"rx-0", "rx-after"}
    await appender.close()


def _claim(prescription_id: str) -> ClaimPrescription:
    return ClaimPrescription(
        claim_id=uuid4(),
        prescription_id=prescription_id,
        pharmacy_id="ph-1",
        total_amount=Decimal("10.00"),
        at=AT,
    )

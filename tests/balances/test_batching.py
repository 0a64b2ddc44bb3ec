"""One request per partition per batch (projector.requests): a batch holding busy cards' and
wallets' whole streams writes exactly the rows, values and write times that projecting event
after event writes, however the stream is cut into batches and when batches are re-delivered,
read back from the real Cassandra tables."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from infrastructure.cassandra.session import CqlConfig, CqlConnection
from infrastructure.eventstore.port import RecordedEvent
from projection_service.balances.projector import (
    BATCH_LIMIT,
    SPEND_EVENTS,
    BalanceProjector,
    ProjectResult,
)
from projection_service.balances.versions import create_version
from tests.balances.streams import busy_stream
from tests.balances.support import TABLES, snapshot

pytestmark = pytest.mark.integration


def _stream() -> list[RecordedEvent]:
    """Four busy cards (about 50 claims and reversals each, across two months, with lifecycle
    events in between), two wallets, and one claim without its month total in the middle."""
    events = busy_stream(seed=10, cards=4, wallets=2, events_per_card=70, events_per_wallet=30)
    middle = next(e for e in events[len(events) // 2 :] if e.event_type in SPEND_EVENTS)
    poison = replace(
        middle, data={k: v for k, v in middle.data.items() if k != "month_spent_after"}
    )
    return [poison if e is middle else e for e in events]


def _one_by_one(cql: CqlConnection, config: CqlConfig, events: list[RecordedEvent]) -> Any:
    """The reference: the tables of version 1 written one event per batch."""
    projector = BalanceProjector(cql.session, config.keyspace, concurrency=8, version=1)
    for event in events:
        projector.project([event])
    return snapshot(cql.session, config.keyspace, 1)


def _in_batches(
    cql: CqlConnection, config: CqlConfig, version: int, batches: list[list[RecordedEvent]]
) -> tuple[Any, list[ProjectResult]]:
    create_version(cql.session, config.keyspace, version)
    projector = BalanceProjector(cql.session, config.keyspace, concurrency=8, version=version)
    results = [projector.project(batch) for batch in batches]
    return snapshot(cql.session, config.keyspace, version), results


def test_one_batch_of_whole_busy_streams_equals_one_event_at_a_time(
    cql: CqlConnection, config: CqlConfig
) -> None:
    events = _stream()
    expected = _one_by_one(cql, config, events)
    claims = sum(e.event_type in SPEND_EVENTS for e in events)
    assert len(expected["medcard_spend_entries"]) == claims - 1  # all but the poison
    assert len(expected["medcard_monthly_spend"]) == 8  # four cards, two months each

    actual, [result] = _in_batches(cql, config, 2, [events])

    assert actual == expected
    poison = [
        e.event_id
        for e in events
        if e.event_type in SPEND_EVENTS and not e.data.get("month_spent_after")
    ]
    assert [bad.event_id for bad, _ in result.unreadable] == poison
    assert result.requests < result.statements


def test_any_cut_and_redelivered_batches_equal_one_event_at_a_time(
    cql: CqlConnection, config: CqlConfig
) -> None:
    events = _stream()
    expected = _one_by_one(cql, config, events)
    rng = random.Random(7)
    for version in (2, 3, 4):
        batches: list[list[RecordedEvent]] = []
        i = 0
        while i < len(events):
            size = rng.choice((1, 2, 7, rng.randint(1, 150)))
            batches.append(events[i : i + size])
            if rng.random() < 0.3:  # at least once: a batch comes again, whole or its tail
                batches.append(batches[-1][rng.randrange(len(batches[-1])) :])
            i += size
        # and the whole stream once more at the end, as after a reset of the offsets
        actual, _ = _in_batches(cql, config, version, [*batches, events])
        assert actual == expected, f"cuts {[len(b) for b in batches]}"


def test_a_partition_goes_in_one_request_per_batch_limit(
    cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    # One card, all its claims in its first month: its entries and its month total share one
    # partition, the card's (schemas/cql/0003_card_history_by_card.cql).
    events = busy_stream(
        3, cards=1, wallets=0, events_per_card=60, events_per_wallet=0, month_turn=99
    )
    spend = [e for e in events if e.event_type in SPEND_EVENTS]
    assert len({e.data["month"] for e in spend}) == 1
    assert len(spend) > BATCH_LIMIT

    result = projector.project(events)

    assert result.statements == len(spend) + 1
    assert result.requests == math.ceil((len(spend) + 1) / BATCH_LIMIT)
    rows = snapshot(cql.session, config.keyspace)
    assert Counter(len(rows[t]) for t in TABLES) == Counter({len(spend): 1, 1: 1, 0: 2})


def test_a_claim_is_one_request_for_its_total_and_its_history_row(
    cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    # The common case at scale: a card seen once in a batch. Its month total and its history
    # row go as one single-partition batch, not two requests.
    events = busy_stream(7, cards=1, wallets=0, events_per_card=10, events_per_wallet=0)
    claim = next(e for e in events if e.event_type in SPEND_EVENTS)

    result = projector.project([claim])

    assert (result.statements, result.requests) == (2, 1)
    rows = snapshot(cql.session, config.keyspace)
    assert len(rows["medcard_monthly_spend"]) == 1
    assert len(rows["medcard_spend_entries"]) == 1

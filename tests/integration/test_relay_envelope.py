"""The relay's Kafka value is the stored JSON passed through (envelope.stored_envelope), and a
consumer reads from it exactly what the decode-and-re-encode path (to_envelope of the decoded
row) gave it: for every event type, as PostgreSQL's jsonb stores and prints it, with
non-ASCII and escaped text and money."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest

from domain.events import EVENT_TYPES, DomainEvent
from infrastructure.eventstore.envelope import from_envelope, stored_envelope, to_envelope
from infrastructure.eventstore.log_reads import LOG_START, read_committed
from infrastructure.eventstore.port import AppendRequest, Committed, NewEvent, StreamAppend
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.eventstore.rows import recorded_event
from infrastructure.postgres.pool import Pool
from tests.unit.scenarios import full_history

pytestmark = pytest.mark.integration

# Arabic, an emoji (outside the BMP), a line separator, quotes, a backslash and control
# characters: what jsonb's text form and orjson escape differently, or not at all.
ODD = ' — صيدلية النور ✓ 😀 \u2028 "quoted" \\ tab\tnew\nline \x01'
# Free-text fields of the payloads (the Literal ones, e.g. a decline's reason, keep theirs).
FREE_TEXT = {"name", "drug_name", "purpose", "reference", "policy_number", "relationship"}
T = datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=UTC)


def _odd(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _odd(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_odd(v, key) for v in value]
    if isinstance(value, str) and (key in FREE_TEXT or (key == "reason" and " " in value)):
        return value + ODD
    return value


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def _new(event: DomainEvent, n: int) -> NewEvent:
    return NewEvent(
        event_id=uuid4(),
        event_type=event.event_type,
        schema_version=event.schema_version,
        data=_odd(event.payload()),
        timestamp=T,
        metadata={
            "actor": {"role": "pharmacy", "sub": "صيدلية-" + str(n)},
            "request_id": f"r-{n}",
            "amounts": ["350.00", "0.10"],
            "numbers": [n, 1.10, 10**15, -0.0, 2.5e-8],
            "flag": True,
            "none": None,
        },
    )


async def test_the_passed_through_value_decodes_to_what_the_old_path_produced(
    postgres_url: str, postgres_pool: Pool
) -> None:
    ledger = full_history()
    card = [_new(e, n) for n, e in enumerate(ledger.card_log)]
    wallet = [_new(e, n) for n, e in enumerate(ledger.wallet_log, start=len(card))]
    request = AppendRequest(
        streams=(
            StreamAppend(uuid4(), "medcard", 0, card),
            StreamAppend(uuid4(), "wallet", 0, wallet),
        )
    )
    [outcome] = await PostgresEventStore(postgres_pool).append_batch([request])
    assert isinstance(outcome, Committed)
    appended = {e.event_id: e for e in (*card, *wallet)}
    assert {e.event_type for e in appended.values()} == set(EVENT_TYPES)
    assert sum(any(ODD in t for t in _texts(e.data)) for e in appended.values()) >= 5

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        read = read_committed(conn, LOG_START, 1000)
    assert len(read) == len(appended)
    for _, stored in read:
        old = to_envelope(recorded_event(stored))
        new = stored_envelope(stored)
        assert stored.data_json.encode() in new  # passed through, not re-encoded
        # The same document, field for field and in the same order: re-encoded, it is the
        # old value byte for byte.
        assert orjson.dumps(orjson.loads(new)) == old
        assert from_envelope(new) == from_envelope(old)
        sent = appended[stored.event_id]
        assert orjson.loads(new) == {
            "envelope_version": 1,
            "event_id": str(stored.event_id),
            "aggregate_id": str(stored.aggregate_id),
            "aggregate_type": stored.aggregate_type,
            "event_type": sent.event_type,
            "schema_version": sent.schema_version,
            "version": stored.version,
            "position": stored.position,
            "timestamp": stored.timestamp.isoformat(),
            "data": sent.data,
            "metadata": sent.metadata,
        }
        # What a consumer makes of it: the domain event that was appended.
        cls = EVENT_TYPES[sent.event_type]
        assert cls.model_validate(from_envelope(new).data) == cls.model_validate(sent.data)

"""Every question asked of the event log (`events`) other than the store's own appends and
stream reads (postgres.py) and the commit-safe reads of the whole log (log_reads.py): the
operators' commands (status, verify, settlement, an aggregate's history) and the gateway's
read-your-writes check. The package `infrastructure/eventstore` is the ONE place whose SQL
names the events table (tests/unit/test_event_table_owner.py fails on any other), so a change
to its layout (a column, an index, a partitioning) is made and reviewed here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

_COUNT = "SELECT count(*) FROM events"

# Per relay checkpoint: events after it in commit-safe order, and the oldest one's time.
_RELAY_PROGRESS = """
SELECT c.relay, c.published, c.updated_at,
       (SELECT count(*) FROM events e
         WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)),
       (SELECT min(e.timestamp) FROM events e
         WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position))
FROM relay_checkpoints c ORDER BY c.relay
"""

_OF_TYPES_BEFORE = """
SELECT aggregate_id, event_type, schema_version, event_data, timestamp FROM events
WHERE event_type = ANY(%s) AND timestamp < %s ORDER BY position
"""

_HISTORY = """
SELECT position, version, event_type, schema_version, timestamp, event_data
FROM events WHERE aggregate_id = %s ORDER BY version
"""

# The newest balance-moving event per wallet, and per card and benefit month.
_LATEST_PER_WALLET = """
SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type, schema_version, event_data
FROM events
WHERE aggregate_type = 'wallet' AND event_type = ANY(%s)
ORDER BY aggregate_id, version DESC
"""
_LATEST_PER_CARD_MONTH = """
SELECT DISTINCT ON (aggregate_id, event_data->>'month')
       aggregate_id, event_data->>'month', event_type, schema_version, event_data
FROM events
WHERE event_type = ANY(%s)
ORDER BY aggregate_id, event_data->>'month', version DESC
"""

# Per wanted read (kind, key, position), in the order asked: true when the read model shows
# the stream the key names at least as far as the event store had it at `position`. A card
# number or claim id the read model does not know yet names no stream: not settled (it may
# still be on its way). It joins the read model's tables: one round trip per poll.
_SETTLED = """
SELECT k.n, a.id IS NOT NULL
  AND k.p <= (SELECT max(position) FROM events)
  AND coalesce((SELECT s.version FROM projection_streams s WHERE s.aggregate_id = a.id), 0)
   >= coalesce((SELECT e.version FROM events e WHERE e.aggregate_id = a.id AND e.position <= k.p
                ORDER BY e.version DESC LIMIT 1), 0)
FROM unnest(%s::text[], %s::text[], %s::bigint[]) WITH ORDINALITY AS k (kind, key, p, n)
CROSS JOIN LATERAL (SELECT CASE k.kind
  WHEN 'card_number' THEN (SELECT m.id FROM medcards m WHERE m.card_number = k.key)
  WHEN 'claim' THEN (SELECT c.medcard_id FROM prescription_claims c WHERE c.id = k.key::uuid)
  ELSE k.key::uuid END AS id) AS a
"""


def event_count(conn: Connection[TupleRow]) -> int:
    row = conn.execute(_COUNT).fetchone()
    return int(row[0]) if row else 0


def relay_progress(conn: Connection[TupleRow]) -> list[tuple[str, int, datetime, int, Any]]:
    """(relay, published, updated_at, events behind, oldest unpublished event's time or
    None) per relay checkpoint."""
    return [tuple(row) for row in conn.execute(_RELAY_PROGRESS)]


def events_of_types_before(
    conn: Connection[TupleRow], event_types: Sequence[str], before: datetime, name: str
) -> Iterator[tuple[UUID, str, int, Any, datetime]]:
    """(aggregate id, type, schema version, data, time) of the events of `event_types`
    recorded before `before`, in position order, streamed through a server-side cursor
    `name` (the log up to a date may be large) in a transaction of its own (a named cursor
    needs one)."""
    with conn.transaction(), conn.cursor(name=name) as cur:
        cur.itersize = 5000
        cur.execute(_OF_TYPES_BEFORE, (list(event_types), before))
        for row in cur:
            yield row[0], row[1], row[2], row[3], row[4]


def aggregate_history(
    conn: Connection[TupleRow], aggregate_id: UUID
) -> list[tuple[int, int, str, int, datetime, Any]]:
    """(position, version, type, schema version, time, data) of one aggregate, by version."""
    return [tuple(row) for row in conn.execute(_HISTORY, (aggregate_id,))]


def latest_per_wallet(
    conn: Connection[TupleRow], event_types: Sequence[str]
) -> list[tuple[UUID, str, int, Any]]:
    """(wallet id, type, schema version, data) of each wallet's newest event of the types."""
    rows = conn.execute(_LATEST_PER_WALLET, (list(event_types),))
    return [tuple(row) for row in rows]


def latest_per_card_month(
    conn: Connection[TupleRow], event_types: Sequence[str]
) -> list[tuple[UUID, str, str, int, Any]]:
    """(card id, month, type, schema version, data) of each card-month's newest event of the
    types (the month is the event's `month` field)."""
    rows = conn.execute(_LATEST_PER_CARD_MONTH, (list(event_types),))
    return [tuple(row) for row in rows]


async def settled(
    conn: AsyncConnection[TupleRow],
    kinds: Sequence[str],
    keys: Sequence[str],
    positions: Sequence[int],
) -> list[tuple[int, bool]]:
    """(1-based index of the ask, settled) for each (kind, key, position) asked: see _SETTLED.
    Kinds: 'card', 'wallet' (key = aggregate id), 'card_number', 'claim'."""
    cursor = await conn.execute(_SETTLED, (list(kinds), list(keys), list(positions)), prepare=True)
    return [(int(n), bool(ok)) for n, ok in await cursor.fetchall()]

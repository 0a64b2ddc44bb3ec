"""Reading the PostgreSQL event store for a replay of the read models, without missing late
commits: the log reads of infrastructure/eventstore/log_reads.py (which says why a catch-up
from the horizon taken before the replay finds every late commit), minus what the target
tables already reflect (their stream cursors).
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from infrastructure.eventstore import log_reads
from infrastructure.eventstore.log_reads import LogKey
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.tables import Tables

# What the target already holds: its stream cursor is at or past the event's version.
_CATCH_UP = log_reads.from_query(
    """AND NOT EXISTS (SELECT 1 FROM {projection_streams} AS s
                  WHERE s.aggregate_id = e.aggregate_id AND s.version >= e.version)"""
)


async def read_catch_up(
    conn: AsyncConnection[TupleRow], tables: Tables, after: LogKey, limit: int
) -> tuple[list[RecordedEvent], LogKey]:
    """Events from transactions at or after `after` that `tables` lack, and where to go on.
    Start with LogKey(horizon, 0). Keyset order, so events held (or parked) in the target
    never come round again."""
    return await log_reads.read_from_async(conn, after, limit, tables.sql(_CATCH_UP))

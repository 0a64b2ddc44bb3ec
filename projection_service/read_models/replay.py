"""Reading the PostgreSQL event store for a replay, without missing late commits.

Positions are handed out before commit, so they commit out of order: a reader that has read
up to position P may later see a new event below P. Every such event was written by a
transaction that was still running when the reading began, i.e. one whose id is at or above
the xmin horizon taken before the reading. `read_catch_up` reads exactly those, minus what
the target tables already reflect (their stream cursors), in commit-safe order.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import EVENT_COLUMNS, recorded_event
from projection_service.read_models.tables import Tables

# A catch-up reader resumes after (transaction id, position): both travel as text.
CatchUpKey = tuple[str, int]

_COLUMNS = f"{EVENT_COLUMNS}, e.transaction_id::text"

_BY_POSITION = f"""
SELECT {_COLUMNS} FROM events AS e WHERE e.position > %s ORDER BY e.position LIMIT %s
"""

_CATCH_UP = f"""
SELECT {_COLUMNS} FROM events AS e
WHERE (e.transaction_id, e.position) > (%s::xid8, %s)
  AND NOT EXISTS (SELECT 1 FROM {{projection_streams}} AS s
                  WHERE s.aggregate_id = e.aggregate_id AND s.version >= e.version)
ORDER BY e.transaction_id, e.position LIMIT %s
"""


async def horizon(conn: AsyncConnection[TupleRow]) -> str:
    """Every transaction below this id has ended: a read from now on sees what it wrote."""
    cur = await conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
    row = await cur.fetchone()
    assert row is not None
    xmin: str = row[0]
    return xmin


async def last_position(conn: AsyncConnection[TupleRow]) -> int:
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def read_by_position(
    conn: AsyncConnection[TupleRow], after: int, limit: int
) -> list[RecordedEvent]:
    cur = await conn.execute(_BY_POSITION, (after, limit), prepare=True)
    return [recorded_event(row) for row in await cur.fetchall()]


async def read_catch_up(
    conn: AsyncConnection[TupleRow], tables: Tables, after: CatchUpKey, limit: int
) -> tuple[list[RecordedEvent], CatchUpKey]:
    """Events from transactions at or after `after` that `tables` lack, and where to go on.
    Start with (horizon, 0). Keyset order, so events held (or parked) in the target never
    come round again."""
    cur = await conn.execute(tables.sql(_CATCH_UP), (*after, limit))
    found = await cur.fetchall()
    if not found:
        return [], after
    return [recorded_event(row) for row in found], (found[-1][10], found[-1][0])

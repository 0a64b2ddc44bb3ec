"""Reads the event store in commit-safe order.

Positions come from a sequence, and sequences hand out numbers at insert time while
transactions commit in any order: a reader that asks for `position > last` skips an event
whose transaction committed after a later position was read. So the tail reads only rows
whose transaction is older than every transaction still running (`transaction_id <
pg_snapshot_xmin(pg_current_snapshot())`): such a transaction can no longer commit anything
new, and ordered by (transaction_id, position) nothing can slot in before the checkpoint.
Within an aggregate this order is also version order: version N+1 is only inserted by a
statement that saw version N committed, so its transaction id was assigned later.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import TupleRow

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import EVENT_COLUMNS, recorded_event


@dataclass(frozen=True, slots=True, order=True)
class Checkpoint:
    transaction_id: int  # xid8 as an integer
    position: int


START = Checkpoint(0, 0)

_TAIL = f"""
SELECT {EVENT_COLUMNS}, transaction_id::text::bigint AS xid
FROM events
WHERE (transaction_id, position) > (%s::text::xid8, %s)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position  -- the table columns: index order, no sort
LIMIT %s
"""

_LOAD = "SELECT transaction_id::text::bigint, position FROM relay_checkpoints WHERE relay = %s"

_SAVE = """
INSERT INTO relay_checkpoints (relay, transaction_id, position, published, updated_at)
VALUES (%s, %s::text::xid8, %s, %s, now())
ON CONFLICT (relay) DO UPDATE
SET transaction_id = excluded.transaction_id, position = excluded.position,
    published = relay_checkpoints.published + excluded.published, updated_at = now()
"""


def read_after(
    conn: Connection[TupleRow], after: Checkpoint, limit: int
) -> list[tuple[Checkpoint, RecordedEvent]]:
    rows = conn.execute(_TAIL, (str(after.transaction_id), after.position, limit)).fetchall()
    return [(Checkpoint(row[10], row[0]), recorded_event(row)) for row in rows]


def load_checkpoint(conn: Connection[TupleRow], relay: str) -> Checkpoint:
    row = conn.execute(_LOAD, (relay,)).fetchone()
    return START if row is None else Checkpoint(row[0], row[1])


def save_checkpoint(
    conn: Connection[TupleRow], relay: str, checkpoint: Checkpoint, published: int
) -> None:
    conn.execute(_SAVE, (relay, str(checkpoint.transaction_id), checkpoint.position, published))

"""The relay's checkpoint: the key of the last event Kafka confirmed, in the log's
commit-safe order (infrastructure/eventstore/log_reads.py reads from it)."""

from __future__ import annotations

from psycopg import Connection
from psycopg.rows import TupleRow

from infrastructure.eventstore.log_reads import LOG_START, LogKey

_LOAD = "SELECT transaction_id::text::bigint, position FROM relay_checkpoints WHERE relay = %s"

_SAVE = """
INSERT INTO relay_checkpoints (relay, transaction_id, position, published, updated_at)
VALUES (%s, %s::text::xid8, %s, %s, now())
ON CONFLICT (relay) DO UPDATE
SET transaction_id = excluded.transaction_id, position = excluded.position,
    published = relay_checkpoints.published + excluded.published, updated_at = now()
"""


def load_checkpoint(conn: Connection[TupleRow], relay: str) -> LogKey:
    row = conn.execute(_LOAD, (relay,)).fetchone()
    return LOG_START if row is None else LogKey(row[0], row[1])


def save_checkpoint(
    conn: Connection[TupleRow], relay: str, checkpoint: LogKey, published: int
) -> None:
    conn.execute(_SAVE, (relay, str(checkpoint.transaction_id), checkpoint.position, published))

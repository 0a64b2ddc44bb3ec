"""Kafka offsets kept in PostgreSQL, in the same transaction as the read-model changes they
cover: a batch is applied exactly once, whatever crashes in between (docs/design.md §5)."""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow

_LOAD = """
SELECT partition, next_offset FROM projection_offsets WHERE projection = %s AND topic = %s
"""

_SAVE = """
INSERT INTO projection_offsets (projection, topic, partition, next_offset, updated_at)
SELECT %s, %s, p, o, now() FROM unnest(%s::int[], %s::bigint[]) AS u(p, o)
ON CONFLICT (projection, topic, partition) DO UPDATE
SET next_offset = GREATEST(projection_offsets.next_offset, excluded.next_offset),
    updated_at = now()
"""


def stored_offsets(conn: Connection[TupleRow], projection: str, topic: str) -> dict[int, int]:
    return {row[0]: row[1] for row in conn.execute(_LOAD, (projection, topic)).fetchall()}


async def save_offsets(
    conn: AsyncConnection[TupleRow], projection: str, topic: str, next_offsets: Mapping[int, int]
) -> None:
    partitions = sorted(next_offsets)
    await conn.execute(
        _SAVE, (projection, topic, partitions, [next_offsets[p] for p in partitions])
    )

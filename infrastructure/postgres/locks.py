"""Session advisory locks: one holder at a time across processes and machines, released
when the connection closes (also when the holder dies)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# Keys of the locks that serialise deploy steps (any 64-bit number, unique per purpose).
SQL_MIGRATIONS = 0x4865616C74685061  # "HealthPa"
# CQL has no transactional DDL and no lock of its own (no LWT here): concurrent schema changes
# can leave the nodes disagreeing, so CQL migrators queue on PostgreSQL, which every deploy
# step can reach.
CQL_MIGRATIONS = 0x4865616C74435131  # "HealthCQ1"


@contextmanager
def advisory_lock(conninfo: str, key: int) -> Iterator[psycopg.Connection]:
    """Waits for the lock, holds it while the block runs; yields the holding connection."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield conn

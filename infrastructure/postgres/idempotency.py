"""Retention of stored Idempotency-Key answers (`idempotency_keys`).

An answer is kept at least the retention (IDEMPOTENCY_RETENTION_DAYS, 7 by default); the
purge deletes older ones, oldest first, in short autocommit batches so that it never holds
many row locks or one long transaction next to the write path. A retry that comes after its
key was purged is decided again, and the domain's own rules answer it without a second
charge (README, "Idempotency-Key retention").
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

# SKIP LOCKED: two purges started at once share the work instead of waiting on each other.
_PURGE_BATCH = """
WITH expired AS (
  SELECT principal, key FROM idempotency_keys
  WHERE created_at < now() - %(retention)s
  ORDER BY created_at
  LIMIT %(batch)s
  FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_keys AS k USING expired AS x
WHERE k.principal = x.principal AND k.key = x.key
"""

_COUNT_EXPIRED = "SELECT count(*) FROM idempotency_keys WHERE created_at < now() - %(retention)s"


def purge_expired(conninfo: str, retention: timedelta, batch_size: int = 5000) -> int:
    """Delete the answers older than `retention`; return how many were deleted."""
    deleted = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            cur = conn.execute(_PURGE_BATCH, {"retention": retention, "batch": batch_size})
            deleted += cur.rowcount
            if cur.rowcount < batch_size:
                return deleted


def count_expired(conninfo: str, retention: timedelta) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(_COUNT_EXPIRED, {"retention": retention}).fetchone()
    assert row is not None
    count: int = row[0]
    return count

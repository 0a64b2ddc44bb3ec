"""Connection pools, opened explicitly by a composition root (never at import time)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


async def open_pool(
    conninfo: str, min_size: int = 4, max_size: int = 16, *, wait_timeout: float = 30.0
) -> Pool:
    """Open a pool and wait until `min_size` connections are up.

    `wait_timeout` bounds both the opening and every later wait for a free connection.
    Connections are autocommit: single reads then cost one round trip, and writers say where
    their transaction starts and ends with `conn.transaction()`.
    """
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        timeout=wait_timeout,
        name="healthpay",
    )
    await pool.open(wait=True, timeout=wait_timeout)
    return pool

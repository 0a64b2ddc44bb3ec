"""Connection pools, opened explicitly by a composition root (never at import time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg import AsyncConnection, IsolationLevel
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]
Configure = Callable[[AsyncConnection[TupleRow]], Awaitable[None]]


async def snapshot_reads(conn: AsyncConnection[TupleRow]) -> None:
    """Every `conn.transaction()` on this connection is one REPEATABLE READ, READ ONLY
    snapshot, started by its BEGIN (no extra SET TRANSACTION round trip per read)."""
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)


async def open_pool(
    conninfo: str,
    min_size: int = 4,
    max_size: int = 16,
    *,
    wait_timeout: float = 30.0,
    configure: Configure | None = None,
    check: bool = False,
    wait: bool = True,
) -> Pool:
    """Open a pool and wait until `min_size` connections are up.

    `wait_timeout` bounds both the opening and every later wait for a free connection.
    Connections are autocommit: single reads then cost one round trip, and writers say where
    their transaction starts and ends with `conn.transaction()`. `configure` runs once on each
    new connection (e.g. `snapshot_reads`). `check` tests each connection as it is handed
    out (one round trip), so that after a database restart the dead ones are replaced instead
    of failing the caller's next statement: for workers whose unit of work is large.
    `wait=False` returns at once, the connections made in the background: for a worker that
    rides out a database that is not up yet (its first use waits, or fails, as any other).
    """
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        timeout=wait_timeout,
        name="healthpay",
        configure=configure,
        check=AsyncConnectionPool.check_connection if check else None,
    )
    await pool.open(wait=wait, timeout=wait_timeout)
    return pool

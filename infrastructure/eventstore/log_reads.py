"""Reading the event log (`events`) in commit-safe order: every reader of the whole log (the
relay, `healthpay events tail`, the rebuilds) reads it through here.

Positions come from a sequence, and sequences hand out numbers at insert time while
transactions commit in any order: a reader that asks for `position > last` skips an event
whose transaction committed after a later position was read. So the tail reads only rows
whose transaction is older than every transaction still running (`transaction_id <
pg_snapshot_xmin(pg_current_snapshot())`, the horizon): such a transaction can no longer
commit anything new, and ordered by (transaction_id, position) nothing can slot in before
the reader's key. Within an aggregate this order is also version order: version N+1 is only
inserted by a statement that saw version N committed, so its transaction id was assigned
later.

The same horizon, taken before a replay in position order, bounds what the replay may have
missed: every event that commits behind it was written by a transaction at or above the
horizon. A catch-up read (`read_from`) starts there, with no upper bound; the rebuilds say
why their later catch-ups make that enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection, Connection, sql
from psycopg.rows import TupleRow

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import EVENT_COLUMNS, StoredEvent, recorded_event, stored_event


@dataclass(frozen=True, slots=True, order=True)
class LogKey:
    """Where a reader of the log got to, in the log's commit-safe order."""

    transaction_id: int  # xid8 as an integer
    position: int


LOG_START = LogKey(0, 0)

# Every transaction below this id has ended: nothing can commit below it any more.
_XMIN = "pg_snapshot_xmin(pg_current_snapshot())"
_HORIZON = f"SELECT {_XMIN}::text::bigint"

# The key is the last column, after the RecordedEvent's (xid8 casts to bigint via text only).
_KEYED = f"SELECT {EVENT_COLUMNS}, e.transaction_id::text::bigint FROM events AS e"
_AFTER = "(e.transaction_id, e.position) > (%s::text::xid8, %s)"
_LOG_ORDER = "ORDER BY e.transaction_id, e.position"  # idx_events_transaction: no sort

_COMMITTED_AFTER = f"{_KEYED} WHERE {_AFTER} AND e.transaction_id < {_XMIN} {_LOG_ORDER} LIMIT %s"
_COMMITTED_HEAD = f"""
SELECT transaction_id::text::bigint, position FROM events WHERE transaction_id < {_XMIN}
ORDER BY transaction_id DESC, position DESC LIMIT 1
"""
_FROM = f"{_KEYED} WHERE {_AFTER} {{also}} {_LOG_ORDER} LIMIT %s"
_BY_POSITION = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
_LAST_POSITION = "SELECT coalesce(max(position), 0) FROM events"


def _params(after: LogKey, limit: int) -> tuple[str, int, int]:
    return str(after.transaction_id), after.position, limit


def _key(row: TupleRow) -> LogKey:
    return LogKey(int(row[10]), int(row[0]))


# ------------------------------------------------------------------ the commit-safe tail


def read_committed(
    conn: Connection[TupleRow], after: LogKey, limit: int
) -> list[tuple[LogKey, StoredEvent]]:
    """Up to `limit` events after `after` that nothing can slot in front of any more, each
    with its key; the JSON stays as stored (decode with `rows.recorded_event`)."""
    rows = conn.execute(_COMMITTED_AFTER, _params(after, limit)).fetchall()
    return [(_key(row), stored_event(row)) for row in rows]


def committed_head(conn: Connection[TupleRow]) -> LogKey:
    """The key of the last event below the horizon: a tail from here shows only new ones."""
    row = conn.execute(_COMMITTED_HEAD).fetchone()
    return LOG_START if row is None else LogKey(int(row[0]), int(row[1]))


# ------------------------------------------------------------------ replays and catch-ups


def horizon(conn: Connection[TupleRow]) -> int:
    row = conn.execute(_HORIZON).fetchone()
    assert row is not None
    return int(row[0])


async def horizon_async(conn: AsyncConnection[TupleRow]) -> int:
    cur = await conn.execute(_HORIZON)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def from_query(also: str = "") -> str:
    """The catch-up read's SQL, with `also` (an `AND ...` on the events alias `e`) added to
    its condition: a reader that skips what its target already holds."""
    return _FROM.format(also=also)


_FROM_ALL = from_query()


def read_from(
    conn: Connection[TupleRow],
    after: LogKey,
    limit: int,
    query: str | sql.Composed = _FROM_ALL,
) -> tuple[list[RecordedEvent], LogKey]:
    """Up to `limit` events after `after` in log order, and the key to go on from. Start a
    catch-up at LogKey(horizon, 0); a report of everything at LOG_START, every page in one
    REPEATABLE READ transaction (one snapshot: no page can miss what another saw). `query`
    as for `read_from_async`."""
    return _keyed(conn.execute(query, _params(after, limit)).fetchall(), after)


async def read_from_async(
    conn: AsyncConnection[TupleRow],
    after: LogKey,
    limit: int,
    query: str | sql.Composed = _FROM_ALL,
) -> tuple[list[RecordedEvent], LogKey]:
    """`read_from` on an async connection; `query` is `from_query(...)`'s text, possibly
    composed further (psycopg.sql) by the caller."""
    cur = await conn.execute(query, _params(after, limit))
    return _keyed(await cur.fetchall(), after)


def _keyed(rows: list[TupleRow], after: LogKey) -> tuple[list[RecordedEvent], LogKey]:
    return [recorded_event(row) for row in rows], (_key(rows[-1]) if rows else after)


def read_by_position(conn: Connection[TupleRow], after: int, limit: int) -> list[RecordedEvent]:
    """A replay's read: position order, which may miss late commits (see the catch-up)."""
    return [recorded_event(r) for r in conn.execute(_BY_POSITION, (after, limit)).fetchall()]


async def read_by_position_async(
    conn: AsyncConnection[TupleRow], after: int, limit: int
) -> list[RecordedEvent]:
    cur = await conn.execute(_BY_POSITION, (after, limit), prepare=True)
    return [recorded_event(row) for row in await cur.fetchall()]


def last_position(conn: Connection[TupleRow]) -> int:
    row = conn.execute(_LAST_POSITION).fetchone()
    return 0 if row is None else int(row[0])


async def last_position_async(conn: AsyncConnection[TupleRow]) -> int:
    cur = await conn.execute(_LAST_POSITION)
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])

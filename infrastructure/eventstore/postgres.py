"""The PostgreSQL event store (docs/design.md §3-4).

`append_batch` commits a whole group of independent requests in ONE transaction with one
INSERT for all their events, built from one orjson document. Per request the outcome is
all-or-nothing: when any request hits a constraint, the transaction rolls back, the requests
that certainly fail are answered, and the rest is tried again (see settlement.py). Losing
the server (connection, pool timeout, shutdown, a cancelled statement) raises
`EventStoreUnavailable`; any other error (data PostgreSQL cannot hold, such as NUL in a
jsonb string) is about the batch's content, and the group-commit appender isolates it.
Reservations are rows of `reservations` (primary key (scope, key)) inserted, and releases
deleted, in that same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, InterfaceError, OperationalError, Rollback
from psycopg.errors import DivisionByZero, UniqueViolation
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from infrastructure.eventstore.encoding import dumps, loads
from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRequest,
    Committed,
    DuplicateEventIdError,
    EventStoreUnavailable,
    IdempotencyRecord,
    RecordedEvent,
    Release,
    Reservation,
    Snapshot,
    released_and_reserved,
    validate_append_request,
)
from infrastructure.eventstore.rows import EVENT_COLUMNS, recorded_event
from infrastructure.eventstore.settlement import IdemKey, ResKey, chained_streams, settle
from infrastructure.postgres.pool import Pool

# `c` is the version that must already exist for the row to be inserted: the stream's
# expected version, or 0 for a new stream and for a stream chained on an earlier request of
# the batch (see settlement.py; that predecessor is checked by the rule that the batch only
# commits when every request in it inserted all of its rows). A wrong expected version whose
# next slot is free (ahead of the head) is thus refused instead of leaving a gap.
# Rows go in (aggregate_id, version, request) order: every writer takes the unique-index
# slots in the same global order, so two concurrent batches cannot deadlock, and within a
# batch the earlier request wins a contested slot.
# Both append paths insert the same rows; they differ in what happens on a clash.
_EVENT_ROWS = """
INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,
                    event_data, timestamp, schema_version, metadata)
SELECT x.e, x.a, x.t, x.y, x.v, x.d, x.ts, x.s, x.m
FROM jsonb_to_recordset(%s) AS x(
  r int, e uuid, a uuid, t text, y text, v int, c int, s int, ts timestamptz, d jsonb, m jsonb)
WHERE x.c = 0
   OR EXISTS (SELECT 1 FROM events AS p WHERE p.aggregate_id = x.a AND p.version = x.c)
ORDER BY x.a, x.v, x.r
"""

_KEY_ROWS = """
INSERT INTO idempotency_keys (principal, key, request_hash, status_code, response_body)
SELECT u.p, u.k, u.h, u.s, u.b
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int4[], %s::bytea[])
  WITH ORDINALITY AS u(p, k, h, s, b, n)
ORDER BY u.p, u.k, u.n
"""

# Like key rows: in (scope, key, request) order, so the batch's first request wanting a key
# takes it and concurrent batches take keys in one global order.
_RESERVATION_ROWS = """
INSERT INTO reservations (scope, key, event_id)
SELECT u.s, u.k, u.e
FROM unnest(%s::text[], %s::text[], %s::uuid[]) WITH ORDINALITY AS u(s, k, e, n)
ORDER BY u.s, u.k, u.n
"""

# After the events (a release and a reservation of one key meet at the stream's version
# slot first, so they cannot deadlock) and before the reservations.
_RELEASE = """
DELETE FROM reservations AS r USING unnest(%s::text[], %s::text[]) AS u(s, k)
WHERE r.scope = u.s AND r.key = u.k
"""

_INSERT_EVENTS = (
    _EVENT_ROWS
    + """
ON CONFLICT (aggregate_id, version) DO NOTHING
RETURNING event_id, position
"""
)

_INSERT_IDEMPOTENCY = (
    _KEY_ROWS
    + """
ON CONFLICT (principal, key) DO NOTHING
RETURNING principal, key
"""
)

_INSERT_RESERVATIONS = (
    _RESERVATION_ROWS
    + """
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope, key
"""
)

# The common case in ONE autocommit statement (one round trip instead of BEGIN, INSERT,
# COMMIT): no ON CONFLICT, so a clash raises, and a row held back by the expected-version
# check makes the final division by zero raise too. Either way the statement, and with it
# the whole batch, is undone, and the careful path settles who clashed. Every sub-statement
# runs to completion whether or not its count is read; they are read in the careful path's
# order.
_APPEND_AT_ONCE = f"""
WITH ins AS ({_EVENT_ROWS} RETURNING event_id, position),
     keys AS ({_KEY_ROWS} RETURNING 1),
     rel AS ({_RELEASE} RETURNING 1),
     res AS ({_RESERVATION_ROWS} RETURNING 1)
SELECT 1 / ((SELECT count(*) FROM ins) = %s AND (SELECT count(*) FROM keys) = %s
            AND (SELECT count(*) FROM rel) >= 0 AND (SELECT count(*) FROM res) = %s)::int,
       (SELECT array_agg(event_id) FROM ins), (SELECT array_agg(position) FROM ins)
"""

_READ_STREAM = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE aggregate_id = %s AND version > %s ORDER BY version
"""

_READ_ALL = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"

_LOAD_SNAPSHOT = """
SELECT aggregate_id, aggregate_type, version, schema_version, state::text
FROM snapshots WHERE aggregate_id = %s
"""

_SAVE_SNAPSHOT = """
INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, taken_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (aggregate_id) DO UPDATE
SET aggregate_type = excluded.aggregate_type, version = excluded.version,
    schema_version = excluded.schema_version, state = excluded.state, taken_at = now()
WHERE snapshots.version < excluded.version
"""

_RESERVED_BY = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE event_id = (SELECT event_id FROM reservations WHERE scope = %s AND key = %s)
"""

# The stream's rows come from its (aggregate_id, version) index; the filter runs in the
# server, so only the matching events travel.
_FIND_IN_STREAM = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE aggregate_id = %s AND event_type = ANY(%s) AND event_data->>%s = %s ORDER BY version
"""

# Every key looked up meanwhile, in one statement (see _KeyLookups).
_GET_IDEMPOTENCY = """
SELECT i.principal, i.key, i.request_hash, i.status_code, i.response_body
FROM idempotency_keys AS i JOIN unnest(%s::text[], %s::text[]) AS u(p, k)
  ON i.principal = u.p AND i.key = u.k
"""

IdemKeyOf = tuple[str, str]  # (principal, key)


class _KeyLookups:
    """Concurrent look-ups of idempotency keys share one statement, as concurrent appends
    share one commit (group_commit.py): a request that sends an Idempotency-Key looks its
    key up before it runs, and one pool checkout and round trip per request cost as much
    CPU as the rest of the claim. The first look-up goes out on the next loop iteration;
    whatever arrives while a statement runs goes out with the next one. A failure reaches
    every caller of that statement, as the statement alone would have failed each of them.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._waiting: dict[IdemKeyOf, list[asyncio.Future[IdempotencyRecord | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        waiter: asyncio.Future[IdempotencyRecord | None]
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((principal, key), []).append(waiter)
        if self._task is None:
            self._task = asyncio.create_task(self._look_up_until_idle())
        return await waiter

    async def _look_up_until_idle(self) -> None:
        batch: dict[IdemKeyOf, list[asyncio.Future[IdempotencyRecord | None]]] = {}
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    found = await self._fetch(list(batch))
                except Exception as error:
                    _answer_all(batch, error)
                else:
                    for which, waiters in batch.items():
                        for waiter in waiters:
                            if not waiter.done():  # its caller may have been cancelled
                                waiter.set_result(found.get(which))
                batch = {}
        except asyncio.CancelledError:
            _answer_all(batch, None)
            _answer_all(self._waiting, None)
            self._waiting = {}
            raise
        finally:
            self._task = None

    async def _fetch(self, keys: list[IdemKeyOf]) -> dict[IdemKeyOf, IdempotencyRecord]:
        params = ([p for p, _ in keys], [k for _, k in keys])
        async with self._pool.connection() as conn:
            cur = await conn.execute(_GET_IDEMPOTENCY, params, prepare=True)
            rows = await cur.fetchall()
        return {(row[0], row[1]): IdempotencyRecord(*row) for row in rows}


def _answer_all(
    waiters: dict[IdemKeyOf, list[asyncio.Future[IdempotencyRecord | None]]],
    error: BaseException | None,
) -> None:
    """Fails every waiter with `error`, or cancels it when None."""
    for futures in waiters.values():
        for waiter in futures:
            if not waiter.done():
                if error is None:
                    waiter.cancel()
                else:
                    waiter.set_exception(error)


class PostgresEventStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.appended_at_once = 0  # batches that took the one-statement path
        self._key_lookups = _KeyLookups(pool)

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        for request in requests:
            validate_append_request(request)
        try:
            return await self._append_batch(requests)
        except (OperationalError, InterfaceError) as error:  # PoolTimeout is one too
            raise EventStoreUnavailable(type(error).__name__) from error

    async def _append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        if released_and_reserved(requests):
            # Settled one request at a time, in order: then a key released by one request
            # is free for the requests after it, and only for those (the in-memory contract).
            return [(await self._append_batch([request]))[0] for request in requests]
        outcomes: list[AppendOutcome | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        async with self._pool.connection() as conn:
            if await self._append_at_once(conn, requests, outcomes):
                return outcomes  # type: ignore[return-value]  # every slot is filled
            # Every failed attempt settles at least one request, so this ends.
            while pending:
                pending = await self._attempt(conn, requests, pending, outcomes)
        return outcomes  # type: ignore[return-value]  # every slot is filled by now

    async def _append_at_once(
        self,
        conn: AsyncConnection[TupleRow],
        requests: Sequence[AppendRequest],
        outcomes: list[AppendOutcome | None],
    ) -> bool:
        """Commit the whole batch in one statement if nothing in it clashes."""
        everything = list(range(len(requests)))
        rows, idem, reservations, releases = _rows(
            requests, everything, chained_streams(requests, everything)
        )
        try:
            cur = await conn.execute(
                _APPEND_AT_ONCE,
                (
                    Jsonb(rows, dumps),
                    *_idempotency_params(idem),
                    *_release_params(releases),
                    *_reservation_params(reservations),
                    len(rows),
                    len(idem),
                    len(reservations),
                ),
                prepare=True,
            )
            row = await cur.fetchone()
        except (UniqueViolation, DivisionByZero):
            return False
        assert row is not None
        self.appended_at_once += 1
        positions = dict(zip(row[1] or (), row[2] or (), strict=True))
        for index, request in enumerate(requests):
            outcomes[index] = Committed(
                tuple(positions[e.event_id] for st in request.streams for e in st.events)
            )
        return True

    async def _attempt(
        self,
        conn: AsyncConnection[TupleRow],
        requests: Sequence[AppendRequest],
        pending: list[int],
        outcomes: list[AppendOutcome | None],
    ) -> list[int]:
        """Try `pending` in one transaction; return the requests to try again."""
        chained = chained_streams(requests, pending)
        rows, idem, reservations, releases = _rows(requests, pending, chained)

        retry: list[int] | None = None
        try:
            async with conn.transaction():
                inserted: dict[UUID, int] = {}
                if rows:
                    cur = await conn.execute(_INSERT_EVENTS, (Jsonb(rows, dumps),), prepare=True)
                    inserted = dict(await cur.fetchall())
                idem_inserted: set[IdemKey] = set()
                if idem:
                    cur = await conn.execute(
                        _INSERT_IDEMPOTENCY, _idempotency_params(idem), prepare=True
                    )
                    idem_inserted = {(p, k) for p, k in await cur.fetchall()}
                if releases:
                    await conn.execute(_RELEASE, _release_params(releases), prepare=True)
                reserved: set[ResKey] = set()
                if reservations:
                    cur = await conn.execute(
                        _INSERT_RESERVATIONS, _reservation_params(reservations), prepare=True
                    )
                    reserved = {(scope, key) for scope, key in await cur.fetchall()}
                if (
                    len(inserted) < len(rows)
                    or len(idem_inserted) < len(idem)
                    or len(reserved) < len(reservations)
                ):
                    retry = settle(
                        requests, pending, chained, inserted, idem_inserted, outcomes, reserved
                    )
                    raise Rollback()
        except UniqueViolation as error:
            if error.diag.constraint_name == "events_pkey":
                raise DuplicateEventIdError(str(error)) from error
            raise
        if retry is not None:
            return retry
        for index in pending:
            outcomes[index] = Committed(
                tuple(inserted[e.event_id] for s in requests[index].streams for e in s.events)
            )
        return []

    async def read_stream(self, aggregate_id: UUID, after_version: int = 0) -> list[RecordedEvent]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_READ_STREAM, (aggregate_id, after_version), prepare=True)
            return [recorded_event(row) for row in await cur.fetchall()]

    async def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_READ_ALL, (after_position, limit), prepare=True)
            return [recorded_event(row) for row in await cur.fetchall()]

    async def load_snapshot(self, aggregate_id: UUID) -> Snapshot | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LOAD_SNAPSHOT, (aggregate_id,), prepare=True)
            row = await cur.fetchone()
        if row is None:
            return None
        return Snapshot(row[0], row[1], row[2], row[3], loads(row[4]))

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        params = (
            snapshot.aggregate_id,
            snapshot.aggregate_type,
            snapshot.version,
            snapshot.schema_version,
            Jsonb(snapshot.state, dumps),
        )
        async with self._pool.connection() as conn:
            await conn.execute(_SAVE_SNAPSHOT, params)

    async def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None:
        return await self._key_lookups.get(principal, key)

    async def reserved_by(self, scope: str, key: str) -> RecordedEvent | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RESERVED_BY, (scope, key), prepare=True)
            row = await cur.fetchone()
        return None if row is None else recorded_event(row)

    async def find_in_stream(
        self, aggregate_id: UUID, event_types: Sequence[str], field: str, value: str
    ) -> list[RecordedEvent]:
        params = (aggregate_id, list(event_types), field, value)
        async with self._pool.connection() as conn:
            cur = await conn.execute(_FIND_IN_STREAM, params, prepare=True)
            return [recorded_event(row) for row in await cur.fetchall()]


def _idempotency_params(idem: list[IdempotencyRecord]) -> tuple[list[Any], ...]:
    return (
        [r.principal for r in idem],
        [r.key for r in idem],
        [r.request_hash for r in idem],
        [r.status_code for r in idem],
        [r.response_body for r in idem],
    )


def _reservation_params(reservations: list[Reservation]) -> tuple[list[Any], ...]:
    return (
        [r.scope for r in reservations],
        [r.key for r in reservations],
        [r.event_id for r in reservations],
    )


def _release_params(releases: list[Release]) -> tuple[list[str], list[str]]:
    return [r.scope for r in releases], [r.key for r in releases]


Rows = tuple[list[dict[str, Any]], list[IdempotencyRecord], list[Reservation], list[Release]]


def _rows(
    requests: Sequence[AppendRequest], pending: list[int], chained: set[tuple[int, UUID]]
) -> Rows:
    """The batch as rows of the one jsonb document, its idempotency records, reservations
    and releases."""
    rows: list[dict[str, Any]] = []
    idem: list[IdempotencyRecord] = []
    reservations: list[Reservation] = []
    releases: list[Release] = []
    for index in pending:
        request = requests[index]
        for stream in request.streams:
            aggregate_id, aggregate_type = stream.aggregate_id, stream.aggregate_type
            version = check = stream.expected_version
            if chained and (index, aggregate_id) in chained:
                check = 0
            for event in stream.events:
                version += 1
                rows.append(
                    {
                        "r": index,
                        "e": event.event_id,
                        "a": aggregate_id,
                        "t": aggregate_type,
                        "y": event.event_type,
                        "v": version,
                        "c": check,
                        "s": event.schema_version,
                        "ts": event.timestamp,
                        "d": event.data,
                        "m": event.metadata,
                    }
                )
        if request.idempotency is not None:
            idem.append(request.idempotency)
        reservations.extend(request.reservations)
        releases.extend(request.releases)
    return rows, idem, reservations, releases

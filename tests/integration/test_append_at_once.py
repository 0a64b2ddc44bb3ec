"""The one-statement append commits clash-free batches, and steps aside on any clash."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from infrastructure.eventstore.port import (
    AppendRequest,
    Committed,
    IdempotencyConflict,
    IdempotencyRecord,
    NewEvent,
    Release,
    Reservation,
    ReservationConflict,
    StreamAppend,
    VersionConflict,
)
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import Pool

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 22, 10, tzinfo=UTC)


def _append(
    stream: UUID,
    expected: int,
    events: int = 1,
    key: str | None = None,
    reserve: str | None = None,
    release: str | None = None,
) -> AppendRequest:
    new = [NewEvent(uuid4(), "test.happened", 1, {"n": i}, AT) for i in range(events)]
    record = IdempotencyRecord("admin:a", key, "h", 201, b"{}") if key else None
    return AppendRequest(
        [StreamAppend(stream, "medcard", expected, new)],
        record,
        [Reservation("test", reserve, new[0].event_id)] if reserve else (),
        [Release("test", release)] if release else (),
    )


async def _versions(pool: Pool, stream: UUID) -> list[int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT version FROM events WHERE aggregate_id = %s ORDER BY version", (stream,)
        )
        return [row[0] for row in await cur.fetchall()]


async def test_a_clash_free_batch_commits_in_one_statement(postgres_pool: Pool) -> None:
    store = PostgresEventStore(postgres_pool)
    streams = [uuid4() for _ in range(3)]
    outcomes = await store.append_batch(
        [
            _append(streams[0], 0, 2, key="k1", reserve="r1"),
            _append(streams[1], 0, reserve="r2"),
            _append(streams[2], 0),
        ]
    )
    assert store.appended_at_once == 1
    assert all(isinstance(o, Committed) for o in outcomes)
    first = outcomes[0]
    assert isinstance(first, Committed)
    assert len(first.positions) == 2
    assert await store.get_idempotency("admin:a", "k1") is not None
    assert [await _versions(postgres_pool, s) for s in streams] == [[1, 2], [1], [1]]
    # A release goes in the same one statement.
    [freed] = await store.append_batch([_append(streams[1], 1, release="r2")])
    assert isinstance(freed, Committed)
    assert store.appended_at_once == 2
    assert await store.reserved_by("test", "r2") is None
    assert await store.reserved_by("test", "r1") is not None


@pytest.mark.parametrize(
    "clash", ["taken_version", "missing_predecessor", "used_key", "held_reservation"]
)
async def test_any_clash_undoes_the_statement_and_the_careful_path_settles_it(
    postgres_pool: Pool, clash: str
) -> None:
    store = PostgresEventStore(postgres_pool)
    existing, fresh = uuid4(), uuid4()
    await store.append_batch([_append(existing, 0, key="used", reserve="held")])
    before = store.appended_at_once
    bad = {
        "taken_version": _append(existing, 0, 2),  # version 1 exists
        "missing_predecessor": _append(existing, 5, 2),  # version 5 does not exist
        "used_key": _append(uuid4(), 0, key="used"),
        "held_reservation": _append(uuid4(), 0, reserve="held"),
    }[clash]
    outcomes = await store.append_batch([bad, _append(fresh, 0, 3)])
    assert store.appended_at_once == before  # the one-statement path stepped aside
    expected = {"used_key": IdempotencyConflict, "held_reservation": ReservationConflict}
    assert isinstance(outcomes[0], expected.get(clash, VersionConflict))
    assert isinstance(outcomes[1], Committed)
    assert await _versions(postgres_pool, existing) == [1]  # nothing of the clashing request
    assert await _versions(postgres_pool, fresh) == [1, 2, 3]

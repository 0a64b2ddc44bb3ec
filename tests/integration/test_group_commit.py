"""Group commit against the real PostgreSQL, plus its own mechanics on the in-memory store."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

import psycopg
import pytest

from infrastructure.eventstore.group_commit import AppendQueueFull, GroupCommitAppender
from infrastructure.eventstore.memory import InMemoryEventStore
from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRefused,
    AppendRequest,
    Committed,
    EventStore,
    EventStoreUnavailable,
    IdempotencyRecord,
    NewEvent,
    StreamAppend,
    VersionConflict,
)
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import Pool, open_pool

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def request(*streams: tuple[UUID, int], data: dict[str, str] | None = None) -> AppendRequest:
    return AppendRequest(
        [
            StreamAppend(
                aggregate_id,
                "wallet",
                expected,
                [NewEvent(uuid4(), "wallet.debited", 1, data or {"amount": "1.00"}, T0)],
            )
            for aggregate_id, expected in streams
        ]
    )


async def stream_shape(url: str, aggregate_id: UUID) -> tuple[int, int, int, int]:
    """(events, distinct versions, lowest version, highest version) in the real table."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*), count(DISTINCT version), min(version), max(version)"
            " FROM events WHERE aggregate_id = %s",
            (aggregate_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


@pytest.mark.integration
async def test_concurrent_appends_share_transactions(postgres_pool: Pool) -> None:
    appender = GroupCommitAppender(PostgresEventStore(postgres_pool))
    streams = [uuid4() for _ in range(200)]
    outcomes = await asyncio.gather(*(appender.append(request((s, 0))) for s in streams))
    assert all(isinstance(o, Committed) for o in outcomes)
    assert appender.flushes <= 10, appender.flushes
    assert appender.flushed_requests == 200
    positions = [p for o in outcomes if isinstance(o, Committed) for p in o.positions]
    assert len(set(positions)) == 200
    await appender.close()


@pytest.mark.integration
async def test_racing_on_one_stream_exactly_one_wins(
    postgres_pool: Pool, postgres_url: str
) -> None:
    appender = GroupCommitAppender(PostgresEventStore(postgres_pool))
    card = uuid4()
    await appender.append(request((card, 0)))
    outcomes = await asyncio.gather(*(appender.append(request((card, 1))) for _ in range(200)))
    assert sum(isinstance(o, Committed) for o in outcomes) == 1
    assert outcomes.count(VersionConflict((card,))) == 199
    assert await stream_shape(postgres_url, card) == (2, 2, 1, 2)
    await appender.close()


async def _append_with_retry(
    appender: GroupCommitAppender, store: EventStore, streams: Sequence[UUID]
) -> int:
    """Append one event to each of `streams` atomically; reload and retry on conflict."""
    attempts = 0
    heads = [0] * len(streams)
    while True:
        attempts += 1
        heads = [
            h + len(await store.read_stream(s, h)) for s, h in zip(streams, heads, strict=True)
        ]
        outcome = await appender.append(request(*zip(streams, heads, strict=True)))
        if isinstance(outcome, Committed):
            return attempts
        assert isinstance(outcome, VersionConflict)


RACERS = 80  # every retry round lets one through, so the cost grows with the square


@pytest.mark.integration
async def test_two_processes_racing_leave_no_gaps_or_forks(postgres_url: str) -> None:
    # Two pools and two appenders stand for two command-service processes: their batches
    # race in separate transactions, so conflicts happen inside PostgreSQL too.
    pools = [await open_pool(postgres_url, 2, 4) for _ in range(2)]
    stores = [PostgresEventStore(p) for p in pools]
    appenders = [GroupCommitAppender(s, max_in_flight=2) for s in stores]
    card = uuid4()
    try:
        attempts = await asyncio.gather(
            *(_append_with_retry(appenders[i % 2], stores[i % 2], [card]) for i in range(RACERS))
        )
        assert await stream_shape(postgres_url, card) == (RACERS, RACERS, 1, RACERS)
        assert max(attempts) > 1  # they did race
        events = await stores[0].read_stream(card)
        assert [e.version for e in events] == list(range(1, RACERS + 1))
        assert [e.position for e in events] == sorted(e.position for e in events)
    finally:
        for appender in appenders:
            await appender.close()
        for pool in pools:
            await pool.close()


@pytest.mark.integration
async def test_crossing_multi_stream_appends_do_not_deadlock(postgres_url: str) -> None:
    # Card+wallet appends take their stream pairs in opposite orders from two "processes";
    # rows are inserted in one global order, so no transaction waits in a cycle.
    pools = [await open_pool(postgres_url, 2, 4) for _ in range(2)]
    stores = [PostgresEventStore(p) for p in pools]
    appenders = [GroupCommitAppender(s) for s in stores]
    streams = [uuid4() for _ in range(6)]
    rng = random.Random(7)
    pairs = [rng.sample(streams, 2) for _ in range(120)]
    try:
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    _append_with_retry(appenders[i % 2], stores[i % 2], pair)
                    for i, pair in enumerate(pairs)
                )
            ),
            timeout=60,
        )
        for s in streams:
            touched = sum(s in pair for pair in pairs)
            assert await stream_shape(postgres_url, s) == (touched, touched, 1, touched)
    finally:
        for appender in appenders:
            await appender.close()
        for pool in pools:
            await pool.close()


class FlakyStore(InMemoryEventStore):
    """Is unavailable for its first `append_batch`, and counts the batch sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.batches.append(len(requests))
        await asyncio.sleep(0.001)  # like a real commit: others queue up meanwhile
        if len(self.batches) == 1:
            raise EventStoreUnavailable("database went away")
        return await super().append_batch(requests)


async def test_an_unavailable_store_fails_its_whole_batch_only() -> None:
    # Whether that batch committed is unknown, so each of its callers is told so (no retry
    # one by one: the store is not there to take them).
    store = FlakyStore()
    appender = GroupCommitAppender(store)
    first = [asyncio.ensure_future(appender.append(request((uuid4(), 0)))) for _ in range(5)]
    await asyncio.sleep(0)  # the first batch is now in flight
    second = [asyncio.ensure_future(appender.append(request((uuid4(), 0)))) for _ in range(5)]
    results = await asyncio.gather(*first, *second, return_exceptions=True)
    assert all(isinstance(r, EventStoreUnavailable) for r in results[:5])
    assert all(isinstance(r, Committed) for r in results[5:])
    assert store.batches == [5, 5]
    await appender.close()


async def test_batches_are_capped_and_flushed_back_to_back() -> None:
    store = FlakyStore()
    store.batches.append(0)  # skip the failure
    appender = GroupCommitAppender(store, max_batch=3)
    outcomes = await asyncio.gather(*(appender.append(request((uuid4(), 0))) for _ in range(10)))
    assert all(isinstance(o, Committed) for o in outcomes)
    assert store.batches[1:] == [3, 3, 3, 1]
    assert appender.flushes == 4


async def test_several_flushes_may_be_in_flight() -> None:
    store = FlakyStore()
    store.batches.append(0)
    in_flight = 0
    most = 0
    plain = store.append_batch

    async def counting(requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await plain(requests)
        finally:
            in_flight -= 1

    store.append_batch = counting  # type: ignore[method-assign]
    appender = GroupCommitAppender(store, max_batch=4, max_in_flight=2)
    outcomes = await asyncio.gather(*(appender.append(request((uuid4(), 0))) for _ in range(20)))
    assert all(isinstance(o, Committed) for o in outcomes)
    assert most == 2
    assert appender.flushed_requests == 20


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    store = FlakyStore()
    store.batches.append(0)
    appender = GroupCommitAppender(store)
    tasks = [asyncio.ensure_future(appender.append(request((uuid4(), 0)))) for _ in range(3)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], Committed)
    assert isinstance(done[1], asyncio.CancelledError)
    assert isinstance(done[2], Committed)


async def test_close_drains_then_refuses() -> None:
    appender = GroupCommitAppender(FlakyStore())
    pending = asyncio.ensure_future(appender.append(request((uuid4(), 0))))
    await asyncio.sleep(0)
    await appender.close()
    assert isinstance(pending.exception(), EventStoreUnavailable)  # the flaky first flush
    with pytest.raises(RuntimeError, match="closed"):
        await appender.append(request((uuid4(), 0)))


async def test_invalid_request_fails_only_its_caller() -> None:
    appender = GroupCommitAppender(InMemoryEventStore())
    card = uuid4()
    bad = AppendRequest([StreamAppend(card, "wallet", 0, [])])
    good, refused = await asyncio.gather(
        appender.append(request((uuid4(), 0))), appender.append(bad), return_exceptions=True
    )
    assert isinstance(good, Committed)
    assert isinstance(refused, ValueError)


# ------------------------------------------------------------------ failures stay alone


class RecordingStore(PostgresEventStore):
    """The real store, remembering each batch's requests (and holding each commit a moment,
    so that concurrent appends gather into shared batches)."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.batches: list[list[AppendRequest]] = []

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.batches.append(list(requests))
        await asyncio.sleep(0.005)
        return await super().append_batch(requests)


def poisoned(kind: str, aggregate_id: UUID) -> AppendRequest:
    """What PostgreSQL cannot hold, as it would arrive if validation let it through: NUL in
    jsonb (refused by the server), a lone surrogate (refused by the JSON encoder) and NUL in
    a text column (refused by the driver)."""
    if kind == "nul_in_key":
        record = IdempotencyRecord("pharmacy-1", "key-\x00", "hash", 201, b"{}")
        return AppendRequest(request((aggregate_id, 0)).streams, record)
    text = {"nul_in_data": "rx-\x00", "lone_surrogate": "rx-\ud800"}[kind]
    return request((aggregate_id, 0), data={"prescription_id": text})


POISONS = ("nul_in_data", "lone_surrogate", "nul_in_key")


@pytest.mark.integration
async def test_poisoned_requests_fail_alone_and_their_neighbours_commit(
    postgres_pool: Pool, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RecordingStore(postgres_pool)
    appender = GroupCommitAppender(store)
    good = [uuid4() for _ in range(50)]
    bad = {uuid4(): kind for kind in POISONS for _ in range(2)}
    requests = [request((card, 0)) for card in good]
    for index, (card, kind) in enumerate(bad.items()):  # spread among the good ones
        requests.insert(8 * index + 3, poisoned(kind, card))
    with caplog.at_level(logging.ERROR, logger="healthpay.eventstore"):
        # Queued in one go: the flusher starts only once they are all waiting.
        outcomes = await asyncio.gather(
            *(appender.append(r) for r in requests), return_exceptions=True
        )
    by_card = {r.streams[0].aggregate_id: o for r, o in zip(requests, outcomes, strict=True)}
    assert all(isinstance(by_card[card], Committed) for card in good), outcomes
    for card, kind in bad.items():
        refused = by_card[card]
        assert isinstance(refused, AppendRefused), (kind, refused)
        assert refused.__cause__ is not None
    # They did share batches with good requests, and nothing of them is stored.
    poisoned_ids = set(bad)
    mixed = [b for b in store.batches if len({r.streams[0].aggregate_id for r in b} & poisoned_ids)]
    assert any(len(b) > 1 for b in mixed), [len(b) for b in store.batches]
    for card in good:
        assert await stream_shape(postgres_url, card) == (1, 1, 1, 1)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM events WHERE aggregate_id = ANY(%s)", (list(bad),)
        )
        assert await cur.fetchone() == (0,)
        cur = await conn.execute("SELECT count(*) FROM idempotency_keys")
        assert await cur.fetchone() == (0,)
    # One log line per culprit, naming no data.
    refusals = [r for r in caplog.records if r.name == "healthpay.eventstore"]
    assert len(refusals) == len(bad), [r.getMessage() for r in refusals]
    assert not any("rx-" in r.getMessage() or r.exc_info for r in refusals)
    assert appender.refused_requests == len(bad)
    await appender.close()


class PoisonSensitiveStore(InMemoryEventStore):
    """Refuses a whole batch that holds a request marked as poison (like PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.calls.append(len(requests))
        for r in requests:
            if r.streams and r.streams[0].events[0].data.get("poison"):
                raise ValueError("cannot store this")
        return await super().append_batch(requests)


async def test_members_are_retried_in_order_so_chains_still_hold() -> None:
    store = PoisonSensitiveStore()
    appender = GroupCommitAppender(store)
    card = uuid4()
    first, chained = request((card, 0)), request((card, 1))  # the second builds on the first
    poison = request((uuid4(), 0), data={"poison": "yes"})
    outcomes = await asyncio.gather(
        appender.append(first),
        appender.append(poison),
        appender.append(chained),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], Committed)
    assert isinstance(outcomes[1], AppendRefused)
    assert isinstance(outcomes[2], Committed)
    assert store.calls == [3, 1, 1, 1]
    assert [e.version for e in await store.read_stream(card)] == [1, 2]


async def test_the_store_going_away_while_isolating_fails_the_rest_at_once() -> None:
    store = PoisonSensitiveStore()
    plain = store.append_batch

    async def going_away(requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        if len(store.calls) == 2:  # the batch failed, the first member alone went through
            store.calls.append(len(requests))
            raise EventStoreUnavailable("gone")
        return await plain(requests)

    store.append_batch = going_away  # type: ignore[method-assign]
    appender = GroupCommitAppender(store)
    requests = [request((uuid4(), 0)), request((uuid4(), 0), data={"poison": "yes"})]
    requests += [request((uuid4(), 0)) for _ in range(3)]
    outcomes = await asyncio.gather(*(appender.append(r) for r in requests), return_exceptions=True)
    assert isinstance(outcomes[0], Committed)
    assert all(isinstance(o, EventStoreUnavailable) for o in outcomes[1:]), outcomes
    assert store.calls == [5, 1, 1]  # not once more per remaining request


# ------------------------------------------------------------------------ bounded queue


class GatedStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        await self.gate.wait()
        return await super().append_batch(requests)


async def test_a_full_queue_refuses_at_once_and_the_queued_ones_still_commit() -> None:
    store = GatedStore()
    appender = GroupCommitAppender(store, max_batch=2, max_queue=3)
    in_flight = asyncio.ensure_future(appender.append(request((uuid4(), 0))))
    await asyncio.sleep(0)  # taken by the flusher, which now waits at the gate
    queued = [asyncio.ensure_future(appender.append(request((uuid4(), 0)))) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(AppendQueueFull):
        await appender.append(request((uuid4(), 0)))  # at once: the gate is still shut
    assert appender.queue_full == 1
    store.gate.set()
    outcomes = await asyncio.gather(in_flight, *queued)
    assert all(isinstance(o, Committed) for o in outcomes)
    assert isinstance(await appender.append(request((uuid4(), 0))), Committed)  # room again
    assert len(await store.read_all(0, 100)) == 5
    await appender.close()


def test_the_queue_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        GroupCommitAppender(InMemoryEventStore(), max_queue=0)

"""One contract for every EventStore: the in-memory twin and PostgreSQL must agree."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from uuid import UUID, uuid4

import psycopg
import pytest

from infrastructure.eventstore.memory import InMemoryEventStore
from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRequest,
    Committed,
    DuplicateEventIdError,
    EventStore,
    EventStoreUnavailable,
    IdempotencyConflict,
    IdempotencyRecord,
    NewEvent,
    Release,
    Reservation,
    ReservationConflict,
    Snapshot,
    StreamAppend,
    VersionConflict,
)
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import open_pool

T0 = datetime(2025, 3, 1, 10, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    # postgres_url comes from tests/conftest.py: a fresh migrated database for this test.
    pool = await open_pool(request.getfixturevalue("postgres_url"), min_size=1, max_size=4)
    try:
        yield PostgresEventStore(pool)
    finally:
        await pool.close()


def event(n: int = 0, **data: object) -> NewEvent:
    return NewEvent(
        event_id=uuid4(),
        event_type="medcard.claim_adjudicated",
        schema_version=1,
        data={"n": n, "amount": "12.50", **data},
        timestamp=T0,
        metadata={"correlation_id": "c-1"},
    )


def stream(aggregate_id: UUID, expected: int, count: int = 1) -> StreamAppend:
    return StreamAppend(aggregate_id, "medcard", expected, [event(i) for i in range(count)])


def one(aggregate_id: UUID, expected: int, count: int = 1) -> AppendRequest:
    return AppendRequest([stream(aggregate_id, expected, count)])


def idem(key: str, principal: str = "pharmacy-1") -> IdempotencyRecord:
    return IdempotencyRecord(principal, key, "hash-" + key, 201, b'{"ok":true}\x00\xff')


def holding(
    aggregate_id: UUID,
    expected: int,
    *keys: str,
    releases: tuple[str, ...] = (),
    scope: str = "gateway_reference",
) -> AppendRequest:
    """One event on the stream that takes `keys` (and frees `releases`) in `scope`."""
    part = stream(aggregate_id, expected)
    event_id = part.events[0].event_id
    return AppendRequest(
        [part],
        reservations=[Reservation(scope, key, event_id) for key in keys],
        releases=[Release(scope, key) for key in releases],
    )


async def holder_of(store: EventStore, key: str, scope: str = "gateway_reference") -> UUID | None:
    recorded = await store.reserved_by(scope, key)
    return None if recorded is None else recorded.event_id


async def test_append_and_read_back(store: EventStore) -> None:
    card = uuid4()
    first = one(card, 0, 3)
    [outcome] = await store.append_batch([first])
    assert isinstance(outcome, Committed)
    assert len(outcome.positions) == 3
    assert list(outcome.positions) == sorted(outcome.positions)
    [again] = await store.append_batch([one(card, 3, 2)])
    assert isinstance(again, Committed)
    assert min(again.positions) > max(outcome.positions)

    events = await store.read_stream(card)
    assert [e.version for e in events] == [1, 2, 3, 4, 5]
    assert [e.position for e in events] == [*outcome.positions, *again.positions]
    given = first.streams[0].events[0]
    got = events[0]
    assert got.event_id == given.event_id
    assert got.aggregate_id == card
    assert got.aggregate_type == "medcard"
    assert got.event_type == given.event_type
    assert got.schema_version == 1
    assert got.data == {"n": 0, "amount": "12.50"}
    assert got.metadata == {"correlation_id": "c-1"}
    assert got.timestamp == T0
    assert [e.version for e in await store.read_stream(card, after_version=3)] == [4, 5]
    assert await store.read_stream(uuid4()) == []


async def test_data_round_trips_as_json(store: EventStore) -> None:
    card = uuid4()
    data = MappingProxyType({"items": ("a", "b"), "nested": {"x": None, "y": [1, 2.5]}})
    new = NewEvent(uuid4(), "medcard.created", 2, data, T0)
    await store.append_batch([AppendRequest([StreamAppend(card, "medcard", 0, [new])])])
    [got] = await store.read_stream(card)
    assert got.data == {"items": ["a", "b"], "nested": {"x": None, "y": [1, 2.5]}}
    assert got.metadata == {}
    assert got.schema_version == 2


async def test_new_stream_must_not_exist(store: EventStore) -> None:
    card = uuid4()
    await store.append_batch([one(card, 0)])
    assert await store.append_batch([one(card, 0)]) == [VersionConflict((card,))]
    assert len(await store.read_stream(card)) == 1


async def test_stale_expected_version_conflicts(store: EventStore) -> None:
    card = uuid4()
    await store.append_batch([one(card, 0, 3)])
    assert await store.append_batch([one(card, 1, 2)]) == [VersionConflict((card,))]
    assert await store.append_batch([one(card, 2)]) == [VersionConflict((card,))]
    assert [e.version for e in await store.read_stream(card)] == [1, 2, 3]


async def test_expected_version_ahead_of_head_conflicts(store: EventStore) -> None:
    # Slot 6 is free, but writing it would leave a gap: the stream must not fork or skip.
    card, new = uuid4(), uuid4()
    await store.append_batch([one(card, 0, 3)])
    assert await store.append_batch([one(card, 5)]) == [VersionConflict((card,))]
    assert await store.append_batch([one(card, 4)]) == [VersionConflict((card,))]
    assert await store.append_batch([one(new, 1)]) == [VersionConflict((new,))]
    assert [e.version for e in await store.read_stream(card)] == [1, 2, 3]
    assert await store.read_stream(new) == []


async def test_multi_stream_request_is_atomic(store: EventStore) -> None:
    card, wallet, other = uuid4(), uuid4(), uuid4()
    await store.append_batch([one(wallet, 0, 2)])
    both = AppendRequest([stream(card, 0, 2), stream(wallet, 1)])  # wallet is at 2: stale
    bystander = one(other, 0, 2)
    outcome, fine = await store.append_batch([both, bystander])
    assert outcome == VersionConflict((wallet,))
    assert isinstance(fine, Committed)
    assert await store.read_stream(card) == []
    assert len(await store.read_stream(wallet)) == 2
    assert len(await store.read_stream(other)) == 2

    together = AppendRequest([stream(card, 0), stream(wallet, 2)])
    [done] = await store.append_batch([together])
    assert isinstance(done, Committed)
    assert len(done.positions) == 2
    assert [e.version for e in await store.read_stream(wallet)] == [1, 2, 3]


async def test_same_stream_twice_in_one_batch_first_wins(store: EventStore) -> None:
    card = uuid4()
    a, b, c = one(card, 0), one(card, 0), one(card, 0)
    first, second, third = await store.append_batch([a, b, c])
    assert isinstance(first, Committed)
    assert second == third == VersionConflict((card,))
    [stored] = await store.read_stream(card)
    assert stored.event_id == a.streams[0].events[0].event_id


async def test_loser_of_a_failed_request_gets_its_turn(store: EventStore) -> None:
    # The first request claims card v1 but fails on `taken`; the second may then have v1.
    card, taken = uuid4(), uuid4()
    await store.append_batch([one(taken, 0)])
    doomed = AppendRequest([stream(card, 0), stream(taken, 0)])
    heir = one(card, 0)
    failed, won = await store.append_batch([doomed, heir])
    assert failed == VersionConflict((taken,))
    assert isinstance(won, Committed)
    [stored] = await store.read_stream(card)
    assert stored.event_id == heir.streams[0].events[0].event_id


async def test_request_chained_on_an_earlier_one_in_the_batch(store: EventStore) -> None:
    card, gone = uuid4(), uuid4()
    outcomes = await store.append_batch([one(card, 0), one(card, 1), one(gone, 2)])
    assert isinstance(outcomes[0], Committed)
    assert isinstance(outcomes[1], Committed)
    assert outcomes[2] == VersionConflict((gone,))
    assert [e.version for e in await store.read_stream(card)] == [1, 2]


async def test_chain_breaks_when_its_first_link_fails(store: EventStore) -> None:
    # Nothing may build on an event that did not commit.
    card, taken = uuid4(), uuid4()
    await store.append_batch([one(card, 0), one(taken, 0)])
    ahead, on_ahead = one(card, 3), one(card, 4)
    doomed = AppendRequest([stream(card, 1), stream(taken, 0)])
    on_doomed = one(card, 2)
    outcomes = await store.append_batch([ahead, on_ahead, doomed, on_doomed])
    assert outcomes == [
        VersionConflict((card,)),
        VersionConflict((card,)),
        VersionConflict((taken,)),
        VersionConflict((card,)),
    ]
    assert [e.version for e in await store.read_stream(card)] == [1]


async def test_request_behind_a_broken_chain_still_commits(store: EventStore) -> None:
    # `chained` builds on `doomed`, which fails; `patient` expected the real head and wins
    # even though `chained` took one of its slots in a first try.
    card, taken = uuid4(), uuid4()
    await store.append_batch([one(card, 0, 2), one(taken, 0)])
    doomed = AppendRequest([stream(card, 2), stream(taken, 0)])
    chained = one(card, 3)
    patient = one(card, 2, 2)
    outcomes = await store.append_batch([doomed, chained, patient])
    assert outcomes[:2] == [VersionConflict((taken,)), VersionConflict((card,))]
    assert isinstance(outcomes[2], Committed)
    versions = [(e.version, e.event_id) for e in await store.read_stream(card)]
    assert versions[2:] == [(3 + i, e.event_id) for i, e in enumerate(patient.streams[0].events)]


async def test_idempotency_record_commits_with_the_events(store: EventStore) -> None:
    card = uuid4()
    record = idem("k-1")
    [done] = await store.append_batch([AppendRequest([stream(card, 0)], record)])
    assert isinstance(done, Committed)
    assert await store.get_idempotency("pharmacy-1", "k-1") == record
    assert await store.get_idempotency("pharmacy-2", "k-1") is None

    # Same key again, even on a fresh stream: nothing of that request is stored.
    other = uuid4()
    again = AppendRequest([stream(other, 0)], idem("k-1"))
    assert await store.append_batch([again]) == [IdempotencyConflict("pharmacy-1", "k-1")]
    assert await store.read_stream(other) == []
    # The same key of another principal is a different key.
    [theirs] = await store.append_batch([AppendRequest([stream(other, 0)], idem("k-1", "p-2"))])
    assert isinstance(theirs, Committed)


async def test_concurrent_key_look_ups_each_get_their_own_record(store: EventStore) -> None:
    # The PostgreSQL store answers concurrent look-ups with one statement: each caller must
    # still get exactly its own key's record (the principal is part of the key), or None.
    stored = [idem(f"k-{n}", f"p-{n % 3}") for n in range(30)]
    requests = [AppendRequest([stream(uuid4(), 0)], record) for record in stored]
    assert all(isinstance(o, Committed) for o in await store.append_batch(requests))
    asked = [(r.principal, r.key) for r in stored]
    asked += [(f"p-{(n + 1) % 3}", f"k-{n}") for n in range(30)]  # another caller's key
    asked += [("p-0", "k-0")] * 3 + [("p-9", "never-stored")]  # the same key thrice too
    random.Random(5).shuffle(asked)
    found = await asyncio.gather(*(store.get_idempotency(p, k) for p, k in asked))
    by_key = {(r.principal, r.key): r for r in stored}
    assert found == [by_key.get(which) for which in asked]
    assert sum(r is not None for r in found) == 30 + 3


async def test_a_request_may_store_only_an_idempotency_record(store: EventStore) -> None:
    # A replayed command that changes nothing still remembers its new key.
    assert await store.append_batch([AppendRequest([], idem("k-only"))]) == [Committed(())]
    assert await store.get_idempotency("pharmacy-1", "k-only") == idem("k-only")
    again = await store.append_batch([AppendRequest([], idem("k-only"))])
    assert again == [IdempotencyConflict("pharmacy-1", "k-only")]


async def test_idempotency_conflict_within_one_batch(store: EventStore) -> None:
    a, b = uuid4(), uuid4()
    first = AppendRequest([stream(a, 0)], idem("dup"))
    second = AppendRequest([stream(b, 0)], idem("dup"))
    won, lost = await store.append_batch([first, second])
    assert isinstance(won, Committed)
    assert lost == IdempotencyConflict("pharmacy-1", "dup")
    assert await store.read_stream(b) == []


async def test_failed_request_does_not_store_its_idempotency_record(store: EventStore) -> None:
    card = uuid4()
    await store.append_batch([one(card, 0)])
    [lost] = await store.append_batch([AppendRequest([stream(card, 0)], idem("k-2"))])
    assert lost == VersionConflict((card,))
    assert await store.get_idempotency("pharmacy-1", "k-2") is None


async def test_duplicate_event_id_fails_the_whole_call(store: EventStore) -> None:
    card, other = uuid4(), uuid4()
    request = one(card, 0)
    await store.append_batch([request])
    reused = StreamAppend(other, "medcard", 0, [request.streams[0].events[0]])
    bystander = uuid4()
    with pytest.raises(DuplicateEventIdError):
        await store.append_batch([one(bystander, 0), AppendRequest([reused])])
    assert await store.read_stream(bystander) == []


def _poisoned(kind: str, aggregate_id: UUID) -> AppendRequest:
    """A request PostgreSQL cannot hold (what validation at the HTTP edge keeps out)."""
    if kind == "nul_in_key":
        return AppendRequest([stream(aggregate_id, 0)], idem("key-\x00"))
    data: dict[str, dict[str, object]] = {
        "nul_in_data": {"prescription_id": "rx-\x00"},
        "nul_in_data_key": {"rx\x00": 1},
        "lone_surrogate_in_data": {"prescription_id": "rx-\ud800"},
    }
    bad = replace(event(), data=data[kind])
    return AppendRequest([StreamAppend(aggregate_id, "medcard", 0, [bad])])


POISONS = ["nul_in_data", "nul_in_data_key", "lone_surrogate_in_data", "nul_in_key"]


@pytest.mark.parametrize("kind", POISONS)
async def test_content_the_store_cannot_hold_fails_the_call_and_stores_nothing(
    store: EventStore, kind: str
) -> None:
    # Not EventStoreUnavailable: the store was there and refused the content, so nothing
    # of the call was committed (the group-commit appender then isolates the culprit).
    bystander, poisoned = uuid4(), uuid4()
    with pytest.raises((ValueError, TypeError, psycopg.DataError)) as raised:
        await store.append_batch([one(bystander, 0), _poisoned(kind, poisoned)])
    assert not isinstance(raised.value, EventStoreUnavailable), raised.value
    assert await store.read_all(0, 100) == []
    assert await store.get_idempotency("pharmacy-1", "key-") is None
    [alone] = await store.append_batch([one(bystander, 0)])
    assert isinstance(alone, Committed)


async def test_invalid_requests_are_refused(store: EventStore) -> None:
    card = uuid4()
    with pytest.raises(ValueError, match="needs a stream"):
        await store.append_batch([AppendRequest([])])
    with pytest.raises(ValueError, match="no events"):
        await store.append_batch([AppendRequest([StreamAppend(card, "medcard", 0, [])])])
    with pytest.raises(ValueError, match="twice"):
        await store.append_batch([AppendRequest([stream(card, 0), stream(card, 1)])])


async def test_a_reserved_key_is_held_by_one_event(store: EventStore) -> None:
    wallet, other = uuid4(), uuid4()
    first = holding(wallet, 0, "5:fawryREF-1")
    [done] = await store.append_batch([first])
    assert isinstance(done, Committed)
    assert await holder_of(store, "5:fawryREF-1") == first.streams[0].events[0].event_id
    recorded = await store.reserved_by("gateway_reference", "5:fawryREF-1")
    assert recorded is not None
    assert (recorded.aggregate_id, recorded.version) == (wallet, 1)
    # Another stream may not take it, and nothing of that request is stored.
    assert await store.append_batch([holding(other, 0, "5:fawryREF-1")]) == [
        ReservationConflict("gateway_reference", "5:fawryREF-1")
    ]
    assert await store.read_stream(other) == []
    # The same key in another scope is another key.
    [theirs] = await store.append_batch([holding(other, 0, "5:fawryREF-1", scope="card_number")])
    assert isinstance(theirs, Committed)
    assert await store.reserved_by("gateway_reference", "nothing") is None


async def test_a_reservation_within_one_batch_goes_to_the_first(store: EventStore) -> None:
    a, b, c, taken = uuid4(), uuid4(), uuid4(), uuid4()
    won, lost = await store.append_batch([holding(a, 0, "k"), holding(b, 0, "k")])
    assert isinstance(won, Committed)
    assert lost == ReservationConflict("gateway_reference", "k")
    assert await store.read_stream(b) == []
    # The first failing for another reason (its stream is stale) leaves the key to the next.
    await store.append_batch([one(taken, 0)])
    doomed = holding(taken, 0, "k2")
    failed, heir = await store.append_batch([doomed, holding(c, 0, "k2")])
    assert failed == VersionConflict((taken,))
    assert isinstance(heir, Committed)
    assert await holder_of(store, "k2") == (await store.read_stream(c))[0].event_id


async def test_a_version_clash_is_reported_before_a_held_key(store: EventStore) -> None:
    a, b = uuid4(), uuid4()
    await store.append_batch([holding(a, 0, "k"), one(b, 0)])
    assert await store.append_batch([holding(b, 0, "k")]) == [VersionConflict((b,))]
    assert await store.append_batch([holding(b, 1, "k")]) == [
        ReservationConflict("gateway_reference", "k")
    ]


async def test_a_release_frees_a_key_for_later_appends(store: EventStore) -> None:
    card, other = uuid4(), uuid4()
    await store.append_batch([holding(card, 0, "rx-1", "rx-2", scope="prescription")])
    [freed] = await store.append_batch([holding(card, 1, releases=("rx-1",), scope="prescription")])
    assert isinstance(freed, Committed)
    assert await holder_of(store, "rx-1", scope="prescription") is None
    assert await holder_of(store, "rx-2", scope="prescription") is not None
    [again] = await store.append_batch([holding(other, 0, "rx-1", scope="prescription")])
    assert isinstance(again, Committed)
    # A failed request releases nothing.
    stale = holding(card, 0, releases=("rx-2",), scope="prescription")
    assert await store.append_batch([stale]) == [VersionConflict((card,))]
    assert await holder_of(store, "rx-2", scope="prescription") is not None


async def test_a_key_released_and_reserved_in_one_batch_follows_batch_order(
    store: EventStore,
) -> None:
    a, b, c, d, taken = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
    await store.append_batch([holding(a, 0, "k1"), one(taken, 0)])
    outcomes = await store.append_batch(
        [
            holding(a, 1, releases=("k1",)),  # frees k1 for the requests after it
            holding(b, 0, "k1"),
            holding(c, 0, "k2"),
            holding(d, 0, releases=("k2",)),  # frees k2 again, after c took it
        ]
    )
    assert all(isinstance(o, Committed) for o in outcomes)
    assert await holder_of(store, "k1") == (await store.read_stream(b))[0].event_id
    assert await holder_of(store, "k2") is None
    # A release that fails frees nothing for the request after it.
    failing = AppendRequest(
        [stream(b, 1), stream(taken, 0)], releases=[Release("gateway_reference", "k1")]
    )
    outcomes = await store.append_batch([failing, holding(c, 1, "k1")])
    assert outcomes == [
        VersionConflict((taken,)),
        ReservationConflict("gateway_reference", "k1"),
    ]


async def test_malformed_reservations_are_refused(store: EventStore) -> None:
    card = uuid4()
    elsewhere = AppendRequest([stream(card, 0)], reservations=[Reservation("s", "k", uuid4())])
    with pytest.raises(ValueError, match="not in the request"):
        await store.append_batch([elsewhere])
    with pytest.raises(ValueError, match="twice"):
        await store.append_batch([holding(card, 0, "k", "k")])
    with pytest.raises(ValueError, match="reserve and release"):
        await store.append_batch([holding(card, 0, "k", releases=("k",))])
    assert await store.read_stream(card) == []


async def test_find_in_stream_filters_by_type_and_field(store: EventStore) -> None:
    card = uuid4()
    events = [
        NewEvent(uuid4(), "medcard.claim_adjudicated", 1, {"claim_id": "c-1"}, T0),
        NewEvent(uuid4(), "medcard.claim_adjudicated", 1, {"claim_id": "c-2"}, T0),
        NewEvent(uuid4(), "medcard.suspended", 1, {"claim_id": "c-1"}, T0),
        NewEvent(uuid4(), "medcard.claim_reversed", 1, {"claim_id": "c-1"}, T0),
    ]
    await store.append_batch([AppendRequest([StreamAppend(card, "medcard", 0, events)])])
    await store.append_batch([one(uuid4(), 0)])
    types = ("medcard.claim_adjudicated", "medcard.claim_reversed")
    found = await store.find_in_stream(card, types, "claim_id", "c-1")
    assert [(e.version, e.event_id) for e in found] == [
        (1, events[0].event_id),
        (4, events[3].event_id),
    ]
    assert await store.find_in_stream(card, types, "claim_id", "c-9") == []
    assert await store.find_in_stream(uuid4(), types, "claim_id", "c-1") == []


async def test_snapshots_keep_the_newest(store: EventStore) -> None:
    card = uuid4()
    assert await store.load_snapshot(card) is None
    await store.save_snapshot(Snapshot(card, "medcard", 10, 1, {"spent": "10.00"}))
    await store.save_snapshot(Snapshot(card, "medcard", 7, 1, {"spent": "7.00"}))
    assert await store.load_snapshot(card) == Snapshot(card, "medcard", 10, 1, {"spent": "10.00"})
    await store.save_snapshot(Snapshot(card, "medcard", 12, 2, {"spent": "12.00"}))
    assert await store.load_snapshot(card) == Snapshot(card, "medcard", 12, 2, {"spent": "12.00"})


async def test_read_all_in_position_order(store: EventStore) -> None:
    cards = [uuid4() for _ in range(5)]
    await store.append_batch([one(c, 0, 2) for c in cards])
    await store.append_batch([one(c, 2) for c in cards])
    everything = await store.read_all(0, 100)
    assert len(everything) == 15
    positions = [e.position for e in everything]
    assert positions == sorted(positions)
    assert len(set(positions)) == 15
    for card in cards:
        assert [e.version for e in everything if e.aggregate_id == card] == [1, 2, 3]
    page = await store.read_all(positions[4], 3)
    assert [e.position for e in page] == positions[5:8]
    assert await store.read_all(positions[-1], 10) == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("seed", "drift"),
    [(2024, (-1, 0, 0, 0, 1, 2)), (7, (0, 1, 2, 3, 4, 5))],
    ids=["mostly-current", "chains-and-ahead"],
)
async def test_random_batches_agree_with_the_in_memory_twin(
    seed: int, drift: tuple[int, ...], postgres_url: str
) -> None:
    # Dense random batches (shared streams; stale, ahead and chained versions; multi-stream
    # requests; clashing idempotency keys and reservations, releases) must get the very same
    # outcomes from both stores.
    rng = random.Random(seed)
    memory = InMemoryEventStore()
    pool = await open_pool(postgres_url, min_size=1, max_size=2)
    try:
        postgres = PostgresEventStore(pool)
        streams = [uuid4() for _ in range(5)]
        heads = dict.fromkeys(streams, 0)
        for _ in range(80):
            batch = []
            for _ in range(rng.randint(1, 14)):
                chosen = rng.sample(streams, rng.choice([1, 1, 2, 3]))
                parts = [
                    stream(s, max(0, heads[s] + rng.choice(drift)), rng.randint(1, 3))
                    for s in chosen
                ]
                key = idem(f"k{rng.randint(0, 30)}") if rng.random() < 0.3 else None
                holds = rng.sample(range(12), rng.choice([0, 0, 1, 2]))
                # Rare: a batch where one request frees what another takes is settled one
                # request at a time, and the batch paths are what this test is for.
                frees = [
                    r for r in rng.sample(range(12), int(rng.random() < 0.04)) if r not in holds
                ]
                first = parts[0].events[0].event_id
                batch.append(
                    AppendRequest(
                        parts,
                        key,
                        [Reservation("scope", f"r{r}", first) for r in holds],
                        [Release("scope", f"r{r}") for r in frees],
                    )
                )
            expected = await memory.append_batch(batch)
            assert await postgres.append_batch(batch) == _without_positions(expected)
            for s in streams:
                heads[s] = len(await memory.read_stream(s))
        for s in streams:
            mine = [e.event_id for e in await memory.read_stream(s)]
            assert [e.event_id for e in await postgres.read_stream(s)] == mine
        for r in range(12):
            assert await holder_of(postgres, f"r{r}", "scope") == await holder_of(
                memory, f"r{r}", "scope"
            )
    finally:
        await pool.close()


class _AnyPositions:
    """Equal to any Committed with the same number of positions (PostgreSQL's have gaps)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Committed) and len(other.positions) == self.count

    def __repr__(self) -> str:
        return f"Committed(<{self.count} positions>)"


def _without_positions(outcomes: list[AppendOutcome]) -> list[object]:
    return [_AnyPositions(len(o.positions)) if isinstance(o, Committed) else o for o in outcomes]

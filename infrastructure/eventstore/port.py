"""The event store port: what the command side needs from any event store.

Each `AppendRequest` is one atomic unit (one or several streams, each with an expected
version, plus an optional idempotency record, plus reservations of unique keys and releases
of keys held before). `append_batch` commits many independent requests in one database
transaction (group commit) and reports per request whether it committed or which constraint
it hit; a conflicting request never makes another fail.

A reservation makes a key unique within its scope at write time (a card number, a gateway
reference, a prescription charged on a card): it is taken by one of the request's events,
in the same transaction as that event, so "key taken" and "event stored" cannot diverge and
no cache or process has to be trusted for the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

JsonObject = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: UUID
    event_type: str  # stable dotted name, e.g. "medcard.claim_adjudicated"
    schema_version: int
    data: JsonObject  # JSON-ready: money and dates as strings
    timestamp: datetime  # timezone-aware
    metadata: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamAppend:
    aggregate_id: UUID
    aggregate_type: str  # "medcard" | "wallet"
    expected_version: int  # version of the stream's last event; 0 = the stream must not exist
    events: Sequence[NewEvent]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    principal: str  # who sent it: role, subject, pharmacy (keys are scoped per caller)
    key: str
    request_hash: str
    status_code: int
    response_body: bytes


@dataclass(frozen=True, slots=True)
class Reservation:
    scope: str  # what kind of key: "card_number", "gateway_reference", ...
    key: str  # unique within the scope
    event_id: UUID  # the event of the same request that takes the key


@dataclass(frozen=True, slots=True)
class Release:
    """Frees a key held before the batch (a reversed claim frees its prescription)."""

    scope: str
    key: str


@dataclass(frozen=True, slots=True)
class AppendRequest:
    streams: Sequence[StreamAppend]
    idempotency: IdempotencyRecord | None = None
    reservations: Sequence[Reservation] = ()
    releases: Sequence[Release] = ()


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int
    event_id: UUID
    aggregate_id: UUID
    aggregate_type: str
    event_type: str
    schema_version: int
    version: int
    data: JsonObject
    metadata: JsonObject
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Committed:
    # positions of the request's events, in the order they were given (streams, then events)
    positions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class VersionConflict:
    aggregate_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class IdempotencyConflict:
    principal: str
    key: str


@dataclass(frozen=True, slots=True)
class ReservationConflict:
    """The key is held already: by an earlier batch, or by an earlier request of this one."""

    scope: str
    key: str


AppendOutcome = Committed | VersionConflict | IdempotencyConflict | ReservationConflict


@dataclass(frozen=True, slots=True)
class Snapshot:
    aggregate_id: UUID
    aggregate_type: str
    version: int
    schema_version: int
    state: JsonObject


class EventStore(Protocol):
    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]: ...

    async def read_stream(
        self, aggregate_id: UUID, after_version: int = 0
    ) -> list[RecordedEvent]: ...

    async def load_snapshot(self, aggregate_id: UUID) -> Snapshot | None: ...

    async def save_snapshot(self, snapshot: Snapshot) -> None: ...

    async def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None: ...

    async def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]: ...

    async def reserved_by(self, scope: str, key: str) -> RecordedEvent | None:
        """The event holding a reserved key, or None when the key is free."""
        ...

    async def find_in_stream(
        self, aggregate_id: UUID, event_types: Sequence[str], field: str, value: str
    ) -> list[RecordedEvent]:
        """A stream's events of these types whose data has `field` == `value`, in version
        order: an indexed look-up for what a bounded aggregate state no longer holds."""
        ...


class EventStoreUnavailable(Exception):
    """The store could not be reached, or did not confirm: whether the batch committed is
    unknown. `append_batch` raises this (with the driver's error as its cause) for trouble
    with the store itself; any other exception from it is about the batch's content, and
    nothing of that batch was committed."""


class AppendRefused(Exception):
    """The store refused this request when it was tried on its own (the group-commit
    appender retries a failed batch's members one by one): it was not committed, and the
    same request would fail the same way again. The store's error is the cause."""


class DuplicateEventIdError(Exception):
    """An event id that is already stored (or given twice) in a request that would otherwise
    commit. Event ids are minted fresh for every decision, so this is a bug in the caller;
    the whole `append_batch` call fails and nothing of it is committed."""


def validate_append_request(request: AppendRequest) -> None:
    """Reject requests no store can honour the same way (raises ValueError).

    A stream with no events could not have its expected version checked by an insert, and
    two entries for the same stream in one request would race against each other.
    """
    if not request.streams and request.idempotency is None:
        # An idempotency record alone is fine: it remembers a key for an earlier answer.
        raise ValueError("an append request needs a stream or an idempotency record")
    seen: set[UUID] = set()
    for stream in request.streams:
        if not stream.events:
            raise ValueError(f"stream {stream.aggregate_id} has no events to append")
        if stream.expected_version < 0:
            raise ValueError(f"stream {stream.aggregate_id}: expected version is negative")
        if stream.aggregate_id in seen:
            raise ValueError(f"stream {stream.aggregate_id} appears twice in one request")
        seen.add(stream.aggregate_id)
    if request.reservations or request.releases:
        _validate_keys(request)


def _validate_keys(request: AppendRequest) -> None:
    # By the ids' ints: UUID's own __hash__ and __eq__ are Python code, and this runs for
    # every claim.
    event_ids = {e.event_id.int for s in request.streams for e in s.events}
    keys: set[tuple[str, str]] = set()
    for reservation in request.reservations:
        if reservation.event_id.int not in event_ids:
            raise ValueError(f"reservation {reservation.key!r} names an event not in the request")
        keys.add((reservation.scope, reservation.key))
    if len(keys) < len(request.reservations):
        raise ValueError("a key is reserved twice in one request")
    if any((r.scope, r.key) in keys for r in request.releases):
        raise ValueError("a request may not reserve and release the same key")


def released_and_reserved(requests: Sequence[AppendRequest]) -> bool:
    """Whether one request of a batch releases a key that another one reserves.

    Never the case for the command service (a card's commands queue on its lock until their
    write is done); stores then settle such a batch one request at a time, in order."""
    released = {(r.scope, r.key) for request in requests for r in request.releases}
    if not released:
        return False
    return any((r.scope, r.key) in released for q in requests for r in q.reservations)

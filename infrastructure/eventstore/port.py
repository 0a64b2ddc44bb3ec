"""The event store port: what the command side needs from any event store.

Each `AppendRequest` is one atomic unit (one or several streams, each with an expected
version, plus an optional idempotency record). `append_batch` commits many independent
requests in one database transaction (group commit) and reports per request whether it
committed or which constraint it hit; a conflicting request never makes another fail.
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
class AppendRequest:
    streams: Sequence[StreamAppend]
    idempotency: IdempotencyRecord | None = None


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


AppendOutcome = Committed | VersionConflict | IdempotencyConflict


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

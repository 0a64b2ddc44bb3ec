"""The in-memory twin of the PostgreSQL event store, for unit tests and local runs.

Same semantics, checked by the same contract suite: requests of a batch are settled in
order, each all-or-nothing; a later request sees the earlier ones that committed. No method
awaits anything while it changes state, so concurrent tasks cannot interleave inside one.
Event data goes through the same JSON encoding as PostgreSQL's jsonb, so a test fails here
on a value PostgreSQL would refuse, and reads return the same plain types; NUL, which
PostgreSQL refuses in text and jsonb alike, fails the call here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from infrastructure.eventstore.encoding import dumps, loads
from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRequest,
    Committed,
    DuplicateEventIdError,
    IdempotencyConflict,
    IdempotencyRecord,
    RecordedEvent,
    ReservationConflict,
    Snapshot,
    VersionConflict,
    validate_append_request,
)

# \u0000 as an escape in an orjson document (an odd number of backslashes before it).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _as_stored(value: Mapping[str, Any]) -> Any:
    """`value` as jsonb would give it back, or ValueError where PostgreSQL refuses it."""
    document = dumps(value)
    if _NUL_ESCAPE.search(document) is not None:
        raise ValueError("unsupported Unicode escape sequence: \\u0000 cannot be stored")
    return loads(document)


def _check_text(record: IdempotencyRecord) -> None:
    if "\x00" in record.principal + record.key + record.request_hash:
        raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")


Key = tuple[str, str]  # (scope, key) of a reservation


class InMemoryEventStore:
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []  # position p is self._log[p - 1]
        self._streams: dict[UUID, list[RecordedEvent]] = {}  # version v is [v - 1]
        self._event_ids: set[UUID] = set()
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self._snapshots: dict[UUID, Snapshot] = {}
        self._reserved: dict[Key, UUID] = {}  # -> the event holding the key
        self._by_event_id: dict[UUID, RecordedEvent] = {}

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        for request in requests:
            validate_append_request(request)
        # Stage the whole batch first: a duplicate event id fails the call with nothing
        # stored, as the PostgreSQL transaction does.
        heads: dict[UUID, int] = {}
        staged: list[RecordedEvent] = []
        staged_ids: set[UUID] = set()
        staged_keys: dict[tuple[str, str], IdempotencyRecord] = {}
        # What the batch's committed requests reserved (an event id) or released (None) so far.
        staged_reserved: dict[Key, UUID | None] = {}

        def is_reserved(key: Key) -> bool:
            if key in staged_reserved:
                return staged_reserved[key] is not None
            return key in self._reserved

        outcomes: list[AppendOutcome] = []
        for request in requests:
            record = request.idempotency
            if record is not None:
                _check_text(record)
                key = (record.principal, record.key)
                if key in self._idempotency or key in staged_keys:
                    outcomes.append(IdempotencyConflict(record.principal, record.key))
                    continue
            stale = tuple(
                s.aggregate_id
                for s in request.streams
                if s.expected_version != heads.get(s.aggregate_id, self._head(s.aggregate_id))
            )
            if stale:
                outcomes.append(VersionConflict(stale))
                continue
            taken = next((r for r in request.reservations if is_reserved((r.scope, r.key))), None)
            if taken is not None:
                outcomes.append(ReservationConflict(taken.scope, taken.key))
                continue
            positions = self._stage(request, heads, staged, staged_ids)
            if record is not None:
                staged_keys[(record.principal, record.key)] = record
            for release in request.releases:
                staged_reserved[(release.scope, release.key)] = None
            for reservation in request.reservations:
                staged_reserved[(reservation.scope, reservation.key)] = reservation.event_id
            outcomes.append(Committed(tuple(positions)))
        for recorded in staged:
            self._log.append(recorded)
            self._streams.setdefault(recorded.aggregate_id, []).append(recorded)
            self._by_event_id[recorded.event_id] = recorded
        self._event_ids |= staged_ids
        self._idempotency.update(staged_keys)
        for key, holder in staged_reserved.items():
            if holder is None:
                self._reserved.pop(key, None)
            else:
                self._reserved[key] = holder
        return outcomes

    def _stage(
        self,
        request: AppendRequest,
        heads: dict[UUID, int],
        staged: list[RecordedEvent],
        staged_ids: set[UUID],
    ) -> list[int]:
        """Stage a request that commits; return its events' positions."""
        positions: list[int] = []
        for stream in request.streams:
            version = stream.expected_version
            for event in stream.events:
                if event.event_id in self._event_ids or event.event_id in staged_ids:
                    raise DuplicateEventIdError(str(event.event_id))
                version += 1
                position = len(self._log) + len(staged) + 1
                staged_ids.add(event.event_id)
                staged.append(
                    RecordedEvent(
                        position=position,
                        event_id=event.event_id,
                        aggregate_id=stream.aggregate_id,
                        aggregate_type=stream.aggregate_type,
                        event_type=event.event_type,
                        schema_version=event.schema_version,
                        version=version,
                        data=_as_stored(event.data),
                        metadata=_as_stored(event.metadata),
                        timestamp=event.timestamp,
                    )
                )
                positions.append(position)
            heads[stream.aggregate_id] = version
        return positions

    def _head(self, aggregate_id: UUID) -> int:
        stream = self._streams.get(aggregate_id)
        return len(stream) if stream else 0

    async def read_stream(self, aggregate_id: UUID, after_version: int = 0) -> list[RecordedEvent]:
        return self._streams.get(aggregate_id, [])[max(after_version, 0) :]

    async def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        start = max(after_position, 0)
        return self._log[start : start + max(limit, 0)]

    async def load_snapshot(self, aggregate_id: UUID) -> Snapshot | None:
        return self._snapshots.get(aggregate_id)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        current = self._snapshots.get(snapshot.aggregate_id)
        if current is None or current.version < snapshot.version:
            state = loads(dumps(snapshot.state))
            self._snapshots[snapshot.aggregate_id] = Snapshot(
                snapshot.aggregate_id,
                snapshot.aggregate_type,
                snapshot.version,
                snapshot.schema_version,
                state,
            )

    async def get_idempotency(self, principal: str, key: str) -> IdempotencyRecord | None:
        return self._idempotency.get((principal, key))

    async def reserved_by(self, scope: str, key: str) -> RecordedEvent | None:
        event_id = self._reserved.get((scope, key))
        return None if event_id is None else self._by_event_id[event_id]

    async def find_in_stream(
        self, aggregate_id: UUID, event_types: Sequence[str], field: str, value: str
    ) -> list[RecordedEvent]:
        return [
            e
            for e in self._streams.get(aggregate_id, [])
            if e.event_type in event_types and e.data.get(field) == value
        ]

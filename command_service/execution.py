"""Runs a decision against the event store: lock, load, decide, append, retry on conflict.

A decision is a `Plan`: the events to append per stream plus the event that answers the
command. Every plan is appended as one atomic request through the group-commit appender;
a version clash forgets the cached aggregates and decides again on fresh state (bounded).
A refusal is never answered from the cache alone: it writes nothing, so no version clash
would ever reveal that another process (a failover, the process that issued the card) had
moved the stream on; it is decided once more on fresh state before it is answered.
The unique keys its events take or free (domain/uniqueness.py) go into the same request;
a key held already raises KeyTaken, for the command to handle as its rule says.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from random import SystemRandom
from typing import Any
from uuid import UUID

import orjson

from command_service.aggregates import AggregateKind, Aggregates, Loaded, decode
from command_service.card_numbers import CardNumbers
from command_service.ids import new_id
from domain.errors import CommandRejected
from domain.events import DomainEvent
from domain.identity import new_card_number
from domain.medcard.holds import DEFAULT_HOLD_TTL_HOURS
from domain.medcard.refills import DEFAULT_RULES
from domain.uniqueness import keys_freed, keys_taken
from domain.upcasting import upcast
from infrastructure.eventstore.group_commit import AppendQueueFull, GroupCommitAppender
from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRefused,
    AppendRequest,
    Committed,
    EventStore,
    IdempotencyConflict,
    IdempotencyRecord,
    NewEvent,
    RecordedEvent,
    Release,
    Reservation,
    ReservationConflict,
    StreamAppend,
    VersionConflict,
)
from infrastructure.http.problems import Problem

MAX_ATTEMPTS = 12
BACKOFF_SECONDS = 0.002
# What an identical earlier command is answered with (and its Idempotency-Key, replayed later).
REPLAY_STATUS = 200
_card_rng = SystemRandom()


@dataclass(frozen=True, slots=True)
class StreamWrite:
    kind: AggregateKind[Any]
    aggregate_id: UUID
    loaded: Loaded[Any]
    events: Sequence[DomainEvent]


@dataclass(frozen=True, slots=True)
class Plan:
    writes: Sequence[StreamWrite]
    result: DomainEvent  # the event the response is made from (new, or an earlier one replayed)
    result_aggregate: UUID
    # a replayed result as stored, when the decision already looked it up
    recorded: RecordedEvent | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    result: DomainEvent
    aggregate_id: UUID
    version: int
    position: int
    created: bool  # False: an identical earlier command's answer, nothing new written
    quote: bool = False  # what the command would get: decided, nothing stored


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """The caller's Idempotency-Key, stored in the same transaction as the command's events."""

    principal: str  # the caller's scope: role, subject and pharmacy (Principal.idempotency_scope)
    key: str
    request_hash: str


@dataclass(slots=True)
class CommandContext:
    at: datetime
    metadata: dict[str, Any]
    idempotency: IdempotencyClaim | None = None
    status_code: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


class KeyTaken(Exception):
    """A unique key the command's events take is held by another event; nothing was written."""

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(f"{scope} {key!r} is taken")
        self.scope = scope
        self.key = key


class IdempotentReplay(Exception):
    """Another process committed this idempotency key first: answer from its record."""

    def __init__(self, principal: str, key: str) -> None:
        super().__init__(key)
        self.principal = principal
        self.key = key


def _random_card_number() -> str:
    return new_card_number(_card_rng)


class Executor:
    def __init__(
        self,
        store: EventStore,
        appender: GroupCommitAppender,
        aggregates: Aggregates,
        card_numbers: Callable[[], str] = _random_card_number,
    ):
        self.store = store
        self.appender = appender
        self.aggregates = aggregates
        self.card_numbers = card_numbers  # tests inject one that collides
        self.claim_rules = DEFAULT_RULES  # the deployment's (infrastructure/settings.py)
        self.hold_ttl_hours = DEFAULT_HOLD_TTL_HOURS  # a hold's life when the body names none
        self.card_directory = CardNumbers(store)  # card number -> card id (point of sale)
        self.version_conflicts = 0

    async def run(
        self,
        lock_ids: Sequence[UUID],
        decide: Callable[[], Awaitable[Plan]],
        context: CommandContext,
    ) -> Outcome:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            async with self.aggregates.locked(lock_ids):
                try:
                    plan = await decide()
                except CommandRejected:
                    with self.aggregates.from_store():  # every aggregate the command reads
                        plan = await decide()  # a refusal again is the store's, not the cache's
                outcome = await self._write(plan, context)
                if outcome is not None:
                    return outcome
            # Another process wrote the stream: back off a little, with jitter, so contenders
            # spread out instead of colliding again on the next version.
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * attempt))
        raise Problem(
            503,
            "concurrent_modification",
            "the card or wallet kept changing under this command; retry it",
            headers={"Retry-After": "1"},
        )

    async def _write(self, plan: Plan, context: CommandContext) -> Outcome | None:
        prepared = _prepare(plan, context)
        if prepared is None:
            return await self._replay(plan, context)
        request, result_index, result_version = prepared
        outcome = await self._append(request, [w.aggregate_id for w in plan.writes])
        if isinstance(outcome, Committed):
            for write in plan.writes:
                if write.events:
                    self.aggregates.advance(
                        write.kind, write.aggregate_id, write.loaded, list(write.events)
                    )
            return Outcome(
                plan.result,
                plan.result_aggregate,
                result_version,
                outcome.positions[result_index],
                created=True,
            )
        if isinstance(outcome, VersionConflict):
            self.version_conflicts += 1
            self.aggregates.forget(outcome.aggregate_ids)
            return None
        if isinstance(outcome, IdempotencyConflict):
            raise IdempotentReplay(outcome.principal, outcome.key)
        if isinstance(outcome, ReservationConflict):
            # The state that decided did not know the key's holder: it may be stale too.
            self.aggregates.forget([w.aggregate_id for w in plan.writes])
            raise KeyTaken(outcome.scope, outcome.key)
        raise TypeError(f"unexpected append outcome {outcome!r}")

    async def _replay(self, plan: Plan, context: CommandContext) -> Outcome:
        """An identical earlier command: answer with its event, and remember the key for it."""
        recorded = plan.recorded or await self.find(plan.result_aggregate, plan.result)
        if context.idempotency is not None:
            record = _record(context, plan.result_aggregate, recorded.event_id, REPLAY_STATUS)
            request = AppendRequest(streams=(), idempotency=record)
            outcome = await self._append(request, [])
            if isinstance(outcome, IdempotencyConflict):
                raise IdempotentReplay(outcome.principal, outcome.key)
        return Outcome(
            plan.result, plan.result_aggregate, recorded.version, recorded.position, created=False
        )

    async def _append(self, request: AppendRequest, aggregate_ids: list[UUID]) -> AppendOutcome:
        """The appender's outcome, or the Problem its failure means for the client."""
        try:
            return await self.appender.append(request)
        except AppendQueueFull as exc:  # not queued: nothing was written
            raise Problem(
                503,
                "write_queue_full",
                "too many writes are waiting for the event store; retry in a moment",
                headers={"Retry-After": "1"},
            ) from exc
        except AppendRefused as exc:
            # Certainly not stored, and it would fail the same way again: 500 without
            # Retry-After. Not 503 (nothing temporary about it) and not 4xx (it passed the
            # documented validation: the service, not the client, failed to refuse it).
            raise Problem(
                500,
                "write_not_storable",
                "the event store cannot hold this request; nothing of it was stored, and"
                " sending it again unchanged fails the same way",
            ) from exc
        except Exception as exc:
            # The commit may or may not have happened: the cached heads can no longer be trusted.
            self.aggregates.forget(aggregate_ids)
            raise Problem(
                503,
                "event_store_unavailable",
                "the event store did not confirm the write; retry with the same Idempotency-Key",
                headers={"Retry-After": "1"},
            ) from exc

    async def find(self, aggregate_id: UUID, event: DomainEvent) -> Any:
        payload = event.payload()
        for recorded in await self.store.read_stream(aggregate_id):
            # Compared as the current version: `event` came from a state folded from
            # upcast events, and the stored one may be of an older version.
            if recorded.event_type == event.event_type and (
                upcast(recorded.event_type, recorded.schema_version, recorded.data) == payload
            ):
                return recorded
        raise LookupError(f"{event.event_type} not found in stream {aggregate_id}")

    async def recall(self, record: IdempotencyRecord) -> Outcome:
        """The outcome an idempotency record points at, for answering a repeated request."""
        reference = orjson.loads(record.response_body)
        aggregate_id = UUID(reference["aggregate_id"])
        event_id = UUID(reference["event_id"])
        for recorded in await self.store.read_stream(aggregate_id):
            if recorded.event_id == event_id:
                return Outcome(
                    decode(recorded), aggregate_id, recorded.version, recorded.position, False
                )
        raise LookupError(f"idempotency record points at a missing event {event_id}")


def _prepare(plan: Plan, context: CommandContext) -> tuple[AppendRequest, int, int] | None:
    """The plan as one append request, with the index and version of its answering event;
    None when the plan writes nothing new (a replay)."""
    streams: list[StreamAppend] = []
    reservations: list[Reservation] = []
    releases: list[Release] = []
    result_index = -1
    result_version = 0
    for write in plan.writes:
        if not write.events:
            continue
        new_events = []
        for offset, event in enumerate(write.events):
            if event is plan.result:
                result_index = sum(len(s.events) for s in streams) + offset
                result_version = write.loaded.version + offset + 1
            event_id = new_id()
            new_events.append(
                NewEvent(
                    event_id=event_id,
                    event_type=event.event_type,
                    schema_version=event.schema_version,
                    data=event.payload(),
                    timestamp=context.at,
                    metadata=context.metadata,
                )
            )
            for scope, key in keys_taken(write.aggregate_id, event):
                reservations.append(Reservation(scope, key, event_id))
            for scope, key in keys_freed(write.aggregate_id, event):
                releases.append(Release(scope, key))
        streams.append(
            StreamAppend(write.aggregate_id, write.kind.name, write.loaded.version, new_events)
        )
    if result_index < 0:
        return None
    request = AppendRequest(
        streams=streams,
        idempotency=_record(context, plan.result_aggregate, _event_id_at(streams, result_index)),
        reservations=reservations,
        releases=releases,
    )
    return request, result_index, result_version


def _event_id_at(streams: Sequence[StreamAppend], index: int) -> UUID:
    for stream in streams:
        if index < len(stream.events):
            return stream.events[index].event_id
        index -= len(stream.events)
    raise IndexError(index)


def _record(
    context: CommandContext, aggregate_id: UUID, event_id: UUID, status_code: int | None = None
) -> IdempotencyRecord | None:
    """What the key replays: the answer's event and status (`context`'s unless given)."""
    claim = context.idempotency
    if claim is None:
        return None
    reference = {"aggregate_id": str(aggregate_id), "event_id": str(event_id)}
    return IdempotencyRecord(
        principal=claim.principal,
        key=claim.key,
        request_hash=claim.request_hash,
        status_code=context.status_code if status_code is None else status_code,
        response_body=orjson.dumps(reference),
    )

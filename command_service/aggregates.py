"""Loads aggregates for deciding, from a per-process LRU cache or the event store.

Writers of one aggregate inside this process queue on a per-aggregate lock, so the cached
state is always the head of the stream this process last wrote. Other processes may still
write the same stream: optimistic concurrency in the store catches that, and the command
is retried on a fresh load.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import TypeAdapter

from domain.events import DomainEvent, event_from_payload
from domain.medcard.state import MedCardState
from domain.medcard.state import evolve as evolve_card
from domain.wallet.model import WalletState
from domain.wallet.model import evolve as evolve_wallet
from infrastructure.eventstore.port import EventStore, RecordedEvent, Snapshot

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class AggregateKind(Generic[S]):
    name: str  # the events table's aggregate_type
    evolve: Callable[[S | None, DomainEvent], S]
    state: TypeAdapter[S]  # (de)serialises the state for snapshots
    # Bump when the state's shape changes: older snapshots are then ignored, not misread.
    state_version: int = 1


MEDCARD: AggregateKind[MedCardState] = AggregateKind(
    "medcard", evolve_card, TypeAdapter(MedCardState)
)
WALLET: AggregateKind[WalletState] = AggregateKind(
    "wallet",
    evolve_wallet,
    TypeAdapter(WalletState),
    state_version=2,  # 2: copay consent
)
# A load that had to fold this many events past the last snapshot takes a new one.
SNAPSHOT_AFTER = 100
# Set while a command is decided again on the store's state (`Aggregates.from_store`); a
# context variable, so only that command's own loads bypass the cache.
_FROM_STORE: ContextVar[bool] = ContextVar("from_store", default=False)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    state: S | None
    version: int  # 0: the stream does not exist
    kind: str = ""  # aggregate_type of a stream that exists


def decode(event: RecordedEvent) -> DomainEvent:
    return event_from_payload(event.event_type, event.schema_version, event.data)


class Aggregates:
    def __init__(self, store: EventStore, cache_size: int) -> None:
        self._store = store
        self._cache: OrderedDict[UUID, Loaded[Any]] = OrderedDict()
        self._cache_size = cache_size
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._waiters: dict[UUID, int] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.snapshots_taken = 0

    @asynccontextmanager
    async def locked(self, ids: Sequence[UUID]) -> AsyncIterator[None]:
        # Sorted order: two commands locking the same pair can never deadlock.
        ordered = sorted(set(ids))
        registered: list[UUID] = []
        acquired: list[UUID] = []
        try:
            for aggregate_id in ordered:
                lock = self._locks.get(aggregate_id)
                if lock is None:
                    lock = self._locks[aggregate_id] = asyncio.Lock()
                self._waiters[aggregate_id] = self._waiters.get(aggregate_id, 0) + 1
                registered.append(aggregate_id)
                await lock.acquire()
                acquired.append(aggregate_id)
            yield
        finally:
            for aggregate_id in reversed(acquired):
                self._locks[aggregate_id].release()
            for aggregate_id in registered:
                left = self._waiters[aggregate_id] - 1
                if left:
                    self._waiters[aggregate_id] = left
                else:
                    del self._waiters[aggregate_id]
                    del self._locks[aggregate_id]

    @contextmanager
    def from_store(self) -> Iterator[None]:
        """Every load in this block (of this task only) reads the store, then caches what it
        read: for deciding again when the cached state may be behind other processes."""
        token = _FROM_STORE.set(True)
        try:
            yield
        finally:
            _FROM_STORE.reset(token)

    async def load(self, kind: AggregateKind[S], aggregate_id: UUID) -> Loaded[S]:
        cached = None if _FROM_STORE.get() else self._cache.get(aggregate_id)
        if cached is not None:
            self._cache.move_to_end(aggregate_id)
            self.cache_hits += 1
            # an id of another kind is "not found" for this one
            return cached if cached.kind == kind.name else Loaded(None, 0)
        self.cache_misses += 1
        state: S | None = None
        version = 0
        snapshot = await self._store.load_snapshot(aggregate_id)
        if snapshot is not None:
            if snapshot.aggregate_type != kind.name:
                return Loaded(None, 0)
            if snapshot.schema_version == kind.state_version:
                state = kind.state.validate_python(snapshot.state)
                version = snapshot.version
        folded = 0
        for recorded in await self._store.read_stream(aggregate_id, after_version=version):
            if recorded.aggregate_type != kind.name:
                return Loaded(None, 0)  # an id of another kind is "not found" for this one
            state = kind.evolve(state, decode(recorded))
            version = recorded.version
            folded += 1
        loaded: Loaded[S] = Loaded(state, version, kind.name)
        if version:
            self._remember(aggregate_id, loaded)
        if folded >= SNAPSHOT_AFTER and state is not None:
            await self._store.save_snapshot(
                Snapshot(
                    aggregate_id=aggregate_id,
                    aggregate_type=kind.name,
                    version=version,
                    schema_version=kind.state_version,
                    state=kind.state.dump_python(state, mode="json"),
                )
            )
            self.snapshots_taken += 1
        return loaded

    def advance(
        self,
        kind: AggregateKind[S],
        aggregate_id: UUID,
        before: Loaded[S],
        events: list[DomainEvent],
    ) -> Loaded[S]:
        """Cache the state after events this process has just committed."""
        state = before.state
        for event in events:
            state = kind.evolve(state, event)
        after: Loaded[S] = Loaded(state, before.version + len(events), kind.name)
        self._remember(aggregate_id, after)
        return after

    def forget(self, aggregate_ids: Sequence[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self._cache.pop(aggregate_id, None)

    def _remember(self, aggregate_id: UUID, loaded: Loaded[Any]) -> None:
        self._cache[aggregate_id] = loaded
        self._cache.move_to_end(aggregate_id)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

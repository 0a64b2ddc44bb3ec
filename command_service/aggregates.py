"""Loads aggregates for deciding, from a per-process LRU cache or the event store.

Writers of one aggregate inside this process queue on a per-aggregate lock, so the cached
state is always the head of the stream this process last wrote. Other processes may still
write the same stream: optimistic concurrency in the store catches that, and the command
is retried on a fresh load.

The cache is bounded by an estimate of the bytes its states hold (AGGREGATE_CACHE_BYTES),
not by a count: a card's state is bounded (domain/medcard/state.py), a wallet's grows with
its movements, and either way the total stays under the budget. Snapshots keep a cold load
short: one is written every SNAPSHOT_AFTER events a stream gains (by a cold load that had
to fold that many, or in the background by the process that appended them), and when the
cache drops a state that is EVICTED_SNAPSHOT_AFTER or more events past its snapshot, so
that the next load of it (here or in another process) folds almost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import TypeAdapter

from domain.events import DomainEvent
from domain.medcard.state import MedCardState
from domain.medcard.state import evolve as evolve_card
from domain.upcasting import event_from_payload
from domain.wallet.model import WalletState
from domain.wallet.model import evolve as evolve_wallet
from infrastructure.eventstore.port import EventStore, RecordedEvent, Snapshot

S = TypeVar("S")
log = logging.getLogger("healthpay.command_service")


@dataclass(frozen=True, slots=True)
class AggregateKind(Generic[S]):
    name: str  # the events table's aggregate_type
    evolve: Callable[[S | None, DomainEvent], S]
    state: TypeAdapter[S]  # (de)serialises the state for snapshots
    size: Callable[[S], int]  # estimated bytes of a state in memory, for the cache's budget
    # Bump when the state's shape changes: older snapshots are then ignored, not misread.
    state_version: int = 1


# Bytes per part of a state, measured with a deep sys.getsizeof over realistic states
# (tests/unit/test_state_size.py holds the estimate to the measurement). They include the
# cache entry around a state.
CARD_BYTES = 3_400  # card fields, primary holder, cache entry
HOLDER_BYTES = 1_450  # a beneficiary with national id, name, date of birth, phone
CLAIM_BYTES = 1_000  # a ClaimRecord with its postings
MONTH_BYTES = 200
REFILL_BYTES = 350  # a last fill or a refill override (domain/medcard/refills.py)
TALLY_BYTES = 550  # a beneficiary's day tally (domain/medcard/velocity.py)
HOLD_BYTES = 700  # an open hold's record (domain/medcard/hold_records.py)
WALLET_BYTES = 900
WALLET_ENTRY_BYTES = 3_100  # a top-up or debit event kept whole (its postings too)


def card_size(state: MedCardState) -> int:
    return (
        CARD_BYTES
        + HOLDER_BYTES * (len(state.beneficiaries) - 1)
        + CLAIM_BYTES * len(state.recent_claims)
        + MONTH_BYTES * len(state.month_spent)
        + REFILL_BYTES * (len(state.refills.fills) + len(state.refills.overrides))
        + TALLY_BYTES * len(state.day_tallies)
        + HOLD_BYTES * len(state.open_holds)
    )


def wallet_size(state: WalletState) -> int:
    entries = len(state.topups) + len(state.debits) + len(state.refunded)
    return WALLET_BYTES + WALLET_ENTRY_BYTES * entries


MEDCARD: AggregateKind[MedCardState] = AggregateKind(
    # 3: the last fills, refill overrides and day tallies (domain/medcard/refills.py) and
    # the open benefit holds (domain/medcard/hold_records.py)
    "medcard",
    evolve_card,
    TypeAdapter(MedCardState),
    card_size,
    state_version=3,
)
WALLET: AggregateKind[WalletState] = AggregateKind(
    "wallet",
    evolve_wallet,
    TypeAdapter(WalletState),
    wallet_size,
    # 2: copay consent; 3: the top-ups it keeps are wallet.topped_up v2 (with paid_at)
    state_version=3,
)
# A stream that gained this many events since its last snapshot gets a new one.
SNAPSHOT_AFTER = 100
# Set while a command is decided again on the store's state (`Aggregates.from_store`); a
# context variable, so only that command's own loads bypass the cache.
_FROM_STORE: ContextVar[bool] = ContextVar("from_store", default=False)
# A state dropped from the cache this far past its snapshot is snapshotted as it goes: with
# a working set larger than the cache, a card is loaded again long before it gains another
# SNAPSHOT_AFTER events, and folding its ~5 KB claim events costs more than the snapshot.
EVICTED_SNAPSHOT_AFTER = 16
# Snapshots being written in the background at most; past that, the next one is skipped.
MAX_SNAPSHOT_WRITES = 4


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    state: S | None
    version: int  # 0: the stream does not exist
    kind: str = ""  # aggregate_type of a stream that exists
    snapshot_version: int = 0  # version of the newest snapshot this process knows of


def decode(event: RecordedEvent) -> DomainEvent:
    """A stored event of any known schema version as its current domain event."""
    return event_from_payload(event.event_type, event.schema_version, event.data)


class Aggregates:
    def __init__(self, store: EventStore, cache_bytes: int) -> None:
        self._store = store
        # -> (loaded, its estimated bytes, its kind)
        self._cache: OrderedDict[UUID, tuple[Loaded[Any], int, AggregateKind[Any]]] = OrderedDict()
        self._cache_budget = cache_bytes
        self.cache_bytes = 0  # estimated bytes the cached states hold
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._waiters: dict[UUID, int] = {}
        self._snapshot_writes: set[asyncio.Task[None]] = set()
        self.cache_hits = 0
        self.cache_misses = 0
        self.snapshots_taken = 0

    def __len__(self) -> int:
        return len(self._cache)

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
            return cached[0] if cached[0].kind == kind.name else Loaded(None, 0)
        self.cache_misses += 1
        state: S | None = None
        version = snapshot_version = 0
        snapshot = await self._store.load_snapshot(aggregate_id)
        if snapshot is not None:
            if snapshot.aggregate_type != kind.name:
                return Loaded(None, 0)
            if snapshot.schema_version == kind.state_version:
                state = kind.state.validate_python(snapshot.state)
                version = snapshot_version = snapshot.version
        for recorded in await self._store.read_stream(aggregate_id, after_version=version):
            if recorded.aggregate_type != kind.name:
                return Loaded(None, 0)  # an id of another kind is "not found" for this one
            state = kind.evolve(state, decode(recorded))
            version = recorded.version
        if state is not None and version - snapshot_version >= SNAPSHOT_AFTER:
            await self._store.save_snapshot(_snapshot(kind, aggregate_id, version, state))
            self.snapshots_taken += 1
            snapshot_version = version
        loaded: Loaded[S] = Loaded(state, version, kind.name, snapshot_version)
        if version:
            self._remember(kind, aggregate_id, loaded)
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
        after: Loaded[S] = Loaded(
            state, before.version + len(events), kind.name, before.snapshot_version
        )
        if state is not None and after.version - after.snapshot_version >= SNAPSHOT_AFTER:
            after = self._snapshot_in_background(kind, aggregate_id, after)
        self._remember(kind, aggregate_id, after)
        return after

    def forget(self, aggregate_ids: Sequence[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            entry = self._cache.pop(aggregate_id, None)
            if entry is not None:
                self.cache_bytes -= entry[1]

    async def close(self) -> None:
        """Wait for the snapshots still being written."""
        if self._snapshot_writes:
            await asyncio.gather(*self._snapshot_writes, return_exceptions=True)

    def _snapshot_in_background(
        self, kind: AggregateKind[S], aggregate_id: UUID, loaded: Loaded[S]
    ) -> Loaded[S]:
        if len(self._snapshot_writes) >= MAX_SNAPSHOT_WRITES or loaded.state is None:
            return loaded
        # Serialised now: the cached state is folded into in place by the next command.
        snapshot = _snapshot(kind, aggregate_id, loaded.version, loaded.state)
        task = asyncio.get_running_loop().create_task(self._save_snapshot(snapshot))
        self._snapshot_writes.add(task)
        task.add_done_callback(self._snapshot_writes.discard)
        return replace(loaded, snapshot_version=loaded.version)

    async def _save_snapshot(self, snapshot: Snapshot) -> None:
        try:
            await self._store.save_snapshot(snapshot)
            self.snapshots_taken += 1
        except Exception:
            # Only a cold load gets longer; the next cold load writes one again.
            log.warning("snapshot of %s not saved", snapshot.aggregate_id, exc_info=True)

    def _remember(self, kind: AggregateKind[S], aggregate_id: UUID, loaded: Loaded[S]) -> None:
        size = kind.size(loaded.state) if loaded.state is not None else 0
        previous = self._cache.pop(aggregate_id, None)
        if previous is not None:
            self.cache_bytes -= previous[1]
        self._cache[aggregate_id] = (loaded, size, kind)
        self.cache_bytes += size
        # A state bigger than the whole budget is not kept either.
        while self.cache_bytes > self._cache_budget:
            evicted_id, (evicted, evicted_size, evicted_kind) = self._cache.popitem(last=False)
            self.cache_bytes -= evicted_size
            if evicted.version - evicted.snapshot_version >= EVICTED_SNAPSHOT_AFTER:
                # Consistent: a state and its version change together, with no await between.
                self._snapshot_in_background(evicted_kind, evicted_id, evicted)


def _snapshot(kind: AggregateKind[S], aggregate_id: UUID, version: int, state: S) -> Snapshot:
    return Snapshot(
        aggregate_id=aggregate_id,
        aggregate_type=kind.name,
        version=version,
        schema_version=kind.state_version,
        state=kind.state.dump_python(state, mode="json"),
    )

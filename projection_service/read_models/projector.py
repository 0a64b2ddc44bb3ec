"""The read-model projector: apply a batch of recorded events inside the caller's transaction.

The consumer loop opens one transaction per Kafka batch, calls `apply`, stores the batch's
offsets, commits: read models and offsets move together (docs/design.md §5, exactly once). The
rebuild calls the very same code with `tables=SHADOW`.

Per batch: one round trip reads (and locks) the streams' cursors, a second one only when a
stream holds early arrivals; then every table gets one statement, all sent as one pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models import streams
from projection_service.read_models.beneficiaries import Beneficiaries
from projection_service.read_models.claims import Claims
from projection_service.read_models.decoding import Decoded, decode
from projection_service.read_models.fraud_flags import FraudFlags
from projection_service.read_models.holds import Holds
from projection_service.read_models.ledger import Ledger
from projection_service.read_models.medcards import MedCards
from projection_service.read_models.monthly_spend import MonthlySpend
from projection_service.read_models.tables import LIVE, Tables
from projection_service.read_models.wallet_transactions import WalletTransactions
from projection_service.read_models.wallets import Wallets


class ReadModel(Protocol):
    def add(self, item: Decoded) -> None: ...

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None: ...


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: int = 0  # events projected now, released ones included
    duplicates: int = 0  # at or below their stream's version: no-ops
    held: int = 0  # beyond a gap in their stream: stored until it closes
    released: int = 0  # held by an earlier batch, applied now
    skipped: int = 0  # places of parked events that their streams passed
    parked: tuple[UUID, ...] = ()  # event ids parked while applying (apply_or_park)
    last_position: int | None = None  # highest store position applied

    def __add__(self, other: ApplyResult) -> ApplyResult:
        positions = [p for p in (self.last_position, other.last_position) if p is not None]
        return ApplyResult(
            self.applied + other.applied,
            self.duplicates + other.duplicates,
            self.held + other.held,
            self.released + other.released,
            self.skipped + other.skipped,
            self.parked + other.parked,
            max(positions) if positions else None,
        )


def require_transaction(conn: AsyncConnection[TupleRow]) -> None:
    """Refuse an autocommit connection outside a transaction: each statement would commit
    on its own, and a crash between them would leave half a batch behind its offsets."""
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        raise RuntimeError("apply() must run inside the caller's transaction")


async def apply(
    conn: AsyncConnection[TupleRow],
    events: Sequence[RecordedEvent],
    *,
    tables: Tables = LIVE,
    strict: bool = False,
) -> ApplyResult:
    """Apply `events` (any order, duplicates allowed) to the read models in `tables`.

    Raises PoisonEventError, before writing anything, for an event whose type or payload's
    shape can never be applied (with `strict`, for any payload its domain model refuses);
    a value PostgreSQL refuses (an amount that is no number) raises the database's error.
    Park the event (parking.park) and apply the rest, or use parking.apply_or_park.
    """
    return await project(conn, events, tables=tables, strict=strict)


async def project(
    conn: AsyncConnection[TupleRow],
    events: Sequence[RecordedEvent],
    *,
    tables: Tables = LIVE,
    drain: Iterable[UUID] = (),
    strict: bool = False,
) -> ApplyResult:
    """`apply`, also draining the streams in `drain` (a parked event may close their gap)."""
    require_transaction(conn)
    aggregate_ids = sorted({e.aggregate_id for e in events}.union(drain))
    if not aggregate_ids:
        return ApplyResult()
    cursors, held = await streams.load(conn, tables, aggregate_ids)
    planned = streams.plan(events, cursors, held, drain)
    # Decode everything that will be applied or held before the first write: a poison event
    # then leaves the caller's transaction untouched, ready to park it and go on.
    ready = [decode(c.recorded, strict=strict) for c in planned.ready if not c.parked]
    for candidate in planned.hold:
        decode(candidate.recorded, strict=strict)

    models: tuple[ReadModel, ...] = (
        # parents before children: the foreign keys are checked per statement
        MedCards(),
        Beneficiaries(),
        Claims(),
        FraudFlags(),
        MonthlySpend(),
        Holds(),
        Wallets(),
        WalletTransactions(),
        Ledger(),
    )
    for item in ready:
        for model in models:
            model.add(item)
    async with conn.pipeline():
        for model in models:
            await model.write(conn, tables)
        await streams.write(conn, tables, planned)

    positions = [item.recorded.position for item in ready]
    return ApplyResult(
        applied=len(ready),
        duplicates=planned.duplicates,
        held=len(planned.hold),
        released=sum(1 for c in planned.ready if c.from_held and not c.parked),
        skipped=sum(1 for c in planned.ready if c.parked),
        last_position=max(positions) if positions else None,
    )

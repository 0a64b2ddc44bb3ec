"""Dead letters: park what can never be applied, and let its stream go on without it.

Events carry absolute values (balances, month totals), so skipping one leaves only that
event's own rows missing; the stream's later events still set every total right. A parked
event is kept verbatim in parked_events to be fixed and replayed (a rebuild retries it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import DataError, IntegrityError
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from infrastructure.eventstore.encoding import dumps
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models import streams
from projection_service.read_models.decoding import PoisonEventError
from projection_service.read_models.projector import (
    ApplyResult,
    apply,
    project,
    require_transaction,
)
from projection_service.read_models.rows import as_jsonb
from projection_service.read_models.tables import LIVE, Tables

DEFAULT_PROJECTION = "read_models"

# What a statement raises when the database refuses a row for what it contains (a value too
# long or out of range, a broken foreign key): the same row fails again on every retry.
# Anything else (lost connection, serialization failure) is transient and propagates.
REFUSED_BY_DATABASE = (DataError, IntegrityError)


@dataclass(frozen=True, slots=True)
class KafkaLocation:
    topic: str
    partition: int
    offset: int


PARK_EVENT = """
INSERT INTO parked_events (projection, event_id, aggregate_id, aggregate_type, event_type,
  schema_version, version, position, topic, partition, kafka_offset, error, payload, metadata)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (projection, event_id) WHERE event_id IS NOT NULL DO UPDATE
SET error = excluded.error, topic = excluded.topic, partition = excluded.partition,
    kafka_offset = excluded.kafka_offset, attempts = parked_events.attempts + 1,
    parked_at = now()
"""

PARK_RAW = """
INSERT INTO parked_events (projection, topic, partition, kafka_offset, error, raw)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (projection, topic, partition, kafka_offset)
  WHERE event_id IS NULL AND kafka_offset IS NOT NULL DO NOTHING
"""

_MARK_HELD = """
INSERT INTO {projection_streams} (aggregate_id, aggregate_type, version, has_held)
VALUES (%s, %s, 0, true)
ON CONFLICT (aggregate_id) DO UPDATE SET has_held = true
"""


def park_event_params(
    projection: str, event: RecordedEvent, location: KafkaLocation | None, error: str
) -> tuple[object, ...]:
    """PARK_EVENT's parameters: the event verbatim, where it was read, and why it is parked."""
    return (
        projection,
        event.event_id,
        event.aggregate_id,
        event.aggregate_type,
        event.event_type,
        event.schema_version,
        event.version,
        event.position,
        location.topic if location else None,
        location.partition if location else None,
        location.offset if location else None,
        error,
        Jsonb(event.data, dumps),
        Jsonb(event.metadata, dumps),
    )


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, psycopg.Error):
        # The primary message and names only: the DETAIL line quotes the failing row, which
        # may hold national ids and phone numbers (docs/design.md §7).
        diag = error.diag
        where = ", ".join(
            f"{label} {name}"
            for label, name in (
                ("table", diag.table_name),
                ("column", diag.column_name),
                ("constraint", diag.constraint_name),
            )
            if name
        )
        return f"{type(error).__name__}: {diag.message_primary}" + (f" ({where})" if where else "")
    return f"{type(error).__name__}: {error}"


async def park(
    conn: AsyncConnection[TupleRow],
    event: RecordedEvent,
    error: BaseException | str,
    *,
    projection: str = DEFAULT_PROJECTION,
    location: KafkaLocation | None = None,
    tables: Tables = LIVE,
) -> None:
    """Record `event` as a dead letter and let its stream skip it, in the caller's
    transaction (so the Kafka offset that passes it commits with the parking)."""
    require_transaction(conn)
    reason = error.reason if isinstance(error, PoisonEventError) else describe(error)
    await conn.execute(PARK_EVENT, park_event_params(projection, event, location, reason))
    # The parked event's place, so its stream passes it rather than waiting for it forever;
    # draining right away releases whatever was already waiting behind it.
    marker = as_jsonb([streams.held_row(event, parked=True)])
    await conn.execute(tables.sql(streams.HOLD_PARKED), (marker,))
    await conn.execute(tables.sql(_MARK_HELD), (event.aggregate_id, event.aggregate_type))
    try:
        async with conn.transaction():
            await project(conn, [], tables=tables, drain=[event.aggregate_id])
    except (PoisonEventError, *REFUSED_BY_DATABASE):
        pass  # what waits behind it is retried, and parked in turn, with the stream's next event


async def park_raw(
    conn: AsyncConnection[TupleRow],
    raw: bytes,
    error: BaseException | str,
    *,
    location: KafkaLocation | None,
    projection: str = DEFAULT_PROJECTION,
) -> None:
    """A Kafka message that is not even an envelope: keep its bytes and where it was."""
    await conn.execute(
        PARK_RAW,
        (
            projection,
            location.topic if location else None,
            location.partition if location else None,
            location.offset if location else None,
            describe(error),
            raw,
        ),
    )


async def apply_or_park(
    conn: AsyncConnection[TupleRow],
    events: Sequence[RecordedEvent],
    *,
    tables: Tables = LIVE,
    projection: str = DEFAULT_PROJECTION,
    locate: Callable[[RecordedEvent], KafkaLocation | None] = lambda _: None,
) -> ApplyResult:
    """`apply`, parking poison events instead of failing the batch.

    A poison event found by decoding is parked and the rest applied again. When the
    database refuses a statement, the batch is applied one event at a time (each under a
    savepoint, each payload validated in full by its domain model, so a value the model
    refuses is parked with the model's reason) to find the event(s) it refuses. Transient
    errors propagate.
    """
    require_transaction(conn)
    pending = list(events)
    parked: list[UUID] = []

    async def park_once(event: RecordedEvent, error: BaseException) -> None:
        if event.event_id in parked:
            raise error  # parking did not take: stop rather than loop
        await park(conn, event, error, projection=projection, location=locate(event), tables=tables)
        parked.append(event.event_id)

    while True:
        try:
            async with conn.transaction():  # a savepoint: a refused statement undoes only it
                result = await apply(conn, pending, tables=tables)
            return replace(result, parked=tuple(parked))
        except PoisonEventError as poison:
            # (the poison may also be an event held by an earlier batch)
            await park_once(poison.event, poison)
            pending = [e for e in pending if e.event_id != poison.event.event_id]
        except REFUSED_BY_DATABASE:
            break
    total = ApplyResult()
    for event in pending:
        while event.event_id not in parked:
            try:
                async with conn.transaction():
                    total += await apply(conn, [event], tables=tables, strict=True)
                break
            except PoisonEventError as poison:
                await park_once(poison.event, poison)
            except REFUSED_BY_DATABASE as refused:
                await park_once(event, refused)
    return replace(total, parked=tuple(parked))

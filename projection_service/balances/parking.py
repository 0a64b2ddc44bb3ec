"""Dead letters of the CQL balance projection, kept where the read models keep theirs:
PostgreSQL's parked_events, projection "balances" (`healthpay projections status` lists both).

What is parked never blocks the partition: the batch's offsets move past it once it is kept.
The CQL rows need no marker to go on (every write is an absolute value at a version-derived
timestamp, so later events of the stream still set each total right). Parking is idempotent,
so a batch re-delivered after a crash parks nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from infrastructure.eventstore.encoding import dumps
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.parking import PARK_EVENT, PARK_RAW, KafkaLocation

PROJECTION = "balances"


@dataclass(frozen=True, slots=True)
class Parked:
    """A message that can never be projected: an event that cannot be read, or raw bytes
    that are not even an envelope."""

    location: KafkaLocation
    error: str
    event: RecordedEvent | None = None
    raw: bytes | None = None


class BalanceParking:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def park(self, parked: Sequence[Parked]) -> None:
        """Blocking (call it from a thread); one transaction for the batch's dead letters."""
        if not parked:
            return
        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
            for p in parked:
                where = (p.location.topic, p.location.partition, p.location.offset)
                if p.event is None:
                    conn.execute(PARK_RAW, (PROJECTION, *where, p.error, p.raw or b""))
                    continue
                e = p.event
                conn.execute(
                    PARK_EVENT,
                    (
                        PROJECTION, e.event_id, e.aggregate_id, e.aggregate_type, e.event_type,
                        e.schema_version, e.version, e.position, *where, p.error,
                        Jsonb(e.data, dumps), Jsonb(e.metadata, dumps),
                    ),
                )  # fmt: skip
